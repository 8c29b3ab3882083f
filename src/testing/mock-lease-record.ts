import { create } from "@bufbuild/protobuf";
import { durationFromMs, timestampFromDate } from "@bufbuild/protobuf/wkt";
import { ConditionSchema, LeaseSchema, TimeSchema, type Lease } from "../generated.js";
import { formatSelector, type ParsedSelector } from "../selector.js";
import { formatObjectName } from "./mock-names.js";
import type { LeaseTimes } from "./mock-time-rules.js";

/** Condition types that the controller sets on a lease. */
export type LeaseConditionType = "Pending" | "Ready" | "Unsatisfiable" | "Invalid";

/** A Kubernetes `metav1.Condition` on a lease. */
export interface LeaseCondition {
  type: LeaseConditionType;
  status: "True" | "False";
  reason: string;
  message: string;
  /** Time of the last change of `status`. A new reason or message with the same status keeps it. */
  lastTransitionTime: Date;
  /** Lease generation that the condition describes. */
  observedGeneration: number;
}

/** State of one lease inside the mock controller. */
export interface LeaseRecord {
  id: string;
  namespace: string;
  /** Client that owns the lease. UpdateLease can transfer it. */
  clientName: string;
  /** Creation order, used to serve waiting leases first come, first served. */
  sequence: number;
  parsedSelector: ParsedSelector;
  /** Exporter id requested by `exporter_name`, if any. */
  exporterName: string | undefined;
  /** Time fields after the controller's rules. */
  times: LeaseTimes;
  tags: Record<string, string>;
  context: Record<string, string>;
  allowDisabled: boolean;
  /** Kubernetes `metadata.generation`: 1 at creation, plus 1 for each change of the spec. */
  generation: number;
  /** Exporter chosen for the lease while the ready delay runs, cleared when the lease becomes Ready. */
  reservedExporter: string | undefined;
  /** Exporter assigned to the lease, set when it becomes Ready and kept after it ends. */
  exporter: string | undefined;
  effectiveBeginTime: Date | undefined;
  effectiveEndTime: Date | undefined;
  ended: boolean;
  /** Whether the client released the lease with DeleteLease. */
  released: boolean;
  /** Conditions keyed by type, in the order that they were first set. */
  conditions: Map<LeaseConditionType, LeaseCondition>;
}

/**
 * Sets a condition with Kubernetes semantics: it replaces the condition of the same type, and
 * `lastTransitionTime` changes only when `status` changes.
 */
export function setLeaseCondition(
  lease: LeaseRecord,
  type: LeaseConditionType,
  status: "True" | "False",
  reason: string,
  message: string,
  now: Date,
): void {
  const previous = lease.conditions.get(type);
  const lastTransitionTime = previous !== undefined && previous.status === status ? previous.lastTransitionTime : now;
  lease.conditions.set(type, {
    type,
    status,
    reason,
    message,
    lastTransitionTime,
    observedGeneration: lease.generation,
  });
}

/** Tells whether an active lease holds `exporterName`, as reserved or as assigned. */
export function leaseHoldsExporter(lease: LeaseRecord, exporterName: string): boolean {
  if (lease.ended) return false;
  return lease.reservedExporter === exporterName || lease.exporter === exporterName;
}

/**
 * Builds the protobuf Lease the way the controller does.
 *
 * The selector is echoed in canonical form, and as `<none>` when empty (an `exporter_name` lease),
 * which is what Kubernetes' selector formatting gives. `effective_begin_time`, `effective_end_time`
 * and `effective_duration` appear once the lease has begun. The duration is the time so far while
 * the lease is active, and its final length once it has ended.
 */
export function leaseToProto(lease: LeaseRecord, now: Date): Lease {
  const selector = formatSelector(lease.parsedSelector);
  const message = create(LeaseSchema, {
    name: formatObjectName(lease.namespace, "leases", lease.id),
    selector: selector === "" ? "<none>" : selector,
    duration: durationFromMs(lease.times.durationMs),
    client: formatObjectName(lease.namespace, "clients", lease.clientName),
    conditions: [...lease.conditions.values()].map((condition) =>
      create(ConditionSchema, {
        type: condition.type,
        status: condition.status,
        reason: condition.reason,
        message: condition.message,
        observedGeneration: BigInt(condition.observedGeneration),
        lastTransitionTime: kubernetesTime(condition.lastTransitionTime),
      }),
    ),
    tags: { ...lease.tags },
    context: { ...lease.context },
    allowDisabled: lease.allowDisabled,
  });

  if (lease.exporterName !== undefined) message.exporterName = lease.exporterName;
  if (lease.times.beginTime !== undefined) message.beginTime = timestampFromDate(lease.times.beginTime);
  if (lease.times.endTime !== undefined) message.endTime = timestampFromDate(lease.times.endTime);
  if (lease.exporter !== undefined) {
    message.exporter = formatObjectName(lease.namespace, "exporters", lease.exporter);
  }
  if (lease.effectiveBeginTime !== undefined) {
    message.effectiveBeginTime = timestampFromDate(lease.effectiveBeginTime);
    const until = lease.effectiveEndTime ?? now;
    message.effectiveDuration = durationFromMs(Math.max(0, until.getTime() - lease.effectiveBeginTime.getTime()));
    // Like the controller, a lease that ended before it began has no effective end time.
    if (lease.effectiveEndTime !== undefined) {
      message.effectiveEndTime = timestampFromDate(lease.effectiveEndTime);
    }
  }
  return message;
}

function kubernetesTime(date: Date) {
  const timestamp = timestampFromDate(date);
  return create(TimeSchema, { seconds: timestamp.seconds, nanos: timestamp.nanos });
}
