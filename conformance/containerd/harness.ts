// containerd with its CRI plugin, started as a child process of the test with everything of its own: a generated
// config (version 2), root, state and temp dirs, socket and runc root in a temporary directory, and the CNI bin dir
// and conf dir the caller gives. Tests drive it through src/cri as kubelet would.
//
//   const h = await ContainerdHarness.start({ cniBinDir, cniConfDir });
//   const id = await h.runPod("web-0");                 // RunPodSandbox with our cgroup parent, log dir, labels
//   (await h.cri.podSandboxStatus(id)).status.network.ip
//   await h.kill9(); await h.restart();                   // crash tests: same root and state
//   await h.stop();                                       // everything gone, or it throws saying what is left
//
// What a run leaves outside the temporary directory, and how stop() removes it:
// - sandbox processes (pause) in cgroups under our own cgroup parent in every hierarchy: killed, cgroups removed;
// - containerd-shim-runc-v2 processes (they outlive a SIGKILLed containerd): killed by pid, chosen by their
//   command line naming our socket; their sockets in /run/containerd/s (the name is sha256 of
//   "<containerd address>/<namespace>/<sandbox id>", and each task's state dir records it): removed;
// - libcni's cache (/var/lib/cni/results/<network>-<sandbox id>-<ifname>): our sandboxes' entries removed;
// - /run/containerd/s, /run/containerd, /var/lib/cni/results, /var/lib/cni: removed if we created them and they are empty.
// Mounts (pod netns, /dev/shm, rootfs) all live under the temporary directory and are unmounted before it is
// removed. A process exit handler does the same synchronously, and start() first cleans what an earlier run
// that was killed outright left behind (found by the owner pid recorded in each temporary directory).
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import {
  closeSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmdirSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CriClient, GrpcError, type PodSandboxConfig } from "../../src/cri/index.js";
import { PAUSE_IMAGE, writePauseImage } from "./pause-image.js";

const DIR_PREFIX = "local-ipam-containerd-";
const NAMESPACE = "k8s.io"; // the CRI plugin's containerd namespace
const SHIM_SOCKETS = "/run/containerd/s";
const CNI_RESULTS = "/var/lib/cni/results";
const CGROUP_ROOT = "/sys/fs/cgroup";
/** Directories containerd or libcni create on first use; removed at the end when we created them and they are empty. */
const SHARED_DIRS = ["/run/containerd/s", "/run/containerd", "/var/lib/cni/results", "/var/lib/cni"];
/** containerd's environment: what a service manager would give it, not the test runner's (NODE_OPTIONS...). */
const CONTAINERD_ENV = { PATH: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" };

export interface HarnessOptions {
  /** Directory with the CNI plugins (bridge, loopback, the IPAM plugin, ...). */
  cniBinDir: string;
  /** Directory with the conflist; containerd loads the first one (max_conf_num = 1). */
  cniConfDir: string;
  /** Bound on start-up and restart (socket up, image imported, RuntimeReady and NetworkReady). Default 60 s. */
  startTimeoutMs?: number;
  /** Default deadline of CRI calls. Default 60 s (RunPodSandbox on a busy 2-core machine). */
  callTimeoutMs?: number;
}

/** Persisted in the temporary directory so that a later run can clean up after a killed one. */
interface Manifest {
  ownerPid: number;
  ownerStart: string;
  socket: string;
  cgroupParent: string;
  containerdPid?: number;
  sandboxIds: string[];
  /** Shared directories that did not exist when this harness started. */
  createdSharedDirs: string[];
}

// ---- small synchronous process and file helpers (usable from an exit handler) ----------------------------------

function procStartTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19]; // field 22: starttime
  } catch {
    return undefined;
  }
}

/** Alive and not a zombie. */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat[stat.lastIndexOf(")") + 2] !== "Z";
  } catch {
    return false;
  }
}

function argv(pid: number): string[] {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").filter(Boolean);
  } catch {
    return [];
  }
}

function allPids(): number[] {
  return readdirSync("/proc")
    .filter((d) => /^\d+$/.test(d))
    .map(Number);
}

