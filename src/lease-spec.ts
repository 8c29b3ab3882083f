import { create } from "@bufbuild/protobuf";
import { FieldMaskSchema } from "@bufbuild/protobuf/wkt";
import { InvalidArgumentError } from "./errors.js";
import {
  CreateLeaseRequestSchema,
  LeaseSchema,
  UpdateLeaseRequestSchema,
  type CreateLeaseRequest,
  type UpdateLeaseRequest,
} from "./generated.js";
import { parseDurationMs, parseTime, toDurationMessage, toTimestampMessage, type DurationInput, type TimeInput } from "./duration.js";
import { shortId, toResourceName } from "./names.js";
import { buildSelector, labelKeyProblem, labelValueProblem, parseSelector, type SelectorObject } from "./selector.js";

/**
 * Request for a lease. Give `selector` or `exporterName` (or both), and the time as `duration` alone,
 * `beginTime` with `duration` or `endTime`, or `endTime` with `duration`.
 */
export interface LeaseSpec {
  /** Kubernetes label selector, as a string (`board=rpi4,env in (lab)`) or an object for {@link buildSelector}. */
  selector?: string | SelectorObject;
  /** Short id or full name of one exporter to lease, instead of or in addition to a selector. */
  exporterName?: string;
  /** How long to hold the exporter: milliseconds or a duration string such as `"30m"`. */
  duration?: DurationInput;
  /** When the lease should start; by default as soon as an exporter is free. */
  beginTime?: TimeInput;
  /** When the lease should end; with `beginTime` it sets the duration. */
  endTime?: TimeInput;
  /** Labels for finding the lease later (at most 10; keys without `/`). */
  tags?: Record<string, string>;
  /** Free-form context stored with the lease (at most 8 entries; keys ≤ 32, values ≤ 64 characters). */
  context?: Record<string, string>;
  /** Allow an exporter that an administrator disabled. Default `false`. */
  allowDisabled?: boolean;
  /** Lease id to create; the controller generates one when it is absent. */
  leaseId?: string;
}

/** Fields that {@link JumpstarterClient.updateLease} can change; at least one is required. */
export interface LeaseChanges {
  /** New total duration of the lease, counted from its begin time. */
  duration?: DurationInput;
  /** New begin time; the controller rejects it once the lease has started. */
  beginTime?: TimeInput;
  /** New end time. */
  endTime?: TimeInput;
  /** Client to transfer the lease to: its short id or `namespaces/{ns}/clients/{id}`. */
  client?: string;
}

/** Maximum number of tags on a lease, as the controller enforces. */
export const MAX_LEASE_TAGS = 10;
/** Maximum number of context entries on a lease, as the controller enforces. */
export const MAX_LEASE_CONTEXT_ENTRIES = 8;
/** Maximum length of a context key, in characters. */
export const MAX_LEASE_CONTEXT_KEY_LENGTH = 32;
/** Maximum length of a context value, in characters. */
export const MAX_LEASE_CONTEXT_VALUE_LENGTH = 64;

/**
 * Validates a lease spec and builds the CreateLease request for `namespace`.
 *
 * @throws InvalidArgumentError, before any RPC, for each rule the spec breaks.
 */
export function buildCreateLeaseRequest(spec: LeaseSpec, namespace: string): CreateLeaseRequest {
  if (spec === null || typeof spec !== "object") {
    throw new InvalidArgumentError("missing lease spec: pass an object with a selector or exporterName and a duration.");
  }

  const selector = normalizeSelector(spec.selector);
  // The controller looks exporter_name up as a bare id in the lease's namespace, so a full name is
  // checked against this client's namespace and then reduced to its id.
  const exporterName = spec.exporterName === undefined ? undefined : shortId(toResourceName(spec.exporterName, "exporters", namespace));
  if (!selector && !exporterName) {
    throw new InvalidArgumentError(
      'a lease needs a selector or an exporterName: pass selector: "board=rpi4" to match by labels, or exporterName: "rpi4-01" for one exporter.',
    );
  }

  const lease = create(LeaseSchema, {
    selector: selector ?? "",
    exporterName,
    allowDisabled: spec.allowDisabled ?? false,
    tags: validateTags(spec.tags),
    context: validateContext(spec.context),
  });
  applyTimes(lease, spec);

  let leaseId = "";
  if (spec.leaseId !== undefined) {
    leaseId = shortId(toResourceName(spec.leaseId, "leases", namespace));
  }
  return create(CreateLeaseRequestSchema, { parent: `namespaces/${namespace}`, leaseId, lease });
}

/**
 * Validates lease changes and builds the UpdateLease request, with an `update_mask` that lists
 * exactly the fields given.
 *
 * @throws InvalidArgumentError, before any RPC, for an empty change set or an invalid field.
 */
