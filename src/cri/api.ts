// The CRI messages this client speaks (package runtime.v1, service RuntimeService), as plain objects, with their
// encoders and decoders. Field numbers are those of Kubernetes' cri-api `pkg/apis/runtime/v1/api.proto`, read from
// kubernetes/kubernetes staging/src/k8s.io/cri-api/pkg/apis/runtime/v1/api.proto (commit 0268656a, the tree that
// k8s.io/cri-api is published from). Field numbers never change in a published proto3 API, so they hold for
// containerd 1.6's v1 service as well. Only the fields used here are listed; others are skipped when decoding.
import { type Message, Writer } from "./proto.js";

// ---- Version --------------------------------------------------------------------------------------------------

/** message VersionRequest { string version = 1; } */
export function encodeVersionRequest(version: string): Uint8Array {
  return new Writer().string(1, version).finish();
}

export interface VersionResponse {
  version: string;
  runtimeName: string;
  runtimeVersion: string;
  runtimeApiVersion: string;
}

/** message VersionResponse { version = 1; runtime_name = 2; runtime_version = 3; runtime_api_version = 4; } */
export function decodeVersionResponse(m: Message): VersionResponse {
  return {
    version: m.string(1),
    runtimeName: m.string(2),
    runtimeVersion: m.string(3),
    runtimeApiVersion: m.string(4),
  };
}

// ---- Status ---------------------------------------------------------------------------------------------------

/** message StatusRequest { bool verbose = 1; } */
export function encodeStatusRequest(verbose: boolean): Uint8Array {
  return new Writer().bool(1, verbose).finish();
}

export interface RuntimeCondition {
  /** "RuntimeReady", "NetworkReady", ... */
  type: string;
  status: boolean;
  reason: string;
  message: string;
}

export interface StatusResponse {
  conditions: RuntimeCondition[];
  /** Only filled when asked with verbose: containerd puts its config and the loaded CNI config here, as JSON. */
  info: Record<string, string>;
}

/**
 * message StatusResponse { RuntimeStatus status = 1; map<string, string> info = 2; }
 * message RuntimeStatus { repeated RuntimeCondition conditions = 1; }
 * message RuntimeCondition { string type = 1; bool status = 2; string reason = 3; string message = 4; }
 */
export function decodeStatusResponse(m: Message): StatusResponse {
  const conditions = (m.message(1)?.repeatedMessage(1) ?? []).map((c) => ({
    type: c.string(1),
    status: c.bool(2),
    reason: c.string(3),
    message: c.string(4),
  }));
  return { conditions, info: m.map(2) };
}

// ---- Pod sandboxes --------------------------------------------------------------------------------------------

export interface PodSandboxMetadata {
  name: string;
  uid: string;
  namespace: string;
  attempt?: number;
}

/** enum NamespaceMode { POD = 0; CONTAINER = 1; NODE = 2; TARGET = 3; } */
export const NamespaceMode = { POD: 0, CONTAINER: 1, NODE: 2, TARGET: 3 } as const;

interface NamespaceOption {
  network?: number;
  pid?: number;
  ipc?: number;
}

interface LinuxPodSandboxConfig {
  /** cgroupfs syntax, e.g. "/mytest"; the sandbox's cgroup becomes <parent>/<sandbox id>. */
  cgroupParent?: string;
  securityContext?: { namespaceOptions?: NamespaceOption; privileged?: boolean };
  sysctls?: Record<string, string>;
}

export interface PodSandboxConfig {
  metadata: PodSandboxMetadata;
  hostname?: string;
  logDirectory?: string;
  dnsConfig?: { servers?: string[]; searches?: string[]; options?: string[] };
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  linux?: LinuxPodSandboxConfig;
}

/** message PodSandboxMetadata { string name = 1; string uid = 2; string namespace = 3; uint32 attempt = 4; } */
function writeMetadata(w: Writer, md: PodSandboxMetadata): void {
  w.string(1, md.name).string(2, md.uid).string(3, md.namespace).int(4, md.attempt);
}

