import { Code, ConnectError } from "@connectrpc/connect";

/** Collection segment of a namespaced resource name, such as `leases` in `namespaces/lab/leases/x`. */
export type ResourceCollection = "exporters" | "leases" | "clients";

/** Namespace and id parsed from a name such as `namespaces/{namespace}/leases/{id}`. */
export interface ObjectKey {
  namespace: string;
  id: string;
}

// The error texts below are the controller's own (its identifier parser), so that clients see
// the same InvalidArgument messages from the mock as from a deployed controller.

/**
 * Parses `namespaces/{namespace}` and returns the namespace.
 *
 * @throws ConnectError InvalidArgument naming the identifier and the bad segment.
 */
export function parseNamespaceName(identifier: string): string {
  const segments = identifier.split("/");
  if (segments.length !== 2) {
    throw new ConnectError(
      `invalid number of segments in identifier "${identifier}", expecting 2, got ${segments.length}`,
      Code.InvalidArgument,
    );
  }
  checkFirstSegment(identifier, segments[0]!);
  return segments[1]!;
}

/**
 * Parses `namespaces/{namespace}/{collection}/{id}`.
 *
 * @throws ConnectError InvalidArgument naming the identifier and the bad segment.
 */
export function parseObjectName(identifier: string, collection: ResourceCollection): ObjectKey {
  const segments = identifier.split("/");
  if (segments.length !== 4) {
    throw new ConnectError(
      `invalid number of segments in identifier "${identifier}", expecting 4, got ${segments.length}`,
      Code.InvalidArgument,
    );
  }
  checkFirstSegment(identifier, segments[0]!);
  if (segments[2] !== collection) {
    throw new ConnectError(
      `invalid third segment in identifier "${identifier}", expecting "${collection}", got "${segments[2]}"`,
      Code.InvalidArgument,
    );
  }
  return { namespace: segments[1]!, id: segments[3]! };
}

function checkFirstSegment(identifier: string, first: string): void {
  if (first !== "namespaces") {
    throw new ConnectError(
      `invalid first segment in identifier "${identifier}", expecting "namespaces", got "${first}"`,
      Code.InvalidArgument,
    );
  }
}

/** Formats `namespaces/{namespace}`. */
export function formatNamespaceName(namespace: string): string {
  return `namespaces/${namespace}`;
}

/** Formats `namespaces/{namespace}/{collection}/{id}`. */
export function formatObjectName(
  namespace: string,
  collection: ResourceCollection,
  id: string,
): string {
  return `namespaces/${namespace}/${collection}/${id}`;
}

/**
 * Builds the Kubernetes API server's not-found error, which the controller passes through
 * unchanged as gRPC UNKNOWN, for example `leases.jumpstarter.dev "abc" not found`.
 */
export function kubernetesNotFound(collection: "exporters" | "leases", id: string): ConnectError {
  return new ConnectError(`${collection}.jumpstarter.dev "${id}" not found`, Code.Unknown);
}

/** Builds the Kubernetes API server's already-exists error, passed through as gRPC UNKNOWN. */
export function kubernetesAlreadyExists(collection: "exporters" | "leases", id: string): ConnectError {
  return new ConnectError(`${collection}.jumpstarter.dev "${id}" already exists`, Code.Unknown);
}

/** Builds the PERMISSION_DENIED error that the controller sends for a foreign namespace. */
export function namespaceMismatch(): ConnectError {
  return new ConnectError("namespace mismatch", Code.PermissionDenied);
}

// Kubernetes object names: a lowercase RFC 1123 subdomain of at most 253 characters.
const RFC1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** Reports why `id` is not a valid Kubernetes object name, or `undefined` when it is valid. */
export function objectIdProblem(id: string): string | undefined {
  if (id.length === 0 || id.length > 253 || !RFC1123_SUBDOMAIN.test(id)) {
    return (
      "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', " +
      "must start and end with an alphanumeric character, and must be at most 253 characters"
    );
  }
  return undefined;
}
