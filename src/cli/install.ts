// `local-ipam install` and `local-ipam migrate`: what a DaemonSet (or an operator) does to a node.
//
// install copies this very executable into the CNI bin dir and, only then, writes the conflist: each through a
// temporary file with an unpredictable name in the target directory, fsynced, then renamed over the target. A
// runtime executing <bin>/local-ipam during an upgrade runs the old binary or the new one, never half of one, and
// never meets "text file busy" (the running file is replaced, not written into); a runtime reading the conf dir
// sees no conflist until its plugin is in place, and never a half-written one (the temporary name has no .conf,
// .conflist or .json extension, so CNI ignores it). Nothing is rewritten when nothing changed.
import { platform } from "../platform/index.js";
import { Dir, readFd, readFileAt, replaceFile } from "../store/files.js";
import { DEFAULT_TEMPLATE, ipamTypeNodes, parseWithOffsets, podCidrs, renderConflist } from "./conflist.js";
import { UsageError } from "./flags.js";

const MAX_BINARY = 64 << 20;
const MAX_CONF = 1 << 20;

/** The running executable's bytes (/proc/self/exe is a magic link: it is followed on purpose). */
function ownExecutable(): Uint8Array {
  const p = platform();
  const fd = p.openat(p.c.AT_FDCWD, "/proc/self/exe", p.c.O_RDONLY | p.c.O_CLOEXEC, 0);
  try {
    return readFd(fd, p.fstat(fd).size, MAX_BINARY);
  } finally {
    p.close(fd);
  }
}

function sameBytes(a: Uint8Array | undefined, b: Uint8Array): boolean {
  if (!a || a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** A directory given on the command line, which must exist and which only its owner may change. */
function safeDir(path: string, flag: string): Dir {
  const dir = Dir.open(null, path, null, true);
  if (!dir) throw new UsageError(`${flag}: no directory ${path}`);
  try {
    return dir.requireSafe();
  } catch (e) {
    dir.close();
    throw e;
  }
}

/** Writes `bytes` as `name` in `dir` unless it already holds exactly that; true when it wrote. */
function install(dir: Dir, name: string, bytes: Uint8Array, mode: number): boolean {
  const existing = readFileAt(dir, name, bytes.length + 1);
  if (existing && sameBytes(existing.bytes, bytes) && (existing.stat.mode & 0o7777) === mode) return false;
  replaceFile(dir, name, bytes, mode, true);
  dir.sync(); // the rename is durable before anyone is told
  return true;
}

interface InstallOptions {
  /** none: the conflist only (the plugin is in place already) */
  binDir?: string;
  binName: string;
  confDir?: string;
  confName: string;
  template?: string;
  podCidrs: string[];
}

/** Lines for the operator: what was installed or found unchanged. */
export function runInstall(o: InstallOptions): string[] {
  const lines: string[] = [];
  const p = platform();
  // the conflist is rendered and checked before anything is written: a bad template changes nothing
  let conflist: Uint8Array | null = null;
  if (o.confDir !== undefined) {
    const cidrs = podCidrs(o.podCidrs);
    if (cidrs.length === 0) throw new UsageError("--conf-dir needs at least one --pod-cidr");
    conflist = p.utf8Encode(renderConflist(o.template ?? DEFAULT_TEMPLATE, cidrs));
  }
  if (o.binDir !== undefined) {
    const bin = safeDir(o.binDir, "--bin-dir");
    try {
      const exe = ownExecutable();
      const wrote = install(bin, o.binName, exe, 0o755);
      lines.push(`${wrote ? "installed" : "unchanged"} ${bin.child(o.binName)} (${exe.length} bytes)`);
    } finally {
      bin.close();
    }
  }
  if (conflist && o.confDir !== undefined) {
    const conf = safeDir(o.confDir, "--conf-dir");
    try {
      const wrote = install(conf, o.confName, conflist, 0o644);
      lines.push(`${wrote ? "wrote" : "unchanged"} ${conf.child(o.confName)}`);
    } finally {
      conf.close();
    }
  }
  return lines;
}

const CONF_FILE = /\.(conf|conflist|json)$/;

interface MigrateOptions {
  confDir: string;
  to: "local-ipam" | "host-local";
  dryRun: boolean;
}

/**
 * Switches the IPAM type of every CNI config in the conf dir from host-local to local-ipam (or back), changing
 * only those bytes of each file, each file replaced atomically; leases stay where they are (the same dataDir and
 * file format). Returns the diff it printed, in unified form.
 */
export function runMigrate(o: MigrateOptions): string[] {
  const from = o.to === "local-ipam" ? "host-local" : "local-ipam";
  const p = platform();
  const dir = safeDir(o.confDir, "--conf-dir");
  const out: string[] = [];
  try {
    for (const name of dir
      .names()
      .filter((n) => CONF_FILE.test(n))
      .sort()) {
      const read = readFileAt(dir, name, MAX_CONF);
      if (!read) continue;
      const text = p.utf8Decode(read.bytes, 0, read.bytes.length);
      let nodes: ReturnType<typeof ipamTypeNodes>;
      try {
        nodes = ipamTypeNodes(parseWithOffsets(text)).filter((n) => n.value === from);
      } catch (e) {
        out.push(`# skipped ${dir.child(name)}: not JSON (${(e as Error).message})`);
        continue;
      }
      if (nodes.length === 0) continue;
      let changed = text;
      for (const n of [...nodes].sort((a, b) => b.start - a.start))
        changed = changed.slice(0, n.start) + JSON.stringify(o.to) + changed.slice(n.end);
      out.push(...unifiedDiff(dir.child(name), text, changed));
      if (!o.dryRun) {
        replaceFile(dir, name, p.utf8Encode(changed), read.stat.mode & 0o7777, true);
        dir.sync();
      }
    }
  } finally {
    dir.close();
  }
  return out;
}

/** A unified diff of two texts that differ in a few lines, with no context lines. */
function unifiedDiff(path: string, a: string, b: string): string[] {
  const left = a.split("\n");
  const right = b.split("\n");
  const out = [`--- ${path}`, `+++ ${path}`];
  for (let i = 0; i < Math.max(left.length, right.length); i++) {
    if (left[i] === right[i]) continue;
    out.push(`@@ -${i + 1} +${i + 1} @@`, `-${left[i] ?? ""}`, `+${right[i] ?? ""}`);
  }
  return out;
}
