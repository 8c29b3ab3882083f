/**
 * An embedded mock controller: a real gRPC server on 127.0.0.1 that behaves as the Jumpstarter
 * controller does, with controls to inject faults, set its clock and shape its exporters and leases.
 *
 * @packageDocumentation
 * @module @jumpstarter/sdk/testing
 */
export {
  startMockController,
  type MockController,
  type MockControllerOptions,
  type MockLeaseCondition,
  type MockLeaseRequest,
  type MockRestartOptions,
  type MockTokenOptions,
} from "./mock-controller.js";
export { MOCK_METHODS, type MockCall, type MockMethod } from "./mock-calls.js";
export { HIDDEN_LABEL_PREFIX, type MockExporter, type MockExporterSpec } from "./mock-exporters.js";
export type { MockFailure, MockStall } from "./mock-faults.js";
export { MOCK_TOKEN_AUDIENCE, MOCK_TOKEN_ISSUER } from "./mock-auth.js";
// Types that the controls take and return, so that tests need only this entry point.
export { ExporterStatus, type Exporter, type Lease } from "../generated.js";
export { Code } from "@connectrpc/connect";
export { SAMPLE_LAB_OTHER_CLIENT, SAMPLE_LAB_OTHER_LEASE, sampleLab, startSampleLab } from "./sample-lab.js";
