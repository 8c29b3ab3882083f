// The one module through which src/ reaches the generated code in gen/, so that a change in the
// generator's output layout touches a single file.
export * from "../gen/jumpstarter/client/v1/client_pb.js";
export * from "../gen/jumpstarter/v1/common_pb.js";
export * from "../gen/jumpstarter/v1/kubernetes_pb.js";
