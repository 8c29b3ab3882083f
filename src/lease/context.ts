import type { CallOptions } from "../call.js";
import type { Exporter, Lease } from "../generated.js";
import type { LeaseChanges, LeaseSpec } from "../lease-spec.js";
import type { Logger } from "../logger.js";
import type { LeaseClock } from "./clock.js";

/** The client calls that the lease helpers build on; `JumpstarterClient` provides them. */
export interface LeaseRpc {
  getLease(name: string, options?: CallOptions): Promise<Lease>;
  createLease(spec: LeaseSpec, options?: CallOptions): Promise<Lease>;
  updateLease(name: string, changes: LeaseChanges, options?: CallOptions): Promise<Lease>;
  deleteLease(name: string, options?: CallOptions): Promise<void>;
  getExporter(name: string, options?: CallOptions): Promise<Exporter>;
}

/** A lease that this client holds, or may hold, and can give back. */
export interface HeldLease {
  /** Full resource name of the lease. */
  readonly name: string;
  /** Releases the lease; resolves once it is released or found already ended. */
  release(): Promise<void>;
}

/** Settings and calls of the client that the lease helpers run on. */
export interface LeaseContext {
  rpc: LeaseRpc;
  namespace: string;
  /** Short id of the client object, when the client was given one. */
  clientName: string | undefined;
  logger: Logger;
  clock: LeaseClock;
  /** Default timeout of a wait for a lease, in milliseconds. */
  leaseTimeoutMs: number;
  /** Default deadline of one call, in milliseconds. */
  callTimeoutMs: number;
  /** Aborted when the client closes. */
  closedSignal: AbortSignal;
  /** Leases that this client holds or is acquiring, for `releaseOnExit`. */
  held: Set<HeldLease>;
}
