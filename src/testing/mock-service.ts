import { create } from "@bufbuild/protobuf";
import { EmptySchema, durationMs, timestampDate, timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, type HandlerContext, type ServiceImpl } from "@connectrpc/connect";
import {
  ListExportersResponseSchema,
  ListLeasesResponseSchema,
  RotateTokenResponseSchema,
  type ClientService,
  type Lease,
} from "../generated.js";
import { selectorMatches } from "../selector.js";
import type { MockCaller, MockTokenAuthority } from "./mock-auth.js";
import type { MockCall, MockMethod } from "./mock-calls.js";
import { exporterToProto } from "./mock-exporters.js";
import type { MockFaults } from "./mock-faults.js";
import { leaseToProto, type LeaseRecord } from "./mock-lease-record.js";
import { parseRequestSelector, type MockLeaseStore } from "./mock-leases.js";
import {
  kubernetesNotFound,
  namespaceMismatch,
  parseNamespaceName,
  parseObjectName,
} from "./mock-names.js";
import type { MockPaginator } from "./mock-pagination.js";
import type { LeaseTimeInput } from "./mock-time-rules.js";

/** Shared state that the RPC handlers read and change. */
export interface MockServiceState {
  store: MockLeaseStore;
  auth: MockTokenAuthority;
  faults: MockFaults;
  paginator: MockPaginator;
  /** Call log, which the handlers append to. */
  calls: MockCall[];
  now: () => Date;
  /** Lifetime of tokens from RotateToken in ms, read on every call so that tests can change it. */
  tokenLifetimeMs: () => number;
}

/** `update_mask` paths that UpdateLease accepts. */
const UPDATE_MASK_PATHS = ["duration", "begin_time", "end_time", "client"] as const;
type UpdateMaskPath = (typeof UPDATE_MASK_PATHS)[number];

/**
 * Builds the `jumpstarter.client.v1.ClientService` handlers of the mock controller.
 *
 * Every call is logged first, then injected faults apply, then authentication, then the clock
 * catches up on lease events, and only then does the method run.
 * NOTE: the controller parses the resource name before it authenticates, so for a request that is
 * both unauthenticated and malformed it returns the name error where the mock returns the
 * authentication error.
 */
export function createMockClientService(state: MockServiceState): ServiceImpl<typeof ClientService> {
  return withLostResponses(state.faults, createHandlers(state));
}

// Runs each handler and then applies a queued lost response, so the call takes effect but the
// client receives an error.
function withLostResponses(faults: MockFaults, handlers: ServiceImpl<typeof ClientService>): ServiceImpl<typeof ClientService> {
  const wrapped: Record<string, unknown> = {};
  for (const [key, handler] of Object.entries(handlers) as [string, (request: unknown, context: HandlerContext) => Promise<unknown>][]) {
    const method = (key.charAt(0).toUpperCase() + key.slice(1)) as MockMethod;
    wrapped[key] = async (request: unknown, context: HandlerContext) => {
      const response = await handler(request, context);
      faults.applyAfter(method);
      return response;
    };
  }
  return wrapped as ServiceImpl<typeof ClientService>;
}