const sleepCell = new Int32Array(new SharedArrayBuffer(4));
/** Polls `cond` synchronously (exit handlers cannot await) until true or `timeoutMs` passes. */
function waitSync(cond: () => boolean, timeoutMs: number): boolean {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (cond()) return true;
    if (Date.now() >= end) return false;
    Atomics.wait(sleepCell, 0, 0, 20);
  }
}

function killPids(pids: number[]): void {
  for (const pid of pids) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // already gone
    }
  }
}

/** Mount points at or under `dir`, deepest first (from /proc/self/mountinfo, octal escapes decoded). */
function mountsUnder(dir: string): string[] {
  const out: string[] = [];
  for (const line of readFileSync("/proc/self/mountinfo", "utf8").split("\n")) {
    const mp = line.split(" ")[4];
    if (!mp) continue;
    const path = mp.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
    if (path === dir || path.startsWith(`${dir}/`)) out.push(path);
  }
  return out.sort((a, b) => b.length - a.length);
}

/** Our cgroup directories in every hierarchy, deepest first. */
function cgroupDirs(parent: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    let entries: import("node:fs").Dirent[];
    try {
      entries = readdirSync(d, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) if (e.isDirectory()) walk(join(d, e.name));
    out.push(d);
  };
  let hierarchies: string[] = [];
  try {
    hierarchies = readdirSync(CGROUP_ROOT);
  } catch {
    return out;
  }
  for (const h of hierarchies) {
    const top = join(CGROUP_ROOT, h, parent);
    if (existsSync(top)) walk(top);
  }
  return out.sort((a, b) => b.length - a.length);
}

function cgroupPids(parent: string): number[] {
  const pids = new Set<number>();
  for (const d of cgroupDirs(parent)) {
    try {
      for (const p of readFileSync(join(d, "cgroup.procs"), "utf8").split("\n")) if (p) pids.add(Number(p));
    } catch {
      // gone meanwhile
    }
  }
  return [...pids];
}

/** The shim sockets of these sandboxes: containerd 1.6 names them sha256("<address>/<namespace>/<id>"). */
function shimSocketPaths(socket: string, ids: Iterable<string>): string[] {
  return [...ids].map((id) =>
    join(SHIM_SOCKETS, createHash("sha256").update(`${socket}/${NAMESPACE}/${id}`).digest("hex")),
  );
}

/**
 * Removes everything a harness in `dir` may have left (containerd itself must already be dead or is killed here).
 * Synchronous, so that it can run from an exit handler. Returns what could not be removed.
 */
