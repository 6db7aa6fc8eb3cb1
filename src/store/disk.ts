// The network directory, byte-compatible with host-local: <dataDir>/<name>/<ip> holding "<id>\r\n<ifname>",
// last_reserved_ip.<N>, and the flock on <dir>/lock. What we add: a lease file appears whole or not at all
// (written to a temporary file in our own state directory, fsynced, then hard-linked into place, which fails
// if the name exists exactly as host-local's O_EXCL create does), it is 0600, the directory is fsynced before
// the result is printed, and nothing planted in the directory (a symlink, a FIFO) is followed or opened blocking.
import {
  closeSync,
  constants,
  fstatSync,
  fsyncSync,
  linkSync,
  lstatSync,
  mkdirSync,
  openSync,
  readSync,
  readdirSync,
  renameSync,
  unlinkSync,
  writeSync,
} from "node:fs";
import type { Store } from "../allocator/store.js";
import { CniError, E, goErrText } from "../cni/errors.js";
import { FileLock } from "./lock.js";

const LEASE_MODE = 0o600;

/** filepath.Join for our two-part paths; node:path would cost start-up for one call. */
export function join(...parts: string[]): string {
  return parts.join("/").replace(/\/{2,}/g, "/");
}
const MAX_LEASE_BYTES = 64 * 1024;
/** Our own files live beside the networks, never inside one: host-local reads every file in a network dir. */
export const STATE_DIR = ".local-ipam";

function ioError(syscall: string, path: string, e: unknown): CniError {
  const code = (e as NodeJS.ErrnoException).code;
  if (code === "ENOSPC" || code === "EDQUOT") return E.noSpace(path);
  return E.io(syscall, path, goErrText(e));
}

function readFd(fd: number, limit: number): string {
  const buf = Buffer.allocUnsafe(limit);
  let len = 0;
  while (len < limit) {
    const n = readSync(fd, buf, len, limit - len, null);
    if (n === 0) break;
    len += n;
  }
  return buf.toString("utf8", 0, len);
}

/** Reads a small regular file without following a symlink or blocking on a FIFO; null if it is not one. */
export function readSmallFile(path: string, limit: number): string | null {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch {
    return null;
  }
  try {
    return fstatSync(fd).isFile() ? readFd(fd, limit) : null;
  } catch {
    return null;
  } finally {
    closeSync(fd);
  }
}

/** A file the config names (resolvConf), with Go's error text on failure as host-local reports it. */
export function readConfigFile(path: string): string {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (e) {
    throw E.resolvConf(`open ${path}: ${goErrText(e)}`);
  }
  try {
    const st = fstatSync(fd);
    if (st.isDirectory()) throw E.resolvConf(`read ${path}: is a directory`);
    if (!st.isFile()) throw E.resolvConf(`read ${path}: not a regular file`);
    return readFd(fd, 1 << 20);
  } finally {
    closeSync(fd);
  }
}

/** The wall-clock time of the current boot, from btime in /proc/stat (ms since the epoch), or null. */
export function bootTimeMs(): number | null {
  const stat = readSmallFile("/proc/stat", 1 << 20);
  const m = stat && /^btime (\d+)$/m.exec(stat);
  return m ? Number(m[1]) * 1000 : null;
}

export class NetworkStore implements Store {
  private sorted: string[] | null = null;
  private tmp: { owner: string; path: string } | null = null;
  private tmpCounter = 0;
  private changed = false;
  private stateReady = false;

  private constructor(
    readonly dir: string,
    private readonly stateDir: string,
    private readonly lock: FileLock,
  ) {}

  /** Creates <dataDir>/<network> (0755) if needed and takes its lock. */
  static open(dataDir: string, network: string, lockTimeoutMs: number): NetworkStore {
    return NetworkStore.openDir(dataDir, network, lockTimeoutMs, true)!;
  }

  /** Like open, but returns null instead of creating a network directory that does not exist. */
  static openExisting(dataDir: string, network: string, lockTimeoutMs: number): NetworkStore | null {
    return NetworkStore.openDir(dataDir, network, lockTimeoutMs, false);
  }