export function buildUpdateLeaseRequest(name: string, changes: LeaseChanges, namespace: string): UpdateLeaseRequest {
  const fullName = toResourceName(name, "leases", namespace);
  const lease = create(LeaseSchema, { name: fullName });
  const paths: string[] = [];

  if (changes?.duration !== undefined) {
    lease.duration = toDurationMessage(changes.duration, "duration");
    paths.push("duration");
  }
  if (changes?.beginTime !== undefined) {
    lease.beginTime = toTimestampMessage(changes.beginTime, "beginTime");
    paths.push("begin_time");
  }
  if (changes?.endTime !== undefined) {
    lease.endTime = toTimestampMessage(changes.endTime, "endTime");
    paths.push("end_time");
  }
  if (changes?.client !== undefined) {
    lease.client = toResourceName(changes.client, "clients", namespace);
    paths.push("client");
  }
  if (paths.length === 0) {
    throw new InvalidArgumentError(
      `nothing to update on lease "${fullName}": pass at least one of duration, beginTime, endTime or client.`,
      { resource: fullName },
    );
  }
  if (changes.beginTime !== undefined && changes.endTime !== undefined) {
    checkOrder(parseTime(changes.beginTime), parseTime(changes.endTime));
  }

  return create(UpdateLeaseRequestSchema, { lease, updateMask: create(FieldMaskSchema, { paths }) });
}

function normalizeSelector(selector: LeaseSpec["selector"]): string | undefined {
  if (selector === undefined) return undefined;
  const text = typeof selector === "string" ? selector : buildSelector(selector);
  if (text.trim() === "") return undefined;
  parseSelector(text);
  return text;
}

function applyTimes(lease: ReturnType<typeof create<typeof LeaseSchema>>, spec: LeaseSpec): void {
  const hasDuration = spec.duration !== undefined;
  const begin = spec.beginTime === undefined ? undefined : parseTime(spec.beginTime, "beginTime");
  const end = spec.endTime === undefined ? undefined : parseTime(spec.endTime, "endTime");

  if (!hasDuration && !(begin && end)) {
    throw new InvalidArgumentError(
      end
        ? "a lease with only an endTime needs a duration too (or a beginTime), so the controller can compute when it starts."
        : 'a lease needs a duration, such as duration: "30m", or both beginTime and endTime.',
    );
  }
  if (begin && end) checkOrder(begin, end);
  if (hasDuration && begin && end && parseDurationMs(spec.duration!) !== end.getTime() - begin.getTime()) {
    throw new InvalidArgumentError(
      `the lease duration ${JSON.stringify(spec.duration)} does not equal endTime minus beginTime (${end.getTime() - begin.getTime()} ms); give two of the three.`,
    );
  }

  if (hasDuration) lease.duration = toDurationMessage(spec.duration!, "duration");
  if (begin) lease.beginTime = toTimestampMessage(begin);
  if (end) lease.endTime = toTimestampMessage(end);
}

function checkOrder(begin: Date, end: Date): void {
  if (end.getTime() <= begin.getTime()) {
    throw new InvalidArgumentError(
      `the lease endTime ${end.toISOString()} is not after its beginTime ${begin.toISOString()}; a lease must last a positive time.`,
    );
  }
}

function validateTags(tags: Record<string, string> | undefined): Record<string, string> {
  if (tags === undefined) return {};
  const entries = Object.entries(tags);
  if (entries.length > MAX_LEASE_TAGS) {
    throw new InvalidArgumentError(`a lease has at most ${MAX_LEASE_TAGS} tags, got ${entries.length}; remove some.`);
  }
  for (const [key, value] of entries) {
    if (key.includes("/")) {
      throw new InvalidArgumentError(`invalid tag key "${key}": tag keys cannot contain "/" (no prefix); use a plain label name.`);
    }
    const keyProblem = labelKeyProblem(key);
    if (keyProblem) throw new InvalidArgumentError(`invalid tag key "${key}": ${keyProblem}.`);
    if (typeof value !== "string") {
      throw new InvalidArgumentError(`invalid value for tag "${key}": expected a string, got ${typeof value}.`);
    }
    const valueProblem = labelValueProblem(value);
    if (valueProblem) throw new InvalidArgumentError(`invalid value for tag "${key}": ${valueProblem}.`);
  }
  return { ...tags };
}

function validateContext(context: Record<string, string> | undefined): Record<string, string> {
  if (context === undefined) return {};
  const entries = Object.entries(context);
  if (entries.length > MAX_LEASE_CONTEXT_ENTRIES) {
    throw new InvalidArgumentError(
      `a lease has at most ${MAX_LEASE_CONTEXT_ENTRIES} context entries, got ${entries.length}; remove some.`,
    );
  }
  for (const [key, value] of entries) {
    if (key.length === 0 || key.length > MAX_LEASE_CONTEXT_KEY_LENGTH) {
      throw new InvalidArgumentError(
        `invalid context key "${key}": it must be 1 to ${MAX_LEASE_CONTEXT_KEY_LENGTH} characters, got ${key.length}.`,
      );
    }
    if (typeof value !== "string" || value.length > MAX_LEASE_CONTEXT_VALUE_LENGTH) {
      throw new InvalidArgumentError(
        `invalid value for context key "${key}": it must be a string of at most ${MAX_LEASE_CONTEXT_VALUE_LENGTH} characters.`,
      );
    }
  }
  return { ...context };
}