function readMetadata(m: Message | undefined): PodSandboxMetadata {
  return { name: m?.string(1) ?? "", uid: m?.string(2) ?? "", namespace: m?.string(3) ?? "", attempt: m?.int(4) ?? 0 };
}

/**
 * message RunPodSandboxRequest { PodSandboxConfig config = 1; string runtime_handler = 2; }
 * message PodSandboxConfig { PodSandboxMetadata metadata = 1; string hostname = 2; string log_directory = 3;
 *   DNSConfig dns_config = 4; repeated PortMapping port_mappings = 5; map<string,string> labels = 6;
 *   map<string,string> annotations = 7; LinuxPodSandboxConfig linux = 8; WindowsPodSandboxConfig windows = 9; }
 * message DNSConfig { repeated string servers = 1; repeated string searches = 2; repeated string options = 3; }
 * message LinuxPodSandboxConfig { string cgroup_parent = 1; LinuxSandboxSecurityContext security_context = 2;
 *   map<string,string> sysctls = 3; ... }
 * message LinuxSandboxSecurityContext { NamespaceOption namespace_options = 1; ... bool privileged = 6; ... }
 * message NamespaceOption { NamespaceMode network = 1; NamespaceMode pid = 2; NamespaceMode ipc = 3; ... }
 */
export function encodeRunPodSandboxRequest(config: PodSandboxConfig, runtimeHandler?: string): Uint8Array {
  return new Writer()
    .message(1, config, (w, c) => {
      w.message(1, c.metadata, writeMetadata)
        .string(2, c.hostname)
        .string(3, c.logDirectory)
        .message(4, c.dnsConfig, (d, dns) =>
          d.repeatedString(1, dns.servers).repeatedString(2, dns.searches).repeatedString(3, dns.options),
        )
        .map(6, c.labels)
        .map(7, c.annotations)
        .message(8, c.linux, (l, linux) =>
          l
            .string(1, linux.cgroupParent)
            .message(2, linux.securityContext, (s, sc) =>
              s
                .message(1, sc.namespaceOptions, (n, ns) => n.int(1, ns.network).int(2, ns.pid).int(3, ns.ipc))
                .bool(6, sc.privileged),
            )
            .map(3, linux.sysctls),
        );
    })
    .string(2, runtimeHandler)
    .finish();
}

/** message RunPodSandboxResponse { string pod_sandbox_id = 1; } */
export function decodeRunPodSandboxResponse(m: Message): string {
  return m.string(1);
}

/**
 * message StopPodSandboxRequest { string pod_sandbox_id = 1; }
 * message RemovePodSandboxRequest { string pod_sandbox_id = 1; }
 * (Both responses are empty messages.)
 */
export function encodeSandboxIdRequest(podSandboxId: string): Uint8Array {
  return new Writer().string(1, podSandboxId).finish();
}

/** enum PodSandboxState { SANDBOX_READY = 0; SANDBOX_NOTREADY = 1; } */
export type PodSandboxState = "SANDBOX_READY" | "SANDBOX_NOTREADY";
const STATES: readonly PodSandboxState[] = ["SANDBOX_READY", "SANDBOX_NOTREADY"];

function readState(n: number): PodSandboxState {
  const s = STATES[n];
  // An unknown enum value means the runtime speaks a newer API: treat it as not ready, as kubelet would.
  return s ?? "SANDBOX_NOTREADY";
}

export interface PodSandboxStatus {
  id: string;
  metadata: PodSandboxMetadata;
  state: PodSandboxState;
  /** Nanoseconds since the epoch. */
  createdAt: bigint;
  /** The primary address ("" for host-network pods or before networking is up) and the others (dual stack). */
  network: { ip: string; additionalIps: string[] };
  labels: Record<string, string>;
  annotations: Record<string, string>;
  runtimeHandler: string;
}

export interface PodSandboxStatusResponse {
  status: PodSandboxStatus;
  /** Only with verbose: containerd's "info" key holds JSON with the pid, the netns path, the runtime spec... */
  info: Record<string, string>;
}

/** message PodSandboxStatusRequest { string pod_sandbox_id = 1; bool verbose = 2; } */
export function encodePodSandboxStatusRequest(podSandboxId: string, verbose: boolean): Uint8Array {
  return new Writer().string(1, podSandboxId).bool(2, verbose).finish();
}