function cleanupSync(dir: string, m: Manifest): string[] {
  const problems: string[] = [];
  if (m.containerdPid && alive(m.containerdPid) && argv(m.containerdPid).some((a) => a.startsWith(dir))) {
    killPids([m.containerdPid]);
  }
  // Sandbox ids: those we were told of, and those containerd's own state and metadata dirs name.
  const ids = new Set(m.sandboxIds);
  for (const d of [
    join(dir, "state", "io.containerd.runtime.v2.task", NAMESPACE),
    join(dir, "state", "io.containerd.grpc.v1.cri", "sandboxes"),
    join(dir, "root", "io.containerd.grpc.v1.cri", "sandboxes"),
  ]) {
    try {
      for (const id of readdirSync(d)) ids.add(id);
    } catch {
      // not there
    }
  }
  const shimSockets = new Set(shimSocketPaths(m.socket, ids));
  try {
    const tasks = join(dir, "state", "io.containerd.runtime.v2.task", NAMESPACE);
    for (const id of readdirSync(tasks)) {
      try {
        const addr = readFileSync(join(tasks, id, "address"), "utf8")
          .trim()
          .replace(/^unix:\/\//, "");
        if (addr.startsWith(`${SHIM_SOCKETS}/`)) shimSockets.add(addr);
      } catch {
        // no address file
      }
    }
  } catch {
    // no task dir
  }

  // Processes: our shims (by their command line naming our socket), then whatever is left in our cgroups.
  const ours = (pid: number) => {
    const a = argv(pid);
    if (!a[0]?.endsWith("containerd-shim-runc-v2")) return false;
    const i = a.indexOf("-address");
    return i >= 0 && a[i + 1] === m.socket;
  };
  const shims = allPids().filter(ours);
  killPids(shims);
  killPids(cgroupPids(m.cgroupParent));
  const gone = waitSync(
    () => shims.every((p) => !alive(p)) && cgroupPids(m.cgroupParent).every((p) => !alive(p)),
    10_000,
  );
  if (!gone)
    problems.push(`processes still alive: ${[...shims.filter(alive), ...cgroupPids(m.cgroupParent)].join(" ")}`);

  // Mounts under the directory (netns, shm, rootfs), deepest first; lazy, so a busy one cannot block us.
  for (let round = 0; round < 5 && mountsUnder(dir).length > 0; round++) {
    for (const mp of mountsUnder(dir)) spawnSync("umount", ["-l", mp], { stdio: "ignore" });
  }
  const mounts = mountsUnder(dir);
  if (mounts.length > 0) problems.push(`still mounted: ${mounts.join(" ")}`);

  // cgroups: rmdir, deepest first (possible once their processes are gone).
  waitSync(() => {
    for (const d of cgroupDirs(m.cgroupParent)) {
      try {
        rmdirSync(d);
      } catch {
        // EBUSY while a killed process is still exiting
      }
    }
    return cgroupDirs(m.cgroupParent).length === 0;
  }, 5_000);
  const cgroups = cgroupDirs(m.cgroupParent);
  if (cgroups.length > 0) problems.push(`cgroups left: ${cgroups.join(" ")}`);

  for (const s of shimSockets) rmSync(s, { force: true });

  try {
    for (const f of readdirSync(CNI_RESULTS)) {
      if ([...ids].some((id) => f.includes(`-${id}-`))) rmSync(join(CNI_RESULTS, f), { force: true });
    }
  } catch {
    // no cache dir
  }

  if (mounts.length === 0) {
    try {
      rmSync(dir, { recursive: true, force: true });
    } catch (e) {
      problems.push(`cannot remove ${dir}: ${(e as Error).message}`);
    }
  } else {
    problems.push(`${dir} kept: mounts remain under it`);
  }

  for (const d of SHARED_DIRS) {
    if (!m.createdSharedDirs.includes(d)) continue;
    try {
      rmdirSync(d);
    } catch {
      // not empty (someone else's) or already gone
    }
  }
  return problems;
}

// ---- process-wide bookkeeping: clean up on exit and on SIGINT/SIGTERM -----------------------------------------

const live = new Set<ContainerdHarness>();
let handlersInstalled = false;

function installExitHandlers(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  process.on("exit", () => {
    for (const h of live) h.cleanupNow();
  });
  for (const [sig, num] of [
    ["SIGINT", 2],
    ["SIGTERM", 15],
  ] as const) {
    const onSignal = () => {
      for (const h of live) h.cleanupNow();
      process.off(sig, onSignal);
      // Die as the signal would have made us (unless someone else handles it), but through process.exit, so
      // that the other exit handlers (a test's own cleanup) run too.
      if (process.listenerCount(sig) === 0) process.exit(128 + num);
    };
    process.on(sig, onSignal);
  }
}

const OWNER_FILE = ".owner";

/**
 * A temporary directory that reapStale() removes once its creator is gone: for a test's own files (bin dir,
 * conflist, data dir) that would otherwise outlive a killed run. `prefix` must start with "local-ipam-".
 */
export function ownedTempDir(prefix: string): string {
  if (!prefix.startsWith("local-ipam-")) throw new Error(`ownedTempDir: prefix ${prefix} must start with local-ipam-`);
  const dir = mkdtempSync(join(tmpdir(), prefix));
  writeFileSync(join(dir, OWNER_FILE), JSON.stringify({ pid: process.pid, start: procStartTime(process.pid) }));
  return dir;
}

/**
 * Cleans up after earlier runs whose process is gone (killed before its cleanup ran): harness directories (their
 * containerd, shims, sandboxes, mounts, cgroups...) and directories made by ownedTempDir().
 */
export function reapStale(): string[] {
  const problems: string[] = [];
  for (const name of readdirSync(tmpdir())) {
    if (!name.startsWith("local-ipam-")) continue;
    const dir = join(tmpdir(), name);
    if (name.startsWith(DIR_PREFIX)) {
      let m: Manifest;
      try {
        m = JSON.parse(readFileSync(join(dir, "harness.json"), "utf8")) as Manifest;
      } catch {
        continue; // being created right now, or not ours
      }
      if (procStartTime(m.ownerPid) === m.ownerStart) continue; // its owner still runs
      problems.push(...cleanupSync(dir, m));
      continue;
    }
    let owner: { pid: number; start: string };
    try {
      owner = JSON.parse(readFileSync(join(dir, OWNER_FILE), "utf8")) as { pid: number; start: string };
    } catch {
      continue; // not made by ownedTempDir
    }
    if (procStartTime(owner.pid) === owner.start) continue;
    for (const mp of mountsUnder(dir)) spawnSync("umount", ["-l", mp], { stdio: "ignore" });
    if (mountsUnder(dir).length === 0) rmSync(dir, { recursive: true, force: true });
    else problems.push(`${dir}: mounts remain`);
  }
  return problems;
}

// ---- bounded waiting ------------------------------------------------------------------------------------------

/** Thrown by a waitFor probe to stop waiting at once (the awaited thing can no longer happen). */
export class GiveUp extends Error {}

/**
 * Calls `probe` until it returns a value other than undefined/false, at most `timeoutMs`, pacing the probes by
 * `intervalMs`; the error names `what` and the probe's last error. A probe that throws GiveUp ends it at once.
 */
export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined | false> | T | undefined | false,
  timeoutMs: number,
  intervalMs = 50,
): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined && v !== false) return v;
    } catch (e) {
      if (e instanceof GiveUp) throw e;
      last = e;
    }
    if (Date.now() >= end) {
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${(last as Error).message ?? last}` : ""}`,
      );
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

