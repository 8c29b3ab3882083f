// Public entry point of `@jumpstarter/sdk/testing`: an embedded mock controller for tests, examples
// and benchmarks.
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
export { SAMPLE_LAB_OTHER_CLIENT, SAMPLE_LAB_OTHER_LEASE, sampleLab, startSampleLab } from "./sample-lab.js";