function createHandlers(state: MockServiceState): ServiceImpl<typeof ClientService> {
  const { store, paginator, now } = state;

  async function startCall(method: MockMethod, request: unknown, context: HandlerContext): Promise<MockCaller> {
    state.calls.push({ method, request, headers: headerRecord(context.requestHeader), at: now() });
    await state.faults.apply(method, context.signal);
    const caller = await state.auth.authenticate(context.requestHeader);
    store.reconcile();
    return caller;
  }

  function ownedLease(caller: MockCaller, name: string, method: MockMethod, denial: string): LeaseRecord {
    const key = parseObjectName(name, "leases");
    requireNamespace(caller, key.namespace);
    const lease = store.findLease(key.namespace, key.id);
    if (lease === undefined) throw kubernetesNotFound("leases", key.id);
    // The controller returns a plain error here, which gRPC sends as UNKNOWN.
    if (lease.clientName !== caller.clientName) throw new ConnectError(`${method} ${denial}`, Code.Unknown);
    return lease;
  }

  return {
    async getExporter(request, context) {
      const caller = await startCall("GetExporter", request, context);
      const key = parseObjectName(request.name, "exporters");
      requireNamespace(caller, key.namespace);
      const exporter = store.findExporter(key.namespace, key.id);
      if (exporter === undefined) throw kubernetesNotFound("exporters", key.id);
      return exporterToProto(exporter, key.namespace, request.showHiddenLabels);
    },

    async listExporters(request, context) {
      const caller = await startCall("ListExporters", request, context);
      const namespace = parseNamespaceName(request.parent);
      requireNamespace(caller, namespace);
      const filter = parseRequestSelector(request.filter, "filter");

      const exporters = store.exportersIn(namespace);
      // Without a selector every exporter matches, and skipping the filter keeps large labs cheap to page.
      const matching = filter.requirements.length === 0 ? exporters : exporters.filter((exporter) => selectorMatches(filter, exporter.labels));
      const page = paginator.paginate(matching, (exporter) => exporter.name, request.pageSize, request.pageToken);
      return create(ListExportersResponseSchema, {
        exporters: page.items.map((exporter) => exporterToProto(exporter, namespace, request.showHiddenLabels)),
        nextPageToken: page.nextPageToken,
      });
    },

    async getLease(request, context) {
      const caller = await startCall("GetLease", request, context);
      const lease = ownedLease(caller, request.name, "GetLease", "permission denied");
      return leaseToProto(lease, now());
    },

    async listLeases(request, context) {
      const caller = await startCall("ListLeases", request, context);
      const namespace = parseNamespaceName(request.parent);
      requireNamespace(caller, namespace);
      // NOTE: the mock treats a lease's tags as its labels, so `filter` and `tag_filter` both
      // match tags. The controller's lease labels also carry the selector's equality labels, and
      // it stores tags under a prefix that `filter` has to spell out.
      const filter = parseRequestSelector(request.filter, "filter");
      const tagFilter = parseRequestSelector(request.tagFilter, "tag_filter");
      const onlyActive = request.onlyActive ?? true;

      const matching = store
        .leasesIn(namespace)
        .filter((lease) => lease.clientName === caller.clientName)
        .filter((lease) => !onlyActive || !lease.ended)
        .filter((lease) => selectorMatches(filter, lease.tags) && selectorMatches(tagFilter, lease.tags));
      const page = paginator.paginate(matching, (lease) => lease.id, request.pageSize, request.pageToken);
      const at = now();
      return create(ListLeasesResponseSchema, {
        leases: page.items.map((lease) => leaseToProto(lease, at)),
        nextPageToken: page.nextPageToken,
      });
    },

    async createLease(request, context) {
      const caller = await startCall("CreateLease", request, context);
      const namespace = parseNamespaceName(request.parent);
      requireNamespace(caller, namespace);
      const lease = request.lease;
      if (lease === undefined) throw new ConnectError("lease is required", Code.InvalidArgument);

      return store.createLease({
        namespace,
        clientName: caller.clientName,
        leaseId: request.leaseId,
        selector: lease.selector,
        exporterName: lease.exporterName,
        times: requestedTimes(lease),
        tags: lease.tags,
        context: lease.context,
        allowDisabled: lease.allowDisabled,
      });
    },

    async updateLease(request, context) {
      const caller = await startCall("UpdateLease", request, context);
      const changes = request.lease;
      if (changes === undefined) throw new ConnectError("lease is required", Code.InvalidArgument);
      const lease = ownedLease(caller, changes.name, "UpdateLease", "permission denied");
      const paths = updateMaskPaths(request.updateMask?.paths ?? []);

      const newClient = paths.has("client") ? transferTarget(lease, changes.client ?? "") : undefined;
      if (paths.has("duration") || paths.has("begin_time") || paths.has("end_time")) {
        store.updateLeaseTimes(lease, changedTimes(lease, changes, paths));
      }
      if (newClient !== undefined) store.transferLease(lease, newClient);
      return leaseToProto(lease, now());
    },

    async deleteLease(request, context) {
      const caller = await startCall("DeleteLease", request, context);
      const lease = ownedLease(caller, request.name, "DeleteLease", "permission denied: only lease owner can release");
      if (lease.released) {
        throw new ConnectError(`lease "${request.name}" has already been released`, Code.FailedPrecondition);
      }
      store.releaseLease(lease);
      return create(EmptySchema);
    },

    async rotateToken(request, context) {
      const caller = await startCall("RotateToken", request, context);
      requireRotationParent(caller, request.parent);
      const issued = await state.auth.issue({
        namespace: caller.namespace,
        clientName: caller.clientName,
        lifetimeMs: state.tokenLifetimeMs(),
        issuedAt: now(),
      });
      return create(RotateTokenResponseSchema, {
        token: issued.token,
        expiry: timestampFromDate(issued.expiresAt),
      });
    },
  };
}

