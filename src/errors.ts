import { Code, ConnectError } from "@connectrpc/connect";
import type { Lease } from "./generated.js";

// A brand shared by every copy of this package in one process, so that `isJumpstarterError` works
// when two versions are installed side by side and `instanceof` would fail.
const BRAND = Symbol.for("@jumpstarter/sdk/JumpstarterError");

/** Fields that every {@link JumpstarterError} constructor accepts besides the message. */
export interface JumpstarterErrorOptions {
  /** gRPC status code. Defaults to the subclass's natural code. */
  code?: Code;
  /** The message exactly as the controller sent it, before classification. Defaults to the message. */
  rawMessage?: string;
  /** Resource name involved, such as `namespaces/lab/leases/abc`, when there is one. */
  resource?: string;
  /** Whether repeating the same call may succeed. Defaults to the subclass's natural value. */
  retryable?: boolean;
  /** The underlying error, usually a `ConnectError`. */
  cause?: unknown;
}

/**
 * Base class of every error this SDK raises. `code` is the gRPC status code, `rawMessage` the
 * text the controller sent, `resource` the name involved, and `cause` the original `ConnectError`.
 * Messages never contain a token.
 */
export class JumpstarterError extends Error {
  /** gRPC status code of the failure; local validation errors use `InvalidArgument`. */
  readonly code: Code;
  /** The controller's message as received, with any token redacted. Empty for local errors. */
  readonly rawMessage: string;
  /** Resource name involved, when there is one. */
  readonly resource: string | undefined;
  /** Whether repeating the same call may succeed. */
  readonly retryable: boolean;

  /** Code used when the options name none. Subclasses override it. */
  protected static readonly defaultCode: Code = Code.Unknown;

  constructor(message: string, options: JumpstarterErrorOptions = {}) {
    super(redactSecrets(message), options.cause === undefined ? undefined : { cause: options.cause });
    const defaults = new.target as unknown as { defaultCode: Code };
    this.name = new.target.name;
    this.code = options.code ?? defaults.defaultCode;
    this.rawMessage = redactSecrets(options.rawMessage ?? "");
    this.resource = options.resource;
    this.retryable = options.retryable ?? false;
    Object.defineProperty(this, BRAND, { value: true });
  }
}

/** The resource does not exist (gRPC NOT_FOUND, or the controller's Kubernetes "not found"). */
export class NotFoundError extends JumpstarterError {
  protected static override readonly defaultCode: Code = Code.NotFound;
}

/** A resource with that name already exists (ALREADY_EXISTS, or Kubernetes "already exists"). */
export class AlreadyExistsError extends JumpstarterError {
  protected static override readonly defaultCode: Code = Code.AlreadyExists;
}

/** The client may not act on the resource: another namespace, or another client's lease. */
export class PermissionDeniedError extends JumpstarterError {
  protected static override readonly defaultCode: Code = Code.PermissionDenied;
}

/** The controller rejected the credentials. */
export class UnauthenticatedError extends JumpstarterError {
  protected static override readonly defaultCode: Code = Code.Unauthenticated;
}

/**
 * The token has expired. An expired token cannot rotate itself: obtain a new one with
 * `jmp login` or from an administrator.
 */
export class TokenExpiredError extends UnauthenticatedError {
  /** When the token expired, if its expiry is known. */
  readonly expiredAt: Date | undefined;

  constructor(message: string, options: JumpstarterErrorOptions & { expiredAt?: Date } = {}) {
    super(message, options);
    this.expiredAt = options.expiredAt;
  }
}

/** The request is malformed. Local validation raises it before any RPC is sent. */
export class InvalidArgumentError extends JumpstarterError {
  protected static override readonly defaultCode: Code = Code.InvalidArgument;
}

/** The resource is not in a state that allows the call, such as deleting a released lease. */
export class FailedPreconditionError extends JumpstarterError {
  protected static override readonly defaultCode: Code = Code.FailedPrecondition;
}

/** The controller could not be reached or is restarting. Retryable. */
export class UnavailableError extends JumpstarterError {
  protected static override readonly defaultCode: Code = Code.Unavailable;
}

/** The call did not finish within its deadline. */
export class DeadlineExceededError extends JumpstarterError {
  protected static override readonly defaultCode: Code = Code.DeadlineExceeded;
}

