import { InvalidArgumentError } from "./errors.js";

/** Kind of a namespaced resource, as it appears in a resource name (`namespaces/{ns}/{kind}/{id}`). */
export type ResourceKind = "exporters" | "leases" | "clients";

/** The parts of a resource name such as `namespaces/lab/leases/0193...`. */
export interface ResourceName {
  /** Kubernetes namespace, such as `lab`. */
  namespace: string;
  /** Collection, such as `leases`. */
  kind: ResourceKind;
  /** Short id within the collection, such as `rpi4-01`. */
  id: string;
}

const KINDS: readonly ResourceKind[] = ["exporters", "leases", "clients"];

// Kubernetes object names are DNS subdomains: lowercase letters, digits, "-" and ".", at most
// 253 characters, starting and ending with a letter or digit.
const OBJECT_NAME = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;
// Namespaces are DNS labels: at most 63 characters, no dots.
const NAMESPACE_NAME = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

const SINGULAR: Record<ResourceKind, string> = { exporters: "exporter", leases: "lease", clients: "client" };

/**
 * Checks that `namespace` is a valid Kubernetes namespace name.
 *
 * @throws InvalidArgumentError showing the value and the expected form.
 */
export function validateNamespace(namespace: string): string {
  if (!NAMESPACE_NAME.test(namespace)) {
    throw new InvalidArgumentError(
      `invalid namespace "${namespace}": expected 1 to 63 lowercase letters, digits or "-", starting and ending with a letter or digit.`,
      { resource: namespace },
    );
  }
  return namespace;
}

/**
 * Parses a full resource name such as `namespaces/lab/exporters/rpi4-01`.
 *
 * @throws InvalidArgumentError when the name does not have that form.
 */
export function parseResourceName(name: string): ResourceName {
  const parts = name.split("/");
  const [prefix, namespace, kind, id] = parts;
  if (
    parts.length !== 4 ||
    prefix !== "namespaces" ||
    !NAMESPACE_NAME.test(namespace ?? "") ||
    !KINDS.includes(kind as ResourceKind) ||
    !OBJECT_NAME.test(id ?? "")
  ) {
    throw new InvalidArgumentError(
      `invalid resource name "${name}": expected "namespaces/{namespace}/{exporters|leases|clients}/{id}" with lowercase Kubernetes names.`,
      { resource: name },
    );
  }
  return { namespace: namespace!, kind: kind as ResourceKind, id: id! };
}

/** Formats a full resource name from its parts, without validation. */
export function formatResourceName(namespace: string, kind: ResourceKind, id: string): string {
  return `namespaces/${namespace}/${kind}/${id}`;
}

/**
 * Turns a short id (`rpi4-01`) or a full name (`namespaces/lab/exporters/rpi4-01`) into the full
 * resource name of `kind` in `namespace`.
 *
 * @throws InvalidArgumentError for an empty or malformed id, or a full name of another namespace
 *   or kind, so that no RPC is sent for a name that cannot be right.
 */
export function toResourceName(input: string, kind: ResourceKind, namespace: string): string {
  const what = SINGULAR[kind];
  if (typeof input !== "string" || input.length === 0) {
    throw new InvalidArgumentError(`missing ${what} name: pass its id, such as "rpi4-01", or its full resource name.`);
  }

  if (!input.includes("/")) {
    if (!OBJECT_NAME.test(input)) {
      throw new InvalidArgumentError(
        `invalid ${what} id "${input}": expected lowercase letters, digits, "-" or ".", starting and ending with a letter or digit (at most 253 characters).`,
        { resource: input },
      );
    }
    return formatResourceName(namespace, kind, input);
  }

  const parsed = parseResourceName(input);
  if (parsed.kind !== kind) {
    throw new InvalidArgumentError(
      `"${input}" names ${SINGULAR[parsed.kind]} "${parsed.id}", not a ${what}; pass a ${what} id or "namespaces/${namespace}/${kind}/{id}".`,
      { resource: input },
    );
  }
  if (parsed.namespace !== namespace) {
    throw new InvalidArgumentError(
      `${what} "${input}" is in namespace "${parsed.namespace}", but this client works in namespace "${namespace}"; create a client for that namespace.`,
      { resource: input },
    );
  }
  return input;
}

/**
 * Returns the short id at the end of a resource name: `rpi4-01` for
 * `namespaces/lab/exporters/rpi4-01`. A string without `/` is returned as it is.
 */
export function shortId(name: string): string {
  const slash = name.lastIndexOf("/");
  return slash === -1 ? name : name.slice(slash + 1);
}
