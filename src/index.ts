/**
 * TypeScript client for the Jumpstarter controller's `jumpstarter.client.v1.ClientService`: list
 * exporters, create, read, update and release leases, and rotate the client's token.
 *
 * @packageDocumentation
 * @module @jumpstarter/sdk
 */
// Public API of @jumpstarter/sdk, user-facing symbols first.
export {
  JumpstarterClient,
  type JumpstarterClientOptions,
  type GetExporterOptions,
  type ExporterQuery,
  type LeaseQuery,
  type RotatedToken,
} from "./client.js";
export { type CallOptions, DEFAULT_TIMEOUT_MS } from "./call.js";
export { type RetryOptions, type RetrySetting, type RetryPolicy, DEFAULT_RETRY_POLICY } from "./retry.js";
export { type TokenProvider, type TokenRequest, type ProvidedToken } from "./credentials/token-provider.js";
export { type TokenRotationOptions } from "./credentials/token-manager.js";
export {
  renewalThresholdMs,
  DEFAULT_RENEW_BEFORE_MS,
  TOKEN_EXPIRY_MARGIN_MS,
} from "./credentials/renewal-schedule.js";
export { readTokenTimes, type TokenTimes } from "./credentials/jwt-expiry.js";
export { type FromConfigOptions } from "./config/from-config.js";
export { loadClientConfig, type LoadClientConfigOptions } from "./config/load-client-config.js";
export { ClientConfig, GRPC_INSECURE_ENV_VAR, type ClientConfigFields } from "./config/client-config.js";
export { resolveConfigHome, CONFIG_HOME_ENV_VAR } from "./config/config-home.js";
export { type AcquireLeaseRequest, type AttachLeaseOptions } from "./lease/acquire.js";
export {
  LeaseHandle,
  type LeaseHandleOptions,
  type AutoExtendOptions,
  type LeaseEndingEvent,
  DEFAULT_LEASE_WATCH_INTERVAL_MS,
} from "./lease/handle.js";
export {
  pollDelayMs,
  isTransientError,
  type WaitForLeaseOptions,
  type LeaseProgress,
  type PollScheduleOptions,
  DEFAULT_LEASE_TIMEOUT_MS,
  DEFAULT_POLL_MIN_DELAY_MS,
  DEFAULT_POLL_MAX_DELAY_MS,
} from "./lease/wait.js";
export { describeLeaseState, evaluateLease, type LeaseState, type LeaseOutcome } from "./lease/state.js";
export { RELEASE_TIMEOUT_MS } from "./lease/release.js";
export { type ReleaseOnExitOptions, DEFAULT_RELEASE_ON_EXIT_TIMEOUT_MS } from "./lease/release-on-exit.js";
export { systemClock, type LeaseClock, type SleepOptions } from "./lease/clock.js";
export { PagedIterable, type Page, type PaginationOptions, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE } from "./pagination.js";
export {
  type LeaseSpec,
  type LeaseChanges,
  MAX_LEASE_TAGS,
  MAX_LEASE_CONTEXT_ENTRIES,
  MAX_LEASE_CONTEXT_KEY_LENGTH,
  MAX_LEASE_CONTEXT_VALUE_LENGTH,
} from "./lease-spec.js";
export {
  leaseCondition,
  isLeaseConditionTrue,
  isLeaseReady,
  isLeaseEnded,
  leaseEndsAt,
  leaseExporterId,
  type LeaseConditionType,
} from "./lease-status.js";
export {
  parseSelector,
  formatSelector,
  selectorMatches,
  buildSelector,
  type ParsedSelector,
  type SelectorRequirement,
  type SelectorOperator,
  type SelectorObject,
} from "./selector.js";
export {
  parseDurationMs,
  formatDurationMs,
  parseTime,
  type DurationInput,
  type TimeInput,
} from "./duration.js";
export { shortId, parseResourceName, formatResourceName, toResourceName, type ResourceKind, type ResourceName } from "./names.js";
export {
  JumpstarterError,
  NotFoundError,
  AlreadyExistsError,
  PermissionDeniedError,
  UnauthenticatedError,
  TokenExpiredError,
  InvalidArgumentError,
  FailedPreconditionError,
  UnavailableError,
  DeadlineExceededError,
  CanceledError,
  PageTokenExpiredError,
  ClientClosedError,
  ConfigError,
  LeaseError,
  LeaseUnsatisfiableError,
  LeaseInvalidError,
  LeaseEndedError,
  LeaseTimeoutError,
  isJumpstarterError,
  type JumpstarterErrorOptions,
  type LeaseErrorOptions,
} from "./errors.js";
// The gRPC status codes of `JumpstarterError.code`, re-exported so that users need no direct
// dependency on connect to compare them.
export { Code } from "@connectrpc/connect";
export { type Logger, silentLogger, DEBUG_ENV_VAR } from "./logger.js";
export { type TlsOptions, type ConnectionOptions, parseEndpoint, isLoopbackHost } from "./transport.js";
export { HEADER_AUTHORIZATION, HEADER_KIND, HEADER_NAMESPACE, HEADER_NAME } from "./metadata.js";
export {
  type Exporter,
  type Lease,
  type Condition,
  ExporterStatus,
  ExporterSchema,
  LeaseSchema,
  ClientService,
} from "./generated.js";
// Messages of ClientService, for calling it through a connect client of your own.
export {
  type Time,
  type GetExporterRequest,
  type ListExportersRequest,
  type ListExportersResponse,
  type GetLeaseRequest,
  type ListLeasesRequest,
  type ListLeasesResponse,
  type CreateLeaseRequest,
  type UpdateLeaseRequest,
  type DeleteLeaseRequest,
  type RotateTokenRequest,
  type RotateTokenResponse,
  GetExporterRequestSchema,
  ListExportersRequestSchema,
  ListExportersResponseSchema,
  GetLeaseRequestSchema,
  ListLeasesRequestSchema,
  ListLeasesResponseSchema,
  CreateLeaseRequestSchema,
  UpdateLeaseRequestSchema,
  DeleteLeaseRequestSchema,
  RotateTokenRequestSchema,
  RotateTokenResponseSchema,
} from "./generated.js";
export type { PageFetcher } from "./pagination.js";
export type { ParsedEndpoint } from "./transport.js";