function run(cmd: string, args: string[], timeoutMs: number): Promise<{ status: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      stdio: ["ignore", "pipe", "pipe"],
      env: CONTAINERD_ENV,
      timeout: timeoutMs,
      killSignal: "SIGKILL",
    });
    let out = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (out += d));
    child.on("error", reject);
    child.on("close", (status) => resolve({ status, out }));
  });
}

// ---- the harness ----------------------------------------------------------------------------------------------

export class ContainerdHarness {
  readonly socket: string;
  readonly configPath: string;
  readonly logPath: string;
  /** cgroupfs-style parent of every sandbox we create: /sys/fs/cgroup/<hierarchy><cgroupParent>/<sandbox id>. */
  readonly cgroupParent: string;
  /** The label every sandbox of ours carries, with this harness's id as its value. */
  static readonly LABEL = "local-ipam.test/harness";
  readonly id: string;
  cri!: CriClient;
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();
  private manifest: Manifest;
  private stopped = false;
  private readonly startTimeoutMs: number;
  private readonly callTimeoutMs: number;

  private constructor(
    readonly dir: string,
    private readonly opts: HarnessOptions,
  ) {
    this.id = dir.slice(dir.lastIndexOf(DIR_PREFIX) + DIR_PREFIX.length);
    this.socket = join(dir, "containerd.sock");
    this.configPath = join(dir, "config.toml");
    this.logPath = join(dir, "containerd.log");
    this.cgroupParent = `/local-ipam-cri-${this.id}`;
    this.startTimeoutMs = opts.startTimeoutMs ?? 60_000;
    this.callTimeoutMs = opts.callTimeoutMs ?? 60_000;
    this.manifest = {
      ownerPid: process.pid,
      ownerStart: procStartTime(process.pid) ?? "",
      socket: this.socket,
      cgroupParent: this.cgroupParent,
      sandboxIds: [],
      createdSharedDirs: SHARED_DIRS.filter((d) => !existsSync(d)),
    };
  }

