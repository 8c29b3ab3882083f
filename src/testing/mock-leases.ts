import { Code, ConnectError } from "@connectrpc/connect";
import { v7 as uuidv7 } from "uuid";
import { ExporterStatus, type Lease } from "../generated.js";
import {
  formatSelector,
  labelKeyProblem,
  labelValueProblem,
  parseSelector,
  selectorMatches,
  type ParsedSelector,
} from "../selector.js";
import {
  cloneExporter,
  exporterFromSpec,
  isExporterOnline,
  type MockExporter,
  type MockExporterSpec,
} from "./mock-exporters.js";
import {
  leaseHoldsExporter,
  leaseToProto,
  setLeaseCondition,
  type LeaseConditionType,
  type LeaseRecord,
} from "./mock-lease-record.js";
import { kubernetesAlreadyExists, objectIdProblem } from "./mock-names.js";
import { resolveLeaseTimes, type LeaseTimeInput } from "./mock-time-rules.js";

/** Fields of a new lease, already taken out of the request. */
export interface LeaseCreateInput {
  namespace: string;
  clientName: string;
  /** Requested id. Empty or undefined generates a UUIDv7. */
  leaseId?: string | undefined;
  /** Kubernetes label selector, which may be empty when `exporterName` is set. */
  selector: string;
  exporterName?: string | undefined;
  times: LeaseTimeInput;
  tags?: Record<string, string> | undefined;
  context?: Record<string, string> | undefined;
  allowDisabled?: boolean | undefined;
}

// setTimeout fires at once for delays above 2^31 - 1 ms, so longer waits are split.
const MAX_TIMER_DELAY_MS = 2_147_483_647;

interface LeaseTimer {
  handle: NodeJS.Timeout;
  kind: "ready" | "wake";
  /** Target time in ms since the epoch, for a wake timer. */
  at?: number;
}

const READY_MESSAGE = "An exporter has been acquired for the client";
const EXPIRED_MESSAGE = "The lease has expired";
const RELEASED_MESSAGE = "The lease was marked for release";

/**
 * Exporters and leases of the mock controller, with the controller's scheduling rules.
 *
 * A waiting lease takes the first free, online, enabled exporter that matches, by exporter name,
 * and waiting leases are served in creation order. The lease becomes Ready `readyDelayMs` after it
 * took the exporter and ends at its end time. Time comes from the injected clock. Timers wake the
 * store at the next event, and {@link reconcile} applies any event that the clock has passed, so a
 * test that moves a fake clock can call it (every RPC does) instead of waiting for a timer.
 */
export class MockLeaseStore {
  /** Time from taking an exporter to Ready, in ms. */
  readyDelayMs: number;

  private readonly exporterMap = new Map<string, MockExporter>();
  // Exporters sorted by name, rebuilt after an add or remove, so that paging through a large lab
  // does not sort it again for every page.
  private sortedExporters: readonly MockExporter[] | undefined;
  private readonly leaseMap = new Map<string, LeaseRecord>();
  private readonly timers = new Map<LeaseRecord, LeaseTimer>();
  private sequence = 0;
  private closed = false;

  constructor(
    /** Namespace that every exporter belongs to. */
    private readonly namespace: string,
    private readonly now: () => Date,
    readyDelayMs: number,
  ) {
    this.readyDelayMs = readyDelayMs;
  }

  // --- exporters ---------------------------------------------------------------------------------

  /**
   * Returns the exporters of `namespace` sorted by name. The array is shared between calls and the
   * objects are the store's own, not copies.
   */
  exportersIn(namespace: string): readonly MockExporter[] {
    if (namespace !== this.namespace) return [];
    this.sortedExporters ??= [...this.exporterMap.values()].sort((a, b) => compareNames(a.name, b.name));
    return this.sortedExporters;
  }

  /** Returns the exporter, or undefined when `namespace` or `name` is unknown. */
  findExporter(namespace: string, name: string): MockExporter | undefined {
    return namespace === this.namespace ? this.exporterMap.get(name) : undefined;
  }

  /** Returns copies of every exporter, sorted by name. */
  exporterSnapshots(): MockExporter[] {
    return this.exportersIn(this.namespace).map(cloneExporter);
  }

