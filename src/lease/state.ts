import { LeaseEndedError, LeaseInvalidError, LeaseUnsatisfiableError, type LeaseError } from "../errors.js";
import type { Condition, Lease } from "../generated.js";
import { isLeaseConditionTrue, isLeaseEnded, isLeaseReady, leaseCondition, leaseExporterId } from "../lease-status.js";

/** The state of a lease in one condition, as {@link describeLeaseState} reads it. */
export interface LeaseState {
  /** Type of the condition that decides the state (`Ready`, `Invalid`, `Unsatisfiable`, `Pending`), or `undefined` before the controller set any. */
  type: string | undefined;
  /** Status of that condition: `True` or `False`. */
  status: string | undefined;
  /** Reason of that condition, such as `NotAvailable`. */
  reason: string | undefined;
  /** Message of that condition, as the controller wrote it. */
  message: string | undefined;
  /** The state in words, such as `Pending (NotAvailable): all matching exporters are leased`. */
  summary: string;
}

/**
 * Reduces a lease to the one condition that decides what happens next, in this order: `Ready=True`
 * on a lease that has not ended, `Invalid=True`, `Unsatisfiable=True`, the end of the lease,
 * `Pending=True`, and last a lease without conditions. Conditions are found by type, never by
 * position, because the controller keeps a stale `Pending=True` next to `Ready=True`.
 */
export function describeLeaseState(lease: Lease): LeaseState {
  if (isLeaseReady(lease)) {
    const exporter = leaseExporterId(lease);
    return fromCondition(leaseCondition(lease, "Ready")!, exporter ? `Ready: exporter ${exporter} is assigned` : "Ready");
  }
  for (const type of ["Invalid", "Unsatisfiable"]) {
    if (isLeaseConditionTrue(lease, type)) return fromCondition(leaseCondition(lease, type)!);
  }
  if (isLeaseEnded(lease)) {
    const ready = leaseCondition(lease, "Ready");
    if (ready?.status === "False") return fromCondition(ready, `ended${detail(ready)}`);
    return { type: undefined, status: undefined, reason: undefined, message: undefined, summary: "ended" };
  }
  const pending = leaseCondition(lease, "Pending");
  if (pending?.status === "True") return fromCondition(pending);
  return {
    type: undefined,
    status: undefined,
    reason: undefined,
    message: undefined,
    summary: "waiting for the controller to schedule the lease",
  };
}

/** Decision of a wait after reading a lease: stop with it, go on waiting, or fail. */
export type LeaseOutcome = { kind: "ready" } | { kind: "waiting" } | { kind: "failed"; error: LeaseError };

/**
 * Decides what a wait does with a lease it read.
 *
 * - `Ready=True` on a lease that has not ended: ready.
 * - `Invalid=True`: fails with {@link LeaseInvalidError}.
 * - `Unsatisfiable=True`: fails with {@link LeaseUnsatisfiableError}, except reason `NoExporter`,
 *   which older controllers set while every matching exporter is busy, so the wait goes on.
 * - `Ready=False` with reason `Released` or `Expired`, or an `effective_end_time`: fails with
 *   {@link LeaseEndedError}.
 * - Anything else (`Pending=True`, no conditions yet): waiting.
 */
export function evaluateLease(lease: Lease): LeaseOutcome {
  if (isLeaseReady(lease)) return { kind: "ready" };

  const invalid = trueCondition(lease, "Invalid");
  if (invalid) {
    const message = `lease "${lease.name}" is invalid${detail(invalid)}. Fix the lease request and create a new lease.`;
    return { kind: "failed", error: new LeaseInvalidError(message, errorFields(lease, invalid)) };
  }

  const unsatisfiable = trueCondition(lease, "Unsatisfiable");
  if (unsatisfiable && unsatisfiable.reason !== "NoExporter") {
    const message =
      `lease "${lease.name}" cannot be satisfied${detail(unsatisfiable)}. ` +
      "Check the selector against listExporters(), or request another exporter.";
    return { kind: "failed", error: new LeaseUnsatisfiableError(message, errorFields(lease, unsatisfiable)) };
  }

  if (isLeaseEnded(lease)) return { kind: "failed", error: leaseEndedError(lease, "before it became ready") };
  return { kind: "waiting" };
}

/**
 * Builds the {@link LeaseEndedError} of an ended lease. `when` completes "lease X ended ...", as in
 * `before it became ready`.
 */
export function leaseEndedError(lease: Lease, when: string): LeaseEndedError {
  const ready = leaseCondition(lease, "Ready");
  const condition = ready?.status === "False" ? ready : undefined;
  const message = `lease "${lease.name}" ended ${when}${condition ? detail(condition) : ""}. Acquire a new lease.`;
  return new LeaseEndedError(message, { ...errorFields(lease, condition), reason: condition?.reason ?? "Ended" });
}

function trueCondition(lease: Lease, type: string): Condition | undefined {
  const condition = leaseCondition(lease, type);
  return condition?.status === "True" ? condition : undefined;
}

function fromCondition(condition: Condition, summary?: string): LeaseState {
  return {
    type: condition.type,
    status: condition.status,
    reason: condition.reason || undefined,
    message: condition.message || undefined,
    summary: summary ?? `${condition.type}${detail(condition)}`,
  };
}

// Formats " (Reason): message" from whichever of the two the condition has.
function detail(condition: Condition): string {
  const reason = condition.reason ? ` (${condition.reason})` : "";
  const message = condition.message ? `: ${condition.message}` : "";
  return reason + message;
}

function errorFields(lease: Lease, condition: Condition | undefined) {
  return {
    resource: lease.name,
    reason: condition?.reason || undefined,
    conditionMessage: condition?.message || undefined,
    lease,
  };
}
