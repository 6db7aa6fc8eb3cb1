// A minimal CRI client (runtime.v1.RuntimeService) over the runtime's unix socket, as kubelet drives it:
//
//   const c = await CriClient.connect("/run/containerd/containerd.sock", { timeoutMs: 10_000 });
//   const id = await c.runPodSandbox({ metadata: { name: "web-0", uid: "u1", namespace: "default" } });
//   const { status } = await c.podSandboxStatus(id);     // status.network.ip, status.network.additionalIps
//   await c.stopPodSandbox(id); await c.removePodSandbox(id);
//   await c.close();
//
// One HTTP/2 session for all calls, reopened after the runtime goes away; each call has a deadline (the client's
// timeoutMs, or its own); failures are GrpcError with the gRPC status code.
import {
  decodeImageStatusResponse,
  decodeListPodSandboxResponse,
  decodePodSandboxStatusResponse,
  decodeRunPodSandboxResponse,
  decodeStatusResponse,
  decodeVersionResponse,
  encodeImageStatusRequest,
  encodeListPodSandboxRequest,
  encodePodSandboxStatusRequest,
  encodeRunPodSandboxRequest,
  encodeSandboxIdRequest,
  encodeStatusRequest,
  encodeVersionRequest,
  type Image,
  type PodSandbox,
  type PodSandboxConfig,
  type PodSandboxFilter,
  type PodSandboxStatusResponse,
  type StatusResponse,
  type VersionResponse,
} from "./api.js";
import { Channel } from "./grpc.js";
import { Message } from "./proto.js";

const SERVICE = "/runtime.v1.RuntimeService/";
const IMAGE_SERVICE = "/runtime.v1.ImageService/";

/** The CRI API version kubelet announces in VersionRequest. */
const KUBELET_API_VERSION = "0.1.0";

export interface CriClientOptions {
  /** Default deadline of every call, in milliseconds (default 10 s). */
  timeoutMs?: number;
}

/** Per call: a deadline other than the client's default (RunPodSandbox can take longer than a List). */
export interface CallOptions {
  timeoutMs?: number;
}

export class CriClient {
  private constructor(private readonly channel: Channel) {}

  /** Opens the HTTP/2 session to the runtime's socket; fails (GrpcError UNAVAILABLE or DEADLINE_EXCEEDED) if it cannot. */
  static async connect(socketPath: string, options: CriClientOptions = {}): Promise<CriClient> {
    const channel = new Channel(socketPath, { timeoutMs: options.timeoutMs ?? 10_000 });
    try {
      await channel.connect();
    } catch (e) {
      await channel.close();
      throw e;
    }
    return new CriClient(channel);
  }

  get socketPath(): string {
    return this.channel.socketPath;
  }

  private async call(method: string, request: Uint8Array, opts?: CallOptions, service = SERVICE): Promise<Message> {
    return Message.decode(await this.channel.unary(service + method, request, opts?.timeoutMs));
  }

  version(opts?: CallOptions): Promise<VersionResponse> {
    return this.call("Version", encodeVersionRequest(KUBELET_API_VERSION), opts).then(decodeVersionResponse);
  }

  /** Runtime conditions (RuntimeReady, NetworkReady); `verbose` adds containerd's config and CNI config as JSON in `info`. */
  status(verbose = false, opts?: CallOptions): Promise<StatusResponse> {
    return this.call("Status", encodeStatusRequest(verbose), opts).then(decodeStatusResponse);
  }

  /** Creates and starts a sandbox (its network included: CNI ADD happens inside this call); returns its id. */
  runPodSandbox(config: PodSandboxConfig, opts?: CallOptions & { runtimeHandler?: string }): Promise<string> {
    return this.call("RunPodSandbox", encodeRunPodSandboxRequest(config, opts?.runtimeHandler), opts).then(
      decodeRunPodSandboxResponse,
    );
  }

  /** Stops the sandbox and releases its network (CNI DEL). Idempotent. */
  async stopPodSandbox(podSandboxId: string, opts?: CallOptions): Promise<void> {
    await this.call("StopPodSandbox", encodeSandboxIdRequest(podSandboxId), opts);
  }

  /** Removes a stopped sandbox. Idempotent: an unknown id is not an error. */
  async removePodSandbox(podSandboxId: string, opts?: CallOptions): Promise<void> {
    await this.call("RemovePodSandbox", encodeSandboxIdRequest(podSandboxId), opts);
  }

  podSandboxStatus(podSandboxId: string, verbose = false, opts?: CallOptions): Promise<PodSandboxStatusResponse> {
    return this.call("PodSandboxStatus", encodePodSandboxStatusRequest(podSandboxId, verbose), opts).then(
      decodePodSandboxStatusResponse,
    );
  }

  listPodSandbox(filter?: PodSandboxFilter, opts?: CallOptions): Promise<PodSandbox[]> {
    return this.call("ListPodSandbox", encodeListPodSandboxRequest(filter), opts).then(decodeListPodSandboxResponse);
  }

  /** ImageService.ImageStatus: the image as the CRI sees it (e.g. the sandbox image), or undefined when it has none. */
  imageStatus(image: string, opts?: CallOptions): Promise<Image | undefined> {
    return this.call("ImageStatus", encodeImageStatusRequest(image), opts, IMAGE_SERVICE).then(
      decodeImageStatusResponse,
    );
  }

  /** Closes the connection. Calls still in flight end by themselves (answer or deadline); later calls fail. */
  close(): Promise<void> {
    return this.channel.close();
  }
}