  /**
   * Registers an exporter and lets waiting leases take it.
   *
   * @throws Error when an exporter of that name exists, RangeError for an invalid spec.
   */
  addExporter(spec: MockExporterSpec): MockExporter {
    const exporter = exporterFromSpec(spec);
    if (this.exporterMap.has(exporter.name)) {
      throw new Error(`exporter "${exporter.name}" already exists; remove it first or choose another name`);
    }
    this.exporterMap.set(exporter.name, exporter);
    this.sortedExporters = undefined;
    this.serveWaitingLeases();
    return cloneExporter(exporter);
  }

  /**
   * Removes an exporter. Every lease that was assigned the exporter is deleted with it, active or
   * ended, as Kubernetes garbage collection does because the exporter owns those leases.
   *
   * @throws Error when no exporter has that name.
   */
  removeExporter(name: string): void {
    this.requireExporter(name);
    this.exporterMap.delete(name);
    this.sortedExporters = undefined;
    for (const [key, lease] of this.leaseMap) {
      if (lease.namespace !== this.namespace) continue;
      if (lease.exporter === name || lease.reservedExporter === name) {
        this.clearTimer(lease);
        this.leaseMap.delete(key);
      }
    }
    this.serveWaitingLeases();
  }

  /**
   * Connects or disconnects an exporter. Status becomes OFFLINE when disconnected, and LEASE_READY
   * or AVAILABLE when connected, depending on whether a Ready lease holds it.
   *
   * @throws Error when no exporter has that name.
   */
  setExporterOnline(name: string, online: boolean): void {
    const exporter = this.requireExporter(name);
    exporter.online = online;
    if (!online) exporter.status = ExporterStatus.OFFLINE;
    else if (this.readyLeaseOf(name) !== undefined) exporter.status = ExporterStatus.LEASE_READY;
    else exporter.status = ExporterStatus.AVAILABLE;
    this.serveWaitingLeases();
  }

  private requireExporter(name: string): MockExporter {
    const exporter = this.exporterMap.get(name);
    if (exporter === undefined) throw new Error(`exporter "${name}" not found in the mock controller`);
    return exporter;
  }

  // --- leases ------------------------------------------------------------------------------------

  /**
   * Creates a lease and starts scheduling it. Returns the lease as the controller returns it from
   * CreateLease: before the first scheduling pass, so without conditions.
   *
   * @throws ConnectError INVALID_ARGUMENT for a missing target, a bad id, selector or tag, and
   *   UNKNOWN for a broken time rule or an id that exists, as the controller does.
   */
  createLease(input: LeaseCreateInput): Lease {
    const exporterName = exporterIdOf(input.exporterName);
    if (input.selector === "" && exporterName === undefined) {
      throw new ConnectError("one of selector or exporter_name is required", Code.InvalidArgument);
    }

    const id = input.leaseId === undefined || input.leaseId === "" ? uuidv7() : input.leaseId;
    const idProblem = objectIdProblem(id);
    if (idProblem !== undefined) {
      throw new ConnectError(`invalid lease_id "${id}": ${idProblem}`, Code.InvalidArgument);
    }

    const tags = { ...input.tags };
    validateTags(tags);
    const parsedSelector = parseRequestSelector(input.selector, "selector");
    const times = resolveLeaseTimes(input.times);

    const key = leaseKey(input.namespace, id);
    if (this.leaseMap.has(key)) throw kubernetesAlreadyExists("leases", id);

    const lease: LeaseRecord = {
      id,
      namespace: input.namespace,
      clientName: input.clientName,
      sequence: this.sequence++,
      parsedSelector,
      exporterName,
      times,
      tags,
      context: { ...input.context },
      allowDisabled: input.allowDisabled ?? false,
      generation: 1,
      reservedExporter: undefined,
      exporter: undefined,
      effectiveBeginTime: undefined,
      effectiveEndTime: undefined,
      ended: false,
      released: false,
      conditions: new Map(),
    };
    this.leaseMap.set(key, lease);

    const created = leaseToProto(lease, this.now());
    this.evaluate(lease);
    return created;
  }

  /** Returns the lease, or undefined when it does not exist. */
  findLease(namespace: string, id: string): LeaseRecord | undefined {
    return this.leaseMap.get(leaseKey(namespace, id));
  }