function requireNamespace(caller: MockCaller, namespace: string): void {
  if (namespace !== caller.namespace) throw namespaceMismatch();
}

// The controller's RotateToken takes the namespace, `namespaces/{namespace}`, and rejects any other
// form with the same parse error as other malformed names.
function requireRotationParent(caller: MockCaller, parent: string): void {
  requireNamespace(caller, parseNamespaceName(parent));
}

function headerRecord(headers: Headers): Record<string, string> {
  const record: Record<string, string> = {};
  headers.forEach((value, name) => {
    record[name] = value;
  });
  return record;
}

function requestedTimes(lease: Lease): LeaseTimeInput {
  return {
    beginTime: lease.beginTime === undefined ? undefined : timestampDate(lease.beginTime),
    endTime: lease.endTime === undefined ? undefined : timestampDate(lease.endTime),
    durationMs: lease.duration === undefined ? undefined : durationMs(lease.duration),
  };
}

function updateMaskPaths(paths: readonly string[]): Set<UpdateMaskPath> {
  if (paths.length === 0) {
    throw new ConnectError(
      `update_mask is required: list the fields to change, from ${UPDATE_MASK_PATHS.join(", ")}`,
      Code.InvalidArgument,
    );
  }
  const result = new Set<UpdateMaskPath>();
  for (const path of paths) {
    if (!(UPDATE_MASK_PATHS as readonly string[]).includes(path)) {
      throw new ConnectError(
        `unsupported update_mask path "${path}": UpdateLease can change ${UPDATE_MASK_PATHS.join(", ")}`,
        Code.InvalidArgument,
      );
    }
    result.add(path as UpdateMaskPath);
  }
  return result;
}

// Merges the masked time fields into the lease's current time fields, derived ones included, as the
// controller patches its spec. A masked field that the request leaves unset clears it.
function changedTimes(lease: LeaseRecord, changes: Lease, paths: Set<UpdateMaskPath>): LeaseTimeInput {
  if (lease.ended) {
    throw new ConnectError("cannot modify time fields: lease has already ended", Code.FailedPrecondition);
  }
  const requested = requestedTimes(changes);
  const merged: LeaseTimeInput = { ...lease.times };

  if (paths.has("begin_time")) {
    const current = lease.times.beginTime?.getTime();
    if (lease.effectiveBeginTime !== undefined && requested.beginTime?.getTime() !== current) {
      throw new ConnectError("cannot update begin_time: lease has already started", Code.Unknown);
    }
    merged.beginTime = requested.beginTime;
  }
  if (paths.has("duration")) merged.durationMs = requested.durationMs;
  if (paths.has("end_time")) merged.endTime = requested.endTime;
  return merged;
}

// Checks a transfer without changing the lease, so that a rejected request leaves it unchanged.
function transferTarget(lease: LeaseRecord, client: string): string {
  const key = parseObjectName(client, "clients");
  if (key.namespace !== lease.namespace) {
    throw new ConnectError("cannot transfer lease to client in different namespace", Code.InvalidArgument);
  }
  if (lease.ended) {
    throw new ConnectError("cannot transfer lease: lease has already ended", Code.FailedPrecondition);
  }
  if (lease.effectiveBeginTime === undefined) {
    throw new ConnectError("cannot transfer lease: lease has not started yet", Code.FailedPrecondition);
  }
  return key.id;
}