  static async start(opts: HarnessOptions): Promise<ContainerdHarness> {
    if (process.getuid?.() !== 0) throw new Error("containerd's CRI needs root");
    reapStale();
    const dir = mkdtempSync(join(tmpdir(), DIR_PREFIX));
    const h = new ContainerdHarness(dir, opts);
    h.saveManifest();
    live.add(h);
    installExitHandlers();
    try {
      for (const d of ["root", "state", "tmp", "runc", "opt", "logs"]) mkdirSync(join(dir, d));
      writeFileSync(h.configPath, h.config());
      await h.launch();
      // The sandbox image, imported offline, then visible to the CRI plugin (it learns of images by events).
      writePauseImage(join(dir, "pause.tar"));
      const imp = await run(
        "ctr",
        ["--address", h.socket, "-n", NAMESPACE, "images", "import", join(dir, "pause.tar")],
        h.startTimeoutMs,
      );
      if (imp.status !== 0) throw new Error(`ctr images import failed (${imp.status}): ${imp.out}`);
      await waitFor(
        "the CRI plugin to see the pause image",
        () => h.cri.imageStatus(PAUSE_IMAGE, { timeoutMs: 5_000 }),
        h.startTimeoutMs,
      );
      await h.waitReady();
      return h;
    } catch (e) {
      const log = h.logTail();
      await h.stop().catch(() => undefined);
      throw new Error(`${(e as Error).message}\n--- containerd log (tail) ---\n${log}`);
    }
  }

  /** containerd's config.toml (version 2). */
  config(): string {
    const q = (s: string) => JSON.stringify(s); // a TOML basic string
    const d = (sub: string) => q(join(this.dir, sub));
    return `version = 2
root = ${d("root")}
state = ${d("state")}
temp = ${d("tmp")}
oom_score = 0
# snapshotters we do not use: nothing of theirs is created or probed
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs"]

[grpc]
  address = ${q(this.socket)}
[ttrpc]
  address = ${q(`${this.socket}.ttrpc`)}
[debug]
  address = ""
[metrics]
  address = ""

[plugins."io.containerd.internal.v1.opt"]
  path = ${d("opt")}
[plugins."io.containerd.runtime.v1.linux"]
  runtime_root = ${d("runc-v1")}
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = ${q(PAUSE_IMAGE)}
  # sandboxes ask for oom_score_adj -998, which fails without CAP_SYS_RESOURCE
  restrict_oom_score_adj = true
  # pod network namespaces under the state dir, not /var/run/netns
  netns_mounts_under_state_dir = true
  # no fixed port: another containerd may hold the default
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = ${q(this.opts.cniBinDir)}
    conf_dir = ${q(this.opts.cniConfDir)}
    max_conf_num = 1
    conf_template = ""
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = ${d("runc")}
`;
  }

  private saveManifest(): void {
    writeFileSync(join(this.dir, "harness.json"), JSON.stringify(this.manifest));
  }

  /** Starts containerd and waits until its CRI answers Version. */
  private async launch(): Promise<void> {
    const log = openSync(this.logPath, "a");
    const child = spawn("containerd", ["--config", this.configPath], {
      stdio: ["ignore", log, log],
      env: CONTAINERD_ENV,
    });
    closeSync(log);
    this.child = child;
    let exitInfo: string | undefined;
    this.exited = new Promise((resolve) => {
      child.once("exit", (code, signal) => {
        exitInfo = `containerd exited (${signal ?? code})`;
        resolve();
      });
      child.once("error", (e) => {
        exitInfo = `containerd did not start: ${e.message}`;
        resolve();
      });
    });
    if (child.pid) {
      this.manifest.containerdPid = child.pid;
      this.saveManifest();
    }
    if (!this.cri) {
      // The first connection: retried until the socket exists and the CRI plugin answers.
      this.cri = await waitFor(
        "containerd's socket",
        async () => {
          if (exitInfo) throw new GiveUp(exitInfo);
          return existsSync(this.socket) && (await CriClient.connect(this.socket, { timeoutMs: this.callTimeoutMs }));
        },
        this.startTimeoutMs,
      );
    }
    // After a restart the same client reconnects by itself: its old session died with the old containerd.
    await waitFor(
      "the CRI Version call",
      async () => {
        if (exitInfo) throw new GiveUp(exitInfo);
        return this.cri.version({ timeoutMs: 2_000 });
      },
      this.startTimeoutMs,
    );
  }