  /** Returns the leases of `namespace` sorted by id. The records are the store's own, not copies. */
  leasesIn(namespace: string): LeaseRecord[] {
    return [...this.leaseMap.values()]
      .filter((lease) => lease.namespace === namespace)
      .sort((a, b) => compareNames(a.id, b.id));
  }

  /**
   * Returns the leases of every namespace as protobuf messages sorted by name: all of them, or
   * only those that have not ended when `activeOnly` is set.
   */
  leaseSnapshots(activeOnly: boolean): Lease[] {
    const now = this.now();
    return [...this.leaseMap.values()]
      .filter((lease) => !activeOnly || !lease.ended)
      .sort((a, b) => compareNames(leaseKey(a.namespace, a.id), leaseKey(b.namespace, b.id)))
      .map((lease) => leaseToProto(lease, now));
  }

  /**
   * Replaces the time fields, applies the time rules and reschedules the lease, so that a longer
   * duration moves the end of a Ready lease.
   *
   * @throws ConnectError UNKNOWN for a broken time rule, and leaves the lease unchanged.
   */
  updateLeaseTimes(lease: LeaseRecord, requested: LeaseTimeInput): void {
    lease.times = resolveLeaseTimes(requested);
    lease.generation++;
    this.evaluate(lease);
  }

  /** Gives the lease to another client of the same namespace. */
  transferLease(lease: LeaseRecord, clientName: string): void {
    lease.clientName = clientName;
    lease.generation++;
  }

  /** Ends the lease for DeleteLease: Ready=False reason Released, and frees its exporter. */
  releaseLease(lease: LeaseRecord): void {
    lease.released = true;
    if (!lease.ended) this.endLease(lease, "Released", RELEASED_MESSAGE, this.now());
  }

  /** Ends the lease now as its end time would: Ready=False reason Expired, and frees its exporter. */
  expireLease(lease: LeaseRecord): void {
    if (!lease.ended) this.endLease(lease, "Expired", EXPIRED_MESSAGE, this.now());
  }

  /**
   * Sets a condition on the lease as the controller would, without changing its schedule, so that
   * tests can show conditions that the mock does not produce itself.
   */
  setCondition(lease: LeaseRecord, type: LeaseConditionType, status: "True" | "False", reason: string, message: string): void {
    setLeaseCondition(lease, type, status, reason, message, this.now());
  }

  /** Applies every event that the clock has passed: begin times, ends, and freed exporters. */
  reconcile(): void {
    const active = [...this.leaseMap.values()].filter((lease) => !lease.ended);
    active.sort((a, b) => a.sequence - b.sequence);
    for (const lease of active) this.evaluate(lease);
  }

  /** Cancels every timer and stops scheduling new ones. The state stays readable. */
  close(): void {
    this.closed = true;
    for (const timer of this.timers.values()) clearTimeout(timer.handle);
    this.timers.clear();
  }

  // --- scheduling --------------------------------------------------------------------------------

  private evaluate(lease: LeaseRecord): void {
    if (lease.ended || !this.leaseMap.has(leaseKey(lease.namespace, lease.id))) {
      this.clearTimer(lease);
      return;
    }
    const now = this.now();

    if (lease.effectiveBeginTime !== undefined) {
      const end = plannedEnd(lease);
      if (now.getTime() >= end.getTime()) this.endLease(lease, "Expired", EXPIRED_MESSAGE, end);
      else this.wakeAt(lease, end);
      return;
    }

    const { beginTime, endTime } = lease.times;
    if (endTime !== undefined && now.getTime() >= endTime.getTime()) {
      this.endLease(lease, "Expired", EXPIRED_MESSAGE, endTime);
      return;
    }
    // The ready timer is running: the exporter is taken and the lease becomes Ready when it fires.
    if (lease.reservedExporter !== undefined) return;

    if (beginTime !== undefined && now.getTime() < beginTime.getTime()) {
      // "Scheduled" is this mock's own reason for a lease that waits for its begin time.
      setLeaseCondition(lease, "Pending", "True", "Scheduled", `The lease begins at ${beginTime.toISOString()}`, now);
      this.wakeAt(lease, beginTime);
      return;
    }

    this.assignExporter(lease, now);
  }