/**
 * The controller or a proxy cancelled the call (gRPC CANCELLED). An abort through the caller's own
 * `AbortSignal` does not raise this class: the call rejects with the signal's reason, as `fetch`
 * does, so that `signal.reason` reaches the caller unchanged.
 */
export class CanceledError extends JumpstarterError {
  protected static override readonly defaultCode: Code = Code.Canceled;
}

/**
 * A listing's page token is too old for the controller (Kubernetes returns 410 Gone). Restart the
 * listing: the SDK does not restart it silently because that would repeat items.
 */
export class PageTokenExpiredError extends JumpstarterError {
  protected static override readonly defaultCode: Code = Code.Unknown;
}

/** The client was closed with `close()`; create a new client to make further calls. */
export class ClientClosedError extends JumpstarterError {
  protected static override readonly defaultCode: Code = Code.Canceled;
}

/**
 * A `jmp` configuration is missing, unreadable or invalid. `file` names the file and `key` the
 * setting, such as `tls.ca`, or the environment variable, such as `JMP_ENDPOINT`.
 */
export class ConfigError extends JumpstarterError {
  protected static override readonly defaultCode: Code = Code.InvalidArgument;
  /** Path of the config file involved; `undefined` for a setting from an environment variable. */
  readonly file: string | undefined;
  /** The setting or environment variable involved, when there is one. */
  readonly key: string | undefined;

  constructor(message: string, options: JumpstarterErrorOptions & { file?: string; key?: string } = {}) {
    super(message, options);
    this.file = options.file;
    this.key = options.key;
  }
}

/**
 * Tells whether `value` is an error raised by any copy of this package loaded in the process.
 * Prefer it over `instanceof JumpstarterError` in code that may see errors from another copy.
 */
export function isJumpstarterError(value: unknown): value is JumpstarterError {
  return typeof value === "object" && value !== null && (value as Record<symbol, unknown>)[BRAND] === true;
}

// JWTs start with a base64url-encoded JSON header, which always begins with "eyJ".
const JWT_PATTERN = /eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*/g;
// A bearer credential is long and opaque; requiring 16 characters keeps prose such as "bearer token"
// in the SDK's own messages intact.
const BEARER_PATTERN = /(Bearer\s+)[A-Za-z0-9._~+/=-]{16,}/gi;

/** Replaces anything that looks like a bearer token or a JWT in `text` with `[redacted]`. */
export function redactSecrets(text: string): string {
  return text.replace(BEARER_PATTERN, "$1[redacted]").replace(JWT_PATTERN, "[redacted]");
}

/** Context that {@link toJumpstarterError} weaves into its message. */
export interface ErrorContext {
  /** Operation in words, such as `get lease` or `list exporters`. */
  operation: string;
  /** Resource name involved, when there is one. */
  resource?: string;
  /** Expiry of the token in use, for the token-expired message. */
  tokenExpiresAt?: Date;
}

type Classified = {
  type: new (message: string, options?: JumpstarterErrorOptions) => JumpstarterError;
  hint: string;
  retryable: boolean;
};

// The controller reports Kubernetes API errors as UNKNOWN with only a message, so these texts are
// the only way to tell them apart. The patterns match the texts the controller sends.
const UNKNOWN_MESSAGE_RULES: ReadonlyArray<{ pattern: RegExp; classified: Classified }> = [
  {
    pattern: /token is expired|token has expired|"exp" claim timestamp check failed/i,
    classified: { type: TokenExpiredError, hint: "", retryable: false },
  },
  {
    pattern: /continue parameter is too old|410 Gone|resourceVersion .* too old|expired continue/i,
    classified: {
      type: PageTokenExpiredError,
      hint: "The listing took too long and its page token expired; start the listing again.",
      retryable: false,
    },
  },
  {
    pattern: /\bnot found\b/i,
    classified: { type: NotFoundError, hint: "Check the name; list the resources to see which exist.", retryable: false },
  },
  {
    pattern: /\balready exists\b/i,
    classified: { type: AlreadyExistsError, hint: "Choose another name or use the existing resource.", retryable: false },
  },
  {
    pattern: /permission denied|forbidden|not the owner|does not belong/i,
    classified: {
      type: PermissionDeniedError,
      hint: "The resource belongs to another client or namespace.",
      retryable: false,
    },
  },
];

