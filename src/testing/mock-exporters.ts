import { create } from "@bufbuild/protobuf";
import { ExporterSchema, ExporterStatus, type Exporter } from "../generated.js";
import { labelKeyProblem, labelValueProblem } from "../selector.js";
import { formatObjectName, objectIdProblem } from "./mock-names.js";

/** An exporter to register with the mock controller. */
export interface MockExporterSpec {
  /** Exporter id: the last segment of `namespaces/{namespace}/exporters/{id}`, such as `rpi4-01`. */
  name: string;
  /**
   * Kubernetes labels. Entries whose value is undefined are left out. Keys that start with
   * `jumpstarter.dev/` are hidden unless the request sets `show_hidden_labels`. Default: none.
   */
  labels?: Readonly<Record<string, string | undefined>>;
  /** Whether the exporter is connected. Default: true, or false when `status` is OFFLINE. */
  online?: boolean;
  /** Reported status. Default: AVAILABLE when online, OFFLINE otherwise. */
  status?: ExporterStatus;
  /** Free-text detail of the status. Default: empty. */
  statusMessage?: string;
  /** Whether new leases may use the exporter. A disabled one is skipped unless the lease sets `allow_disabled`. Default: true. */
  enabled?: boolean;
}

/** State of one exporter in the mock controller, as {@link MockController.exporters} returns it. */
export interface MockExporter {
  /** Exporter id, such as `rpi4-01`. */
  name: string;
  /** Labels that selectors match, hidden ones included. */
  labels: Record<string, string>;
  /** Whether the exporter is connected to the controller. */
  online: boolean;
  /** Status that the controller reports for the exporter. */
  status: ExporterStatus;
  /** Text that accompanies `status`; empty when there is none. */
  statusMessage: string;
  /** Whether leases may take the exporter without `allowDisabled`. */
  enabled: boolean;
}

/** Prefix of label keys that GetExporter and ListExporters hide unless `show_hidden_labels` is set. */
export const HIDDEN_LABEL_PREFIX = "jumpstarter.dev/";

/**
 * Validates a spec and fills in its defaults.
 *
 * @throws RangeError for an id that is not a Kubernetes object name, or an invalid label.
 */
export function exporterFromSpec(spec: MockExporterSpec): MockExporter {
  const idProblem = objectIdProblem(spec.name);
  if (idProblem !== undefined) throw new RangeError(`invalid exporter name "${spec.name}": ${idProblem}`);

  const labels: Record<string, string> = {};
  for (const [key, value] of Object.entries(spec.labels ?? {})) {
    if (value === undefined) continue;
    const problem = labelKeyProblem(key) ?? labelValueProblem(value);
    if (problem !== undefined) throw new RangeError(`invalid label on exporter "${spec.name}": ${problem}`);
    labels[key] = value;
  }

  const online = spec.online ?? spec.status !== ExporterStatus.OFFLINE;
  const status = spec.status ?? (online ? ExporterStatus.AVAILABLE : ExporterStatus.OFFLINE);
  return {
    name: spec.name,
    labels,
    online,
    status,
    statusMessage: spec.statusMessage ?? "",
    enabled: spec.enabled ?? true,
  };
}

/** Copies an exporter so that callers cannot change the controller's state. */
export function cloneExporter(exporter: MockExporter): MockExporter {
  return { ...exporter, labels: { ...exporter.labels } };
}

/** Tells whether an exporter can take a lease now: connected and not reporting OFFLINE. */
export function isExporterOnline(exporter: MockExporter): boolean {
  return exporter.online && exporter.status !== ExporterStatus.OFFLINE;
}

/** Builds the protobuf Exporter, without hidden labels unless `showHiddenLabels` is set. */
export function exporterToProto(exporter: MockExporter, namespace: string, showHiddenLabels: boolean): Exporter {
  const labels: Record<string, string> = {};
  for (const [key, value] of Object.entries(exporter.labels)) {
    if (showHiddenLabels || !key.startsWith(HIDDEN_LABEL_PREFIX)) labels[key] = value;
  }
  return create(ExporterSchema, {
    name: formatObjectName(namespace, "exporters", exporter.name),
    labels,
    online: isExporterOnline(exporter),
    status: exporter.status,
    statusMessage: exporter.statusMessage,
    enabled: exporter.enabled,
  });
}