  private assignExporter(lease: LeaseRecord, now: Date): void {
    let matching: MockExporter[];
    if (lease.exporterName !== undefined) {
      const requested = this.findExporter(lease.namespace, lease.exporterName);
      if (requested === undefined) {
        this.makeUnsatisfiable(lease, "ExporterNotFound", `exporter "${lease.exporterName}" not found`, now);
        return;
      }
      if (!selectorMatches(lease.parsedSelector, requested.labels)) {
        const message = `exporter "${requested.name}" does not match the selector ${quotedSelector(lease)}`;
        this.makeUnsatisfiable(lease, "NoAccess", message, now);
        return;
      }
      matching = [requested];
    } else {
      matching = this.exportersIn(lease.namespace).filter((exporter) =>
        selectorMatches(lease.parsedSelector, exporter.labels),
      );
    }

    const usable = matching.filter((exporter) => exporter.enabled || lease.allowDisabled);
    if (usable.length === 0) {
      const message =
        matching.length === 0
          ? `no exporter matches the selector ${quotedSelector(lease)}`
          : `all ${matching.length} matching exporters are disabled. Set allow_disabled to lease a disabled exporter`;
      this.makeUnsatisfiable(lease, "NoAccess", message, now);
      return;
    }

    const online = usable.filter(isExporterOnline);
    const free = online.find((exporter) => this.holderOf(exporter.name) === undefined);
    if (free !== undefined) {
      this.reserve(lease, free, now);
      return;
    }

    if (online.length === 0) {
      setLeaseCondition(
        lease,
        "Pending",
        "True",
        "Offline",
        `There are ${usable.length} matching exporters, but all of them are offline`,
        now,
      );
    } else {
      setLeaseCondition(
        lease,
        "Pending",
        "True",
        "NotAvailable",
        `There are ${online.length} approved exporters, but all of them are already leased`,
        now,
      );
    }
    // A waiting lease with an end time expires at that time even if it never gets an exporter.
    if (lease.times.endTime !== undefined) this.wakeAt(lease, lease.times.endTime);
    else this.clearTimer(lease);
  }

  private reserve(lease: LeaseRecord, exporter: MockExporter, now: Date): void {
    lease.reservedExporter = exporter.name;
    // The controller keeps an earlier Pending=True next to Ready=True, so the mock sets one here
    // and leaves it in place when the lease becomes Ready. "Acquiring" is this mock's own reason.
    if (!lease.conditions.has("Pending")) {
      const message = `Exporter ${exporter.name} was selected and becomes ready after the ready delay`;
      setLeaseCondition(lease, "Pending", "True", "Acquiring", message, now);
    }

    this.clearTimer(lease);
    if (this.closed) return;
    const handle = setTimeout(() => {
      this.timers.delete(lease);
      this.makeReady(lease);
    }, this.readyDelayMs);
    handle.unref();
    this.timers.set(lease, { handle, kind: "ready" });
  }

  private makeReady(lease: LeaseRecord): void {
    const exporterName = lease.reservedExporter;
    if (lease.ended || exporterName === undefined) return;
    const now = this.now();

    lease.reservedExporter = undefined;
    lease.exporter = exporterName;
    lease.effectiveBeginTime = now;
    setLeaseCondition(lease, "Ready", "True", "Ready", READY_MESSAGE, now);

    const exporter = this.exporterMap.get(exporterName);
    if (exporter?.status === ExporterStatus.AVAILABLE) exporter.status = ExporterStatus.LEASE_READY;
    this.evaluate(lease);
  }

  private makeUnsatisfiable(lease: LeaseRecord, reason: string, message: string, now: Date): void {
    // The controller ends an unsatisfiable lease at once, so it is never scheduled again.
    setLeaseCondition(lease, "Unsatisfiable", "True", reason, message, now);
    lease.ended = true;
    lease.effectiveEndTime = now;
    this.clearTimer(lease);
  }