const CODE_RULES: Partial<Record<Code, Classified>> = {
  [Code.NotFound]: { type: NotFoundError, hint: "Check the name; list the resources to see which exist.", retryable: false },
  [Code.AlreadyExists]: { type: AlreadyExistsError, hint: "Choose another name or use the existing resource.", retryable: false },
  [Code.PermissionDenied]: {
    type: PermissionDeniedError,
    hint: "Check that the client's namespace and name match its token.",
    retryable: false,
  },
  [Code.Unauthenticated]: {
    type: UnauthenticatedError,
    hint: "Check the token: it may be missing, malformed or revoked. Obtain a new one with `jmp login` or from an administrator.",
    retryable: false,
  },
  [Code.InvalidArgument]: { type: InvalidArgumentError, hint: "", retryable: false },
  [Code.FailedPrecondition]: { type: FailedPreconditionError, hint: "", retryable: false },
  [Code.Unavailable]: {
    type: UnavailableError,
    hint: "The controller is unreachable or restarting; check the endpoint and the network, then retry.",
    retryable: true,
  },
  [Code.DeadlineExceeded]: {
    type: DeadlineExceededError,
    hint: "Raise timeoutMs if the controller is slow, or check its health.",
    retryable: false,
  },
  [Code.Canceled]: { type: CanceledError, hint: "", retryable: false },
};

/** Sorts a controller error into the SDK's hierarchy by code, then by the text of UNKNOWN errors. */
function classify(code: Code, rawMessage: string): Classified {
  if (code === Code.Unknown || code === Code.Internal) {
    const rule = UNKNOWN_MESSAGE_RULES.find(({ pattern }) => pattern.test(rawMessage));
    if (rule) return rule.classified;
  }
  if (code === Code.Unauthenticated && /expired/i.test(rawMessage)) {
    return UNKNOWN_MESSAGE_RULES[0]!.classified;
  }
  return CODE_RULES[code] ?? { type: JumpstarterError, hint: "", retryable: false };
}

/**
 * Converts any error thrown by a call into a {@link JumpstarterError}: a `ConnectError` becomes the
 * subclass that fits its code and message, a `JumpstarterError` passes through unchanged, and
 * anything else is wrapped with code UNKNOWN. The original error is kept as `cause`.
 */
export function toJumpstarterError(error: unknown, context: ErrorContext): JumpstarterError {
  if (isJumpstarterError(error)) return error;
  // connect wraps what an interceptor throws, such as a token provider's failure, in a ConnectError.
  if (error instanceof ConnectError && isJumpstarterError(error.cause)) return error.cause;

  const connectError = ConnectError.from(error);
  const rawMessage = redactSecrets(connectError.rawMessage);
  const { type, hint, retryable } = classify(connectError.code, rawMessage);
  const target = context.resource ? ` "${context.resource}"` : "";
  const summary = `${context.operation}${target} failed: ${rawMessage || Code[connectError.code]}`;

  // Some controllers reject an expired token with a bare UNAUTHENTICATED, so the known expiry decides.
  const expiredByClock = connectError.code === Code.Unauthenticated && (context.tokenExpiresAt?.getTime() ?? Infinity) <= Date.now();
  if (type === TokenExpiredError || expiredByClock) {
    const at = context.tokenExpiresAt ? ` at ${context.tokenExpiresAt.toISOString()}` : "";
    return new TokenExpiredError(
      `${summary}. The token expired${at} and cannot rotate itself; obtain a new token with \`jmp login\` or from an administrator.`,
      {
        code: connectError.code,
        rawMessage,
        resource: context.resource,
        retryable: false,
        cause: connectError,
        expiredAt: context.tokenExpiresAt,
      },
    );
  }

  if (hasErrorCode(error, TLS_VERIFICATION_CODES)) {
    return new JumpstarterError(
      `${summary}. The controller's TLS certificate could not be verified; pass tls.ca with the CA bundle that signed it, or tls.insecure for a test setup.`,
      { code: connectError.code, rawMessage, resource: context.resource, retryable: false, cause: connectError },
    );
  }

  if (type === JumpstarterError && isConnectionError(error)) {
    // A refused, reset or closed connection is the controller being unreachable, whatever code
    // connect gave it (a reset comes as ABORTED or INTERNAL).
    const unavailable = CODE_RULES[Code.Unavailable]!;
    return new UnavailableError(`${summary}. ${unavailable.hint}`, {
      code: Code.Unavailable,
      rawMessage,
      resource: context.resource,
      retryable: true,
      cause: connectError,
    });
  }

  return new type(hint ? `${summary}. ${hint}` : summary, {
    code: connectError.code,
    rawMessage,
    resource: context.resource,
    retryable: retryable || isConnectionError(error),
    cause: connectError,
  });
}

