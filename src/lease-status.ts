import type { Condition, Lease } from "./generated.js";
import { durationMessageToMs, timestampToDate } from "./duration.js";

/** Condition types that the controller sets on a lease. */
export type LeaseConditionType = "Ready" | "Pending" | "Unsatisfiable" | "Invalid" | (string & {});

/**
 * Finds the condition of `type` on a lease. Conditions are looked up by type, never by position,
 * because the controller keeps a stale `Pending=True` next to `Ready=True`.
 */
export function leaseCondition(lease: Lease, type: LeaseConditionType): Condition | undefined {
  return lease.conditions.find((condition) => condition.type === type);
}

/** Tells whether the condition of `type` is present with status `True`. */
export function isLeaseConditionTrue(lease: Lease, type: LeaseConditionType): boolean {
  return leaseCondition(lease, type)?.status === "True";
}

/** Tells whether the lease holds an exporter now: `Ready=True` and not ended. */
export function isLeaseReady(lease: Lease): boolean {
  return isLeaseConditionTrue(lease, "Ready") && !isLeaseEnded(lease);
}

/**
 * Tells whether the lease has ended: it has an `effective_end_time`, or `Ready=False` with
 * reason `Released` or `Expired`.
 */
export function isLeaseEnded(lease: Lease): boolean {
  if (lease.effectiveEndTime !== undefined) return true;
  const ready = leaseCondition(lease, "Ready");
  return ready?.status === "False" && (ready.reason === "Released" || ready.reason === "Expired");
}

/**
 * Computes when the lease ends or ended: its `effective_end_time`, else its `end_time`, else the
 * effective begin time (or `begin_time`) plus the duration. `undefined` when none is known, as for a
 * lease that has not started and has no fixed end.
 */
export function leaseEndsAt(lease: Lease): Date | undefined {
  const effectiveEnd = timestampToDate(lease.effectiveEndTime);
  if (effectiveEnd) return effectiveEnd;
  const end = timestampToDate(lease.endTime);
  if (end) return end;
  const begin = timestampToDate(lease.effectiveBeginTime) ?? timestampToDate(lease.beginTime);
  const duration = lease.duration ?? lease.effectiveDuration;
  if (!begin || !duration) return undefined;
  return new Date(begin.getTime() + durationMessageToMs(duration));
}

/** Returns the short id of the exporter assigned to the lease, or `undefined` before assignment. */
export function leaseExporterId(lease: Lease): string | undefined {
  const exporter = lease.exporter;
  if (!exporter) return undefined;
  return exporter.slice(exporter.lastIndexOf("/") + 1);
}
