// Running a CNI plugin binary the way a runtime does: env + config on stdin, result on stdout.
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { pluginMain } from "../src/cni/skel.js";
import { commands } from "../src/commands/index.js";
import { VERSION } from "../src/version.js";

export const ROOT = resolve(__dirname, "..");
/** The binary under test: the native build, or another (the arm64 or sanitizer build) named by LOCAL_IPAM_BIN. */
export const LOCAL_IPAM = process.env.LOCAL_IPAM_BIN ?? join(ROOT, "dist", "local-ipam");
/** The test build: the same code with its fault points compiled in (see src/faults.ts); never shipped. */
export const FAULTS_BIN = process.env.LOCAL_IPAM_FAULTS_BIN ?? join(ROOT, "dist", "test", "local-ipam");
export const HOST_LOCAL = "/usr/lib/cni/host-local";

export interface Invocation {
  command: string;
  containerId?: string;
  ifname?: string;
  netns?: string;
  args?: string;
  path?: string;
  /** Extra or overriding environment; a value of null removes the variable. */
  env?: Record<string, string | null>;
}

export interface Outcome {
  status: number | null;
  stdout: string;
  stderr: string;
  /** stdout parsed as JSON, or undefined when empty or not JSON. */
  json: any;
}

export function cniEnv(inv: Invocation): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    CNI_COMMAND: inv.command,
    CNI_CONTAINERID: inv.containerId ?? "ctr1",
    CNI_NETNS: inv.netns ?? "/var/run/netns/test",
    CNI_IFNAME: inv.ifname ?? "eth0",
    CNI_PATH: inv.path ?? "/opt/cni/bin",
  };
  if (inv.args !== undefined) env.CNI_ARGS = inv.args;
  for (const [k, v] of Object.entries(inv.env ?? {})) {
    if (v === null) delete env[k];
    else env[k] = v;
  }
  return env;
}

function outcome(status: number | null, stdout: string, stderr: string): Outcome {
  let json: any;
  try {
    json = stdout.trim() ? JSON.parse(stdout) : undefined;
  } catch {
    json = undefined;
  }
  return { status, stdout, stderr, json };
}

/**
 * Runs the plugin in this process, as the binary would run it: the same dispatcher (skel) and commands on the
 * node:fs platform, with the environment and stdin given and stdout/stderr captured. Most suites use this; the
 * binary itself is exec'd only where the process matters (faults, sizes, real clients, the differential suite).
 */
export function plugin(inv: Invocation, stdin: string | object): Outcome {
  const input = typeof stdin === "string" ? stdin : JSON.stringify(stdin);
  const env = cniEnv(inv);
  let stdout = "";
  let stderr = "";
  const status = pluginMain(
    { env, readStdin: () => input, stdout: (t) => (stdout += t), stderr: (t) => (stderr += t) },
    commands,
    `CNI local-ipam plugin v${VERSION}`,
  );
  return outcome(status, stdout, stderr);
}

export function run(bin: string, inv: Invocation, stdin: string | object): Outcome {
  const input = typeof stdin === "string" ? stdin : JSON.stringify(stdin);
  const r = spawnSync(bin, [], { env: cniEnv(inv), input, encoding: "utf8", maxBuffer: 256 << 20 });
  // EPIPE: the plugin exited before reading its stdin (as host-local does on missing variables); Go's os/exec,
  // which runtimes use, ignores that error too. The status and output are still there.
  if (r.error && !((r.error as NodeJS.ErrnoException).code === "EPIPE" && r.status !== null)) throw r.error;
  return outcome(r.status, r.stdout, r.stderr);
}

export function runAsync(bin: string, inv: Invocation, stdin: string | object): Promise<Outcome> {
  const input = typeof stdin === "string" ? stdin : JSON.stringify(stdin);
  return new Promise((resolvePromise, reject) => {
    const child = spawn(bin, [], { env: cniEnv(inv) });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    child.on("error", reject);
    child.on("close", (code) => resolvePromise(outcome(code, stdout, stderr)));
    child.stdin.on("error", () => {}); // a plugin may exit before reading all of stdin
    child.stdin.end(input);
  });
}

/** Runs `tasks` with at most `width` in flight. */
export async function pool<T>(width: number, tasks: (() => Promise<T>)[]): Promise<T[]> {
  const results: T[] = new Array(tasks.length);
  let next = 0;
  const worker = async () => {
    while (next < tasks.length) {
      const i = next++;
      results[i] = await tasks[i]!();
    }
  };
  await Promise.all(Array.from({ length: Math.min(width, tasks.length) }, worker));
  return results;
}

export function tempDir(prefix = "local-ipam-test-"): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

/** Every file under `dir` (recursively) with its content, as "relative/path" -> content. */
export function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  if (!existsSync(dir)) return out;
  const walk = (d: string, prefix: string) => {
    for (const name of readdirSync(d).sort()) {
      const p = join(d, name);
      const st = statSync(p);
      if (st.isDirectory()) walk(p, `${prefix}${name}/`);
      else out[`${prefix}${name}`] = readFileSync(p, "latin1");
    }
  };
  walk(dir, "");
  return out;
}

export function ipamConfig(dataDir: string, ipam: object, extra: object = {}, cniVersion = "1.0.0"): object {
  return { cniVersion, name: "testnet", type: "bridge", ...extra, ipam: { type: "local-ipam", dataDir, ...ipam } };
}

export function hostLocalAvailable(): boolean {
  return existsSync(HOST_LOCAL);
}