  private endLease(lease: LeaseRecord, reason: "Expired" | "Released", message: string, at: Date): void {
    const heldExporter = lease.exporter ?? lease.reservedExporter;
    lease.ended = true;
    lease.reservedExporter = undefined;
    lease.effectiveEndTime = at;
    setLeaseCondition(lease, "Ready", "False", reason, message, this.now());
    this.clearTimer(lease);

    if (heldExporter !== undefined) {
      const exporter = this.exporterMap.get(heldExporter);
      if (exporter?.status === ExporterStatus.LEASE_READY) exporter.status = ExporterStatus.AVAILABLE;
      this.serveWaitingLeases();
    }
  }

  /** Re-evaluates leases that wait for an exporter, oldest first. */
  private serveWaitingLeases(): void {
    const waiting = [...this.leaseMap.values()].filter(
      (lease) => !lease.ended && lease.effectiveBeginTime === undefined && lease.reservedExporter === undefined,
    );
    waiting.sort((a, b) => a.sequence - b.sequence);
    for (const lease of waiting) this.evaluate(lease);
  }

  private holderOf(exporterName: string): LeaseRecord | undefined {
    for (const lease of this.leaseMap.values()) {
      if (lease.namespace === this.namespace && leaseHoldsExporter(lease, exporterName)) return lease;
    }
    return undefined;
  }

  private readyLeaseOf(exporterName: string): LeaseRecord | undefined {
    const holder = this.holderOf(exporterName);
    return holder?.exporter === exporterName ? holder : undefined;
  }

  private wakeAt(lease: LeaseRecord, at: Date): void {
    const existing = this.timers.get(lease);
    if (existing?.kind === "wake" && existing.at === at.getTime()) return;
    this.clearTimer(lease);
    if (this.closed) return;

    const delay = Math.min(MAX_TIMER_DELAY_MS, Math.max(0, at.getTime() - this.now().getTime()));
    const handle = setTimeout(() => {
      this.timers.delete(lease);
      this.evaluate(lease);
    }, delay);
    handle.unref();
    this.timers.set(lease, { handle, kind: "wake", at: at.getTime() });
  }

  private clearTimer(lease: LeaseRecord): void {
    const timer = this.timers.get(lease);
    if (timer === undefined) return;
    clearTimeout(timer.handle);
    this.timers.delete(lease);
  }
}

/**
 * Parses a selector from a request.
 *
 * @throws ConnectError INVALID_ARGUMENT naming the field and the problem.
 */
export function parseRequestSelector(selector: string, field: string): ParsedSelector {
  try {
    return parseSelector(selector);
  } catch (error) {
    const detail = error instanceof Error ? error.message : String(error);
    throw new ConnectError(`invalid ${field}: ${detail}`, Code.InvalidArgument);
  }
}

// The controller looks `exporter_name` up as a bare exporter id in the lease's namespace, so a full
// resource name matches no exporter and the lease becomes Unsatisfiable with ExporterNotFound.
function exporterIdOf(exporterName: string | undefined): string | undefined {
  if (exporterName === undefined || exporterName === "") return undefined;
  return exporterName;
}

/** End of an active lease: its requested end time, else its effective begin plus its duration. */
function plannedEnd(lease: LeaseRecord): Date {
  if (lease.times.endTime !== undefined) return lease.times.endTime;
  return new Date(lease.effectiveBeginTime!.getTime() + lease.times.durationMs);
}

// Tags become Kubernetes labels on the lease, so keys and values follow the label rules, and keys
// may not carry a prefix because the controller adds its own.
function validateTags(tags: Record<string, string>): void {
  for (const [key, value] of Object.entries(tags)) {
    let problem: string | undefined;
    if (key.includes("/")) problem = `tag key "${key}" must not contain '/' (use simple names without prefix)`;
    else problem = labelKeyProblem(key) ?? labelValueProblem(value);
    if (problem !== undefined) throw new ConnectError(`invalid lease tags: ${problem}`, Code.InvalidArgument);
  }
}

function quotedSelector(lease: LeaseRecord): string {
  return `"${formatSelector(lease.parsedSelector)}"`;
}

function leaseKey(namespace: string, id: string): string {
  return `${namespace}/${id}`;
}

// Kubernetes lists are ordered by name in byte order, not by locale.
function compareNames(a: string, b: string): number {
  if (a === b) return 0;
  return a < b ? -1 : 1;
}
