/** An RPC of `jumpstarter.client.v1.ClientService`, by its protobuf method name. */
export type MockMethod =
  | "GetExporter"
  | "ListExporters"
  | "GetLease"
  | "ListLeases"
  | "CreateLease"
  | "UpdateLease"
  | "DeleteLease"
  | "RotateToken";

/** Every {@link MockMethod}, in the order of the service definition. */
export const MOCK_METHODS: readonly MockMethod[] = [
  "GetExporter",
  "ListExporters",
  "GetLease",
  "ListLeases",
  "CreateLease",
  "UpdateLease",
  "DeleteLease",
  "RotateToken",
];

/**
 * One RPC that reached the mock controller, recorded before authentication and fault injection,
 * so that a call that failed or was rejected still appears.
 */
export interface MockCall {
  /** RPC method name, such as `GetLease`. */
  method: MockMethod;
  /** The decoded request message. */
  request: unknown;
  /** Request headers with lowercase names. Repeated headers are joined with ", ". */
  headers: Record<string, string>;
  /** Arrival time on the controller's clock. */
  at: Date;
}