const CONNECTION_ERROR_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "EPIPE",
  "ETIMEDOUT",
  "ENOTFOUND",
  "EAI_AGAIN",
  "ERR_HTTP2_GOAWAY_SESSION",
  "ERR_HTTP2_SESSION_ERROR",
  "ERR_HTTP2_STREAM_CANCEL",
  "ERR_HTTP2_STREAM_ERROR",
  "ERR_HTTP2_INVALID_SESSION",
  "ERR_HTTP2_ERROR",
]);

// Node.js error codes of a TLS handshake that failed certificate verification.
const TLS_VERIFICATION_CODES = new Set([
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "UNABLE_TO_GET_ISSUER_CERT",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "CERT_HAS_EXPIRED",
  "CERT_NOT_YET_VALID",
  "ERR_TLS_CERT_ALTNAME_INVALID",
]);

/**
 * Tells whether `error` comes from a broken connection (refused, reset, GOAWAY), looking through
 * `cause` chains, as connect wraps the Node.js error in a `ConnectError`.
 */
export function isConnectionError(error: unknown): boolean {
  return hasErrorCode(error, CONNECTION_ERROR_CODES);
}

function hasErrorCode(error: unknown, codes: ReadonlySet<string>): boolean {
  for (let current = error, depth = 0; current !== undefined && current !== null && depth < 8; depth++) {
    if (typeof current !== "object") return false;
    const code = (current as { code?: unknown }).code;
    if (typeof code === "string" && codes.has(code)) return true;
    current = (current as { cause?: unknown }).cause;
  }
  return false;
}

/** Fields of a lease error besides those of {@link JumpstarterErrorOptions}. */
export interface LeaseErrorOptions extends JumpstarterErrorOptions {
  /** `reason` of the lease condition behind the error, such as `NoAccess` or `Expired`. */
  reason?: string;
  /** `message` of that condition, as the controller wrote it. */
  conditionMessage?: string;
  /** The lease as last read, when it was read. */
  lease?: Lease;
}

/**
 * Base class of the errors about a lease's state. `reason` and `conditionMessage` carry the
 * condition that the controller set, and `lease` the lease as last read.
 */
export class LeaseError extends JumpstarterError {
  /** Reason of the condition behind the error, when there is one. */
  readonly reason: string | undefined;
  /** Message of that condition, when there is one. */
  readonly conditionMessage: string | undefined;
  /** The lease as last read, when it was read. */
  readonly lease: Lease | undefined;

  constructor(message: string, options: LeaseErrorOptions = {}) {
    super(message, options);
    this.reason = options.reason;
    this.conditionMessage = options.conditionMessage;
    this.lease = options.lease;
  }
}

/** The controller cannot satisfy the lease (`Unsatisfiable=True`): no exporter matches or may be used. */
export class LeaseUnsatisfiableError extends LeaseError {
  protected static override readonly defaultCode: Code = Code.FailedPrecondition;
}

/** The controller rejected the lease's spec (`Invalid=True`). */
export class LeaseInvalidError extends LeaseError {
  protected static override readonly defaultCode: Code = Code.InvalidArgument;
}

/**
 * The lease has ended: it expired, was released, was transferred to another client, or was
 * deleted. `reason` is the controller's (`Expired`, `Released`) or the SDK's (`Transferred`, `NotFound`).
 */
export class LeaseEndedError extends LeaseError {
  protected static override readonly defaultCode: Code = Code.FailedPrecondition;
}

/** The lease did not become ready within the wait's timeout. The message describes the last state seen. */
export class LeaseTimeoutError extends LeaseError {
  protected static override readonly defaultCode: Code = Code.DeadlineExceeded;

  /** Time waited, in milliseconds. */
  readonly waitedMs: number;

  constructor(message: string, options: LeaseErrorOptions & { waitedMs: number }) {
    super(message, options);
    this.waitedMs = options.waitedMs;
  }
}