  private static openDir(dataDir: string, network: string, lockTimeoutMs: number, create: boolean): NetworkStore | null {
    const dir = join(dataDir, network);
    try {
      if (create) mkdirSync(dir, { recursive: true, mode: 0o755 });
    } catch (e) {
      throw ioError("mkdir", dir, e);
    }
    if (!create) {
      try {
        lstatSync(dir);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === "ENOENT") return null;
        throw ioError("lstat", dir, e);
      }
    }
    let isLink = false;
    try {
      isLink = lstatSync(dir).isSymbolicLink();
    } catch (e) {
      throw ioError("lstat", dir, e);
    }
    if (isLink) throw E.symlinkRefused(dir);
    let lock: FileLock;
    try {
      lock = FileLock.acquire(join(dir, "lock"), lockTimeoutMs);
    } catch (e) {
      if (e instanceof CniError) throw e;
      throw ioError("open", join(dir, "lock"), e);
    }
    return new NetworkStore(dir, join(dataDir, STATE_DIR, network), lock);
  }

  names(): readonly string[] {
    if (!this.sorted) {
      try {
        this.sorted = readdirSync(this.dir).sort();
      } catch (e) {
        throw ioError("readdir", this.dir, e);
      }
    }
    return this.sorted;
  }

  private noteAdded(name: string): void {
    const names = this.names() as string[];
    let lo = 0;
    let hi = names.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (names[mid]! < name) lo = mid + 1;
      else hi = mid;
    }
    if (names[lo] !== name) names.splice(lo, 0, name);
  }

  private noteRemoved(name: string): void {
    const names = this.names() as string[];
    const i = names.indexOf(name);
    if (i >= 0) names.splice(i, 1);
  }

  readLease(name: string): string | null {
    return readSmallFile(join(this.dir, name), MAX_LEASE_BYTES);
  }

  /** Our per-network state directory; temporary files left by a killed run are removed (we hold the lock). */
  private ensureStateDir(): void {
    if (this.stateReady) return;
    try {
      mkdirSync(this.stateDir, { recursive: true, mode: 0o700 });
      for (const leftover of readdirSync(this.stateDir)) if (leftover.startsWith("tmp.")) unlinkSync(join(this.stateDir, leftover));
    } catch (e) {
      throw ioError("mkdir", this.stateDir, e);
    }
    this.stateReady = true;
  }

  private writeWhole(path: string, content: string, flags: number): void {
    const fd = openSync(path, flags | constants.O_WRONLY | constants.O_NOFOLLOW, LEASE_MODE);
    try {
      const buf = Buffer.from(content, "utf8");
      let off = 0;
      while (off < buf.length) off += writeSync(fd, buf, off, buf.length - off);
      fsyncSync(fd);
    } catch (e) {
      closeSync(fd);
      try {
        unlinkSync(path);
      } catch {
        /* already gone */
      }
      throw ioError("write", path, e);
    }
    closeSync(fd);
  }

  private tmpPath(): string {
    return join(this.stateDir, `tmp.${process.pid}.${this.tmpCounter++}`);
  }

  /** One fsynced temporary file per owner, linked to as many addresses as the ADD reserves. */
  private prepared(owner: string): string {
    if (this.tmp?.owner === owner) return this.tmp.path;
    this.dropTmp();
    this.ensureStateDir();
    const path = this.tmpPath();
    this.writeWhole(path, owner, constants.O_CREAT | constants.O_EXCL);
    this.tmp = { owner, path };
    return path;
  }

  private dropTmp(): void {
    if (!this.tmp) return;
    try {
      unlinkSync(this.tmp.path);
    } catch {
      /* already gone */
    }
    this.tmp = null;
  }

  reserve(name: string, owner: string): boolean {
    const target = join(this.dir, name);
    const source = this.prepared(owner);
    try {
      linkSync(source, target);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === "EEXIST") return false;
      if (code !== "EXDEV" && code !== "EPERM" && code !== "EMLINK") throw ioError("link", target, e);
      // the network directory is on another file system than our state directory: create in place
      try {
        this.writeWhole(target, owner, constants.O_CREAT | constants.O_EXCL);
      } catch (e2) {
        const inner = (e2 as CniError).msg ?? "";
        if (inner.endsWith(goErrText({ code: "EEXIST" }))) return false;
        throw e2;
      }
    }
    this.changed = true;
    this.noteAdded(name);
    return true;
  }

  remove(name: string): boolean {
    return this.removeReporting(name) === null; // host-local swallows release errors, to release all it can
  }

  /** Removes the lease `name`; null on success (or when it was already gone), else what went wrong. */
  removeReporting(name: string): string | null {
    const path = join(this.dir, name);
    try {
      unlinkSync(path);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return null;
      return `remove ${path}: ${goErrText(e)}`;
    }
    this.changed = true;
    this.noteRemoved(name);
    return null;
  }

  replace(name: string, owner: string): void {
    this.ensureStateDir();
    const tmp = this.tmpPath();
    this.writeWhole(tmp, owner, constants.O_CREAT | constants.O_EXCL);
    const target = join(this.dir, name);
    try {
      renameSync(tmp, target); // atomic: readers see the old owner or the new one, never a mix
    } catch (e) {
      try {
        unlinkSync(tmp);
      } catch {
        /* gone */
      }
      throw ioError("rename", target, e);
    }
    this.changed = true;
  }

  mtimeMs(name: string): number | null {
    try {
      const st = lstatSync(join(this.dir, name));
      return st.isFile() ? st.mtimeMs : null;
    } catch {
      return null;
    }
  }

  lastReserved(rangeId: number): string | null {
    return readSmallFile(join(this.dir, `last_reserved_ip.${rangeId}`), 256);
  }

  setLastReserved(rangeId: number, ip: string): void {
    const name = `last_reserved_ip.${rangeId}`;
    const target = join(this.dir, name);
    this.ensureStateDir();
    const path = this.tmpPath();
    const fd = openSync(path, constants.O_CREAT | constants.O_EXCL | constants.O_WRONLY, LEASE_MODE);
    try {
      writeSync(fd, ip);
    } finally {
      closeSync(fd);
    }
    try {
      renameSync(path, target); // replaces, never follows, whatever sits at that name
    } catch (e) {
      try {
        unlinkSync(path);
      } catch {
        /* gone */
      }
      if ((e as NodeJS.ErrnoException).code !== "EXDEV") throw ioError("rename", target, e);
      this.writeWhole(target, ip, constants.O_CREAT | constants.O_TRUNC);
    }
    this.changed = true;
    this.noteAdded(name);
  }

  /** Makes every change durable (directory fsync) before a result is printed. */
  commit(): void {
    this.dropTmp();
    if (!this.changed) return;
    const fd = openSync(this.dir, constants.O_RDONLY | constants.O_DIRECTORY);
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    this.changed = false;
  }

  close(): void {
    this.dropTmp();
    this.lock.release();
  }
}