  /** Waits until Status reports RuntimeReady and NetworkReady (the conflist is loaded). */
  async waitReady(): Promise<void> {
    await waitFor(
      "RuntimeReady and NetworkReady",
      async () => {
        const st = await this.cri.status(false, { timeoutMs: 5_000 });
        const bad = st.conditions.filter((c) => !c.status);
        if (bad.length > 0) throw new Error(bad.map((c) => `${c.type}: ${c.reason} ${c.message}`).join("; "));
        return st.conditions.length >= 2;
      },
      this.startTimeoutMs,
    );
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** A pod config as kubelet would send it, with our cgroup parent, log dir and label. */
  podConfig(name: string, attempt = 0, namespace = "local-ipam-cri"): PodSandboxConfig {
    const uid = createHash("sha256").update(`${this.id}/${namespace}/${name}`).digest("hex").slice(0, 32);
    const logDirectory = join(this.dir, "logs", `${namespace}_${name}_${uid}`);
    return {
      metadata: { name, uid, namespace, attempt },
      hostname: name,
      logDirectory,
      dnsConfig: {
        servers: ["10.96.0.10"],
        searches: [`${namespace}.svc.cluster.local`, "svc.cluster.local"],
        options: ["ndots:5"],
      },
      labels: {
        [ContainerdHarness.LABEL]: this.id,
        "io.kubernetes.pod.name": name,
        "io.kubernetes.pod.namespace": namespace,
      },
      linux: { cgroupParent: this.cgroupParent },
    };
  }

  /** Records a sandbox id so that cleanup finds its shim socket and libcni cache entries even after a crash. */
  track(id: string): void {
    if (!this.manifest.sandboxIds.includes(id)) {
      this.manifest.sandboxIds.push(id);
      this.saveManifest();
    }
  }

  /** RunPodSandbox; returns the sandbox id. */
  async runPod(name: string, opts: { attempt?: number; timeoutMs?: number } = {}): Promise<string> {
    const id = await this.cri.runPodSandbox(this.podConfig(name, opts.attempt ?? 0), {
      timeoutMs: opts.timeoutMs ?? this.callTimeoutMs,
    });
    this.track(id);
    return id;
  }

  /** StopPodSandbox then RemovePodSandbox, as kubelet does when a pod is deleted. */
  async stopAndRemove(id: string): Promise<void> {
    await this.cri.stopPodSandbox(id, { timeoutMs: this.callTimeoutMs });
    await this.cri.removePodSandbox(id, { timeoutMs: this.callTimeoutMs });
  }

  /** Stops and removes every sandbox containerd lists (ready or not); returns their ids. */
  async removeAllPods(): Promise<string[]> {
    const pods = await this.cri.listPodSandbox(undefined, { timeoutMs: this.callTimeoutMs });
    for (const p of pods) this.track(p.id);
    for (const p of pods) await this.stopAndRemove(p.id);
    return pods.map((p) => p.id);
  }

  /** The sandbox's network namespace path, from containerd's verbose status. */
  async netnsPath(id: string): Promise<string> {
    const { info } = await this.cri.podSandboxStatus(id, true);
    const spec = JSON.parse(info.info ?? "{}") as {
      runtimeSpec?: { linux?: { namespaces?: { type: string; path?: string }[] } };
    };
    const path = spec.runtimeSpec?.linux?.namespaces?.find((n) => n.type === "network")?.path;
    if (!path) throw new Error(`no network namespace in the status of ${id}`);
    return path;
  }

  /** A file containerd wrote for the sandbox (hostname, resolv.conf, hosts), from its CRI root dir. */
  sandboxFile(id: string, name: string): string {
    return readFileSync(join(this.dir, "root", "io.containerd.grpc.v1.cri", "sandboxes", id, name), "utf8");
  }

  /** The sandbox's cgroup directories (<hierarchy><cgroupParent>/<id>) that exist. */
  sandboxCgroups(id: string): string[] {
    return cgroupDirs(this.cgroupParent).filter((d) => d.endsWith(`/${id}`));
  }

  /** SIGKILL containerd (shims and sandboxes live on), and wait until it is gone. */
  async kill9(): Promise<void> {
    if (this.child?.pid && this.child.exitCode === null && this.child.signalCode === null) this.child.kill("SIGKILL");
    await this.exited;
    this.child = undefined;
  }

  /** Starts containerd again on the same root, state and socket, and waits until it is ready. */
  async restart(): Promise<void> {
    if (this.child) throw new Error("containerd is still running: kill9() or stop() first");
    try {
      await this.launch();
      await this.waitReady();
    } catch (e) {
      throw new Error(`${(e as Error).message}\n--- containerd log (tail) ---\n${this.logTail()}`);
    }
  }

  /** The end of containerd's log (debugging a failed test). */
  logTail(lines = 40): string {
    try {
      return readFileSync(this.logPath, "utf8").trimEnd().split("\n").slice(-lines).join("\n");
    } catch {
      return "(no log)";
    }
  }

  /**
   * Stops and removes every sandbox (when containerd still answers), stops containerd (SIGTERM, then SIGKILL after
   * 10 s), then removes everything else it left. Throws, after doing all it can, if anything remains.
   */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    const problems: string[] = [];
    if (this.child && this.cri) {
      try {
        const pods = await this.cri.listPodSandbox(undefined, { timeoutMs: 10_000 });
        for (const p of pods) this.track(p.id);
        for (const p of pods) {
          try {
            await this.cri.stopPodSandbox(p.id, { timeoutMs: 30_000 });
            await this.cri.removePodSandbox(p.id, { timeoutMs: 30_000 });
          } catch (e) {
            problems.push(`stop/remove ${p.id}: ${(e as Error).message}`);
          }
        }
      } catch (e) {
        if (!(e instanceof GrpcError)) throw e;
        problems.push(`listing sandboxes: ${e.message}`);
      }
    }
    if (this.cri) await this.cri.close();
    if (this.child) {
      this.child.kill("SIGTERM");
      const timer = setTimeout(() => this.child?.kill("SIGKILL"), 10_000);
      await this.exited;
      clearTimeout(timer);
      this.child = undefined;
    }
    problems.push(...cleanupSync(this.dir, this.manifest));
    live.delete(this);
    if (problems.length > 0) throw new Error(`containerd harness cleanup:\n${problems.join("\n")}`);
  }

