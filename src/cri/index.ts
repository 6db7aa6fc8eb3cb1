// A minimal CRI (runtime.v1) client on node:http2, with a hand-written protobuf codec for the messages it uses.

export {
  type Image,
  NamespaceMode,
  type PodSandbox,
  type PodSandboxConfig,
  type PodSandboxFilter,
  type PodSandboxMetadata,
  type PodSandboxState,
  type PodSandboxStatus,
  type PodSandboxStatusResponse,
  type RuntimeCondition,
  type StatusResponse,
  type VersionResponse,
} from "./api.js";
export { type CallOptions, CriClient, type CriClientOptions } from "./client.js";
export { GrpcError, Status } from "./grpc.js";