/**
 * message PodSandboxStatusResponse { PodSandboxStatus status = 1; map<string,string> info = 2; ... }
 * message PodSandboxStatus { string id = 1; PodSandboxMetadata metadata = 2; PodSandboxState state = 3;
 *   int64 created_at = 4; PodSandboxNetworkStatus network = 5; LinuxPodSandboxStatus linux = 6;
 *   map<string,string> labels = 7; map<string,string> annotations = 8; string runtime_handler = 9; }
 * message PodSandboxNetworkStatus { string ip = 1; repeated PodIP additional_ips = 2; }
 * message PodIP { string ip = 1; }
 */
export function decodePodSandboxStatusResponse(m: Message): PodSandboxStatusResponse {
  const s = m.message(1);
  const net = s?.message(5);
  return {
    status: {
      id: s?.string(1) ?? "",
      metadata: readMetadata(s?.message(2)),
      state: readState(s?.int(3) ?? 0),
      createdAt: s?.int64(4) ?? 0n,
      network: { ip: net?.string(1) ?? "", additionalIps: (net?.repeatedMessage(2) ?? []).map((p) => p.string(1)) },
      labels: s?.map(7) ?? {},
      annotations: s?.map(8) ?? {},
      runtimeHandler: s?.string(9) ?? "",
    },
    info: m.map(2),
  };
}

export interface PodSandboxFilter {
  id?: string;
  state?: PodSandboxState;
  labelSelector?: Record<string, string>;
}

/**
 * message ListPodSandboxRequest { PodSandboxFilter filter = 1; }
 * message PodSandboxFilter { string id = 1; PodSandboxStateValue state = 2; map<string,string> label_selector = 3; }
 * message PodSandboxStateValue { PodSandboxState state = 1; }
 */
export function encodeListPodSandboxRequest(filter?: PodSandboxFilter): Uint8Array {
  return new Writer()
    .message(1, filter, (w, f) =>
      w
        .string(1, f.id)
        // The wrapper message says "filter on state": present-but-empty is a filter on SANDBOX_READY (0).
        .message(2, f.state, (sv, state) => sv.int(1, STATES.indexOf(state)))
        .map(3, f.labelSelector),
    )
    .finish();
}

export interface PodSandbox {
  id: string;
  metadata: PodSandboxMetadata;
  state: PodSandboxState;
  createdAt: bigint;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  runtimeHandler: string;
}

/**
 * message ListPodSandboxResponse { repeated PodSandbox items = 1; }
 * message PodSandbox { string id = 1; PodSandboxMetadata metadata = 2; PodSandboxState state = 3;
 *   int64 created_at = 4; map<string,string> labels = 5; map<string,string> annotations = 6;
 *   string runtime_handler = 7; }
 */
export function decodeListPodSandboxResponse(m: Message): PodSandbox[] {
  return m.repeatedMessage(1).map((p) => ({
    id: p.string(1),
    metadata: readMetadata(p.message(2)),
    state: readState(p.int(3)),
    createdAt: p.int64(4),
    labels: p.map(5),
    annotations: p.map(6),
    runtimeHandler: p.string(7),
  }));
}

// ---- Images (ImageService) ------------------------------------------------------------------------------------

/**
 * message ImageStatusRequest { ImageSpec image = 1; bool verbose = 2; }
 * message ImageSpec { string image = 1; ... }
 */
export function encodeImageStatusRequest(image: string): Uint8Array {
  return new Writer().message(1, image, (w, ref) => w.string(1, ref)).finish();
}

export interface Image {
  id: string;
  repoTags: string[];
  size: number;
}

/**
 * message ImageStatusResponse { Image image = 1; map<string,string> info = 2; }  (image absent: not present)
 * message Image { string id = 1; repeated string repo_tags = 2; repeated string repo_digests = 3; uint64 size = 4; ... }
 */
export function decodeImageStatusResponse(m: Message): Image | undefined {
  const img = m.message(1);
  return img && { id: img.string(1), repoTags: img.repeatedString(2), size: img.int(4) };
}