  /** The exit handler's path: no CRI calls, containerd SIGKILLed, everything else removed. */
  cleanupNow(): void {
    if (this.stopped) return;
    this.stopped = true;
    if (this.child?.pid) killPids([this.child.pid]);
    cleanupSync(this.dir, this.manifest);
    live.delete(this);
  }

  /** What a test can check afterwards: the things of ours that would be leaks. Empty when all is clean. */
  leftovers(): string[] {
    const out: string[] = [];
    if (existsSync(this.dir)) out.push(`directory ${this.dir}`);
    const mounts = mountsUnder(this.dir);
    if (mounts.length) out.push(`mounts ${mounts.join(" ")}`);
    const procs = allPids().filter((p) => alive(p) && argv(p).some((a) => a.includes(this.dir)));
    if (procs.length) out.push(`processes ${procs.join(" ")}`);
    const cgroups = cgroupDirs(this.cgroupParent);
    if (cgroups.length) out.push(`cgroups ${cgroups.join(" ")}`);
    const sockets = shimSocketPaths(this.socket, this.manifest.sandboxIds).filter((s) => existsSync(s));
    if (sockets.length) out.push(`shim sockets ${sockets.join(" ")}`);
    try {
      const cached = readdirSync(CNI_RESULTS).filter((f) =>
        this.manifest.sandboxIds.some((id) => f.includes(`-${id}-`)),
      );
      if (cached.length) out.push(`libcni cache ${cached.join(" ")}`);
    } catch {
      // no cache dir
    }
    return out;
  }

  /** Every sandbox id this harness has seen (run, listed). */
  get sandboxIds(): readonly string[] {
    return this.manifest.sandboxIds;
  }
}
