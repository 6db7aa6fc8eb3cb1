// The network directory, byte-compatible with host-local: <dataDir>/<name>/<ip> holding "<id>\r\n<ifname>",
// last_reserved_ip.<N>, and the flock on <dir>/lock. What we add: a lease file appears whole or not at all
// (written to a temporary file in our own state directory, fsynced, then hard-linked into place, which fails
// if the name exists exactly as host-local's O_EXCL create does), it is 0600, the directory is fsynced before
// the result is printed, and nothing planted in the directory (a symlink, a FIFO) is followed or opened blocking.
import {
  closeSync,
  constants,
  existsSync,
  fstatSync,
  fsyncSync,
  linkSync,
  lstatSync,
  mkdirSync,
  openSync,
  readSync,
  readdirSync,
  renameSync,
  statSync,
  unlinkSync,
  utimesSync,
  writeSync,
  writevSync,
} from "node:fs";
import { LeaseTable } from "../allocator/lease-table.js";
import { type NamedLease, type Store, goTrim, leaseAddr } from "../allocator/store.js";
import { CniError, E, goErrText } from "../cni/errors.js";
import { FileLock } from "./lock.js";

const LEASE_MODE = 0o600;

/** filepath.Join for our two-part paths; node:path would cost start-up for one call. */
export function join(...parts: string[]): string {
  return parts.join("/").replace(/\/{2,}/g, "/");
}
const MAX_LEASE_BYTES = 64 * 1024;
const MAX_INDEX_BYTES = 256 << 20;
/** Our own files live beside the networks, never inside one: host-local reads every file in a network dir. */
export const STATE_DIR = ".local-ipam";

function ioError(syscall: string, path: string, e: unknown): CniError {
  const code = (e as NodeJS.ErrnoException).code;
  if (code === "ENOSPC" || code === "EDQUOT") return E.noSpace(path);
  return E.io(syscall, path, goErrText(e));
}

/** Reads `fd` to its end or `limit` bytes. The size is a hint only: files in /proc say 0, so the buffer grows. */
function readAll(fd: number, sizeHint: number, limit: number): Buffer {
  let buf = Buffer.allocUnsafe(Math.min(limit, Math.max(sizeHint + 1, 4096)));
  let len = 0;
  for (;;) {
    if (len === buf.length) {
      if (buf.length >= limit) break;
      const bigger = Buffer.allocUnsafe(Math.min(limit, buf.length * 4));
      buf.copy(bigger, 0, 0, len);
      buf = bigger;
    }
    const n = readSync(fd, buf, len, buf.length - len, null);
    if (n === 0) break;
    len += n;
  }
  return buf.subarray(0, len);
}

/** Reads a regular file without following a symlink or blocking on a FIFO; null if it is not one. */
export function readSmallFileBuffer(path: string, limit: number): Buffer | null {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch {
    return null;
  }
  try {
    const st = fstatSync(fd);
    return st.isFile() ? readAll(fd, st.size, limit) : null;
  } catch {
    return null;
  } finally {
    closeSync(fd);
  }
}

export function readSmallFile(path: string, limit: number): string | null {
  return readSmallFileBuffer(path, limit)?.toString("utf8") ?? null;
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
    return readAll(fd, st.size, 1 << 20).toString("utf8");
  } finally {
    closeSync(fd);
  }
}

/** The release times local-ipam keeps for reuseDelay (address -> ms since the epoch); empty when unreadable. */
export function readReleaseTimes(path: string): Map<string, number> {
  try {
    const parsed = JSON.parse(readSmallFile(path, 16 << 20) ?? "{}") as Record<string, unknown>;
    return new Map(Object.entries(parsed).filter((e): e is [string, number] => typeof e[1] === "number"));
  } catch {
    return new Map(); // a damaged file only loses the delay for the addresses it named
  }
}

/** A counter file of ours (the index rebuilds); 0 when absent or unreadable. */
export function readCounter(path: string): number {
  return Number(readSmallFile(path, 64) ?? "0") || 0;
}

/** The wall-clock time of the current boot, from btime in /proc/stat (ms since the epoch), or null. */
export function bootTimeMs(): number | null {
  const stat = readSmallFile("/proc/stat", 1 << 20);
  const m = stat && /^btime (\d+)$/m.exec(stat);
  return m ? Number(m[1]) * 1000 : null;
}

/** How the index names the state of the network directory it describes. */
function dirStamp(dir: string): string {
  const st = statSync(dir, { bigint: true });
  return `${st.dev}:${st.ino}:${st.mtimeNs}`;
}

export class NetworkStore implements Store {
  private tbl: LeaseTable | null = null;
  private rebuilt = false;
  private tmp: { owner: string; path: string } | null = null;
  private tmpCounter = 0;
  private changed = false;
  private stateReady = false;
  /** How many times this invocation rebuilt the table from the lease files (for tests and metrics). */
  rebuilds = 0;
  private released: Map<string, number> | null = null;
  private releasedDirty = false;
  /** How long release times matter (the config's reuseDelay); older ones are dropped when the file is written. */
  releaseWindowMs = 0;

  private lock: FileLock | null = null;

  private constructor(
    readonly dir: string,
    private readonly stateDir: string,
  ) {}

  /**
   * Creates <dataDir>/<network> (0755) if needed and takes its lock. With `owner`, the lease content is written
   * and fsynced to a temporary file first, outside the lock, so that the lock is held for less time.
   */
  static open(dataDir: string, network: string, lockTimeoutMs: number, owner?: string): NetworkStore {
    return NetworkStore.openDir(dataDir, network, lockTimeoutMs, true, owner)!;
  }

  /** Like open, but returns null instead of creating a network directory that does not exist. */
  static openExisting(dataDir: string, network: string, lockTimeoutMs: number): NetworkStore | null {
    return NetworkStore.openDir(dataDir, network, lockTimeoutMs, false);
  }

  private static openDir(
    dataDir: string,
    network: string,
    lockTimeoutMs: number,
    create: boolean,
    owner?: string,
  ): NetworkStore | null {
    const dir = join(dataDir, network);
    try {
      if (create) mkdirSync(dir, { recursive: true, mode: 0o755 });
    } catch (e) {
      throw ioError("mkdir", dir, e);
    }
    let isLink = false;
    try {
      isLink = lstatSync(dir).isSymbolicLink();
    } catch (e) {
      if (!create && (e as NodeJS.ErrnoException).code === "ENOENT") return null;
      throw ioError("lstat", dir, e);
    }
    if (isLink) throw E.symlinkRefused(dir);
    const store = new NetworkStore(dir, join(dataDir, STATE_DIR, network));
    if (owner !== undefined) store.prepared(owner);
    try {
      store.lock = FileLock.acquire(join(dir, "lock"), lockTimeoutMs);
    } catch (e) {
      store.dropTmp();
      if (e instanceof CniError) throw e;
      throw ioError("open", join(dir, "lock"), e);
    }
    return store;
  }

  private get indexPath(): string {
    return join(this.stateDir, "index");
  }

  table(): LeaseTable {
    if (this.tbl) return this.tbl;
    const raw = readSmallFileBuffer(this.indexPath, MAX_INDEX_BYTES);
    const loaded = raw && LeaseTable.decode(raw);
    if (loaded && loaded.stamp === dirStamp(this.dir)) {
      this.tbl = loaded.table;
      return this.tbl;
    }
    return this.rescan();
  }

  rescan(): LeaseTable {
    this.tbl = LeaseTable.fromScan(this.scan());
    this.rebuilt = true;
    this.rebuilds++;
    return this.tbl;
  }

  scan(): NamedLease[] {
    let names: string[];
    try {
      names = readdirSync(this.dir).sort();
    } catch (e) {
      throw ioError("readdir", this.dir, e);
    }
    const out: NamedLease[] = [];
    for (const name of names) {
      const ip = leaseAddr(name);
      if (!ip) continue;
      const content = this.readLease(name);
      out.push({ name, ip, owner: content === null ? null : goTrim(content) });
    }
    return out;
  }

  readLease(name: string): string | null {
    return readSmallFile(join(this.dir, name), MAX_LEASE_BYTES);
  }

  /**
   * Our per-network state directory (index, rebuild count, temporary files). Temporary files of processes that
   * no longer exist are leftovers of a killed run and go; another live run's file (written before it took the
   * lock) stays.
   */
  private ensureStateDir(): void {
    if (this.stateReady) return;
    try {
      mkdirSync(this.stateDir, { recursive: true, mode: 0o700 });
      for (const leftover of readdirSync(this.stateDir)) {
        const pid = /^tmp\.(\d+)\./.exec(leftover)?.[1];
        if (pid && pid !== String(process.pid) && !existsSync(`/proc/${pid}`)) unlinkSync(join(this.stateDir, leftover));
      }
    } catch (e) {
      throw ioError("mkdir", this.stateDir, e);
    }
    this.stateReady = true;
  }

  private writeWhole(path: string, content: string | Buffer, flags: number, sync = true): void {
    const fd = openSync(path, flags | constants.O_WRONLY | constants.O_NOFOLLOW, LEASE_MODE);
    try {
      const buf = typeof content === "string" ? Buffer.from(content, "utf8") : content;
      let off = 0;
      while (off < buf.length) off += writeSync(fd, buf, off, buf.length - off);
      if (sync) fsyncSync(fd);
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

  /** Writes `pieces` to a new file with writev, without joining them into one buffer first. */
  private writePieces(path: string, pieces: Uint8Array[]): void {
    const fd = openSync(path, constants.O_CREAT | constants.O_EXCL | constants.O_WRONLY | constants.O_NOFOLLOW, LEASE_MODE);
    try {
      let rest = pieces.filter((p) => p.length > 0);
      while (rest.length > 0) {
        let n = writevSync(fd, rest);
        while (rest.length > 0 && n >= rest[0]!.length) n -= rest.shift()!.length;
        if (n > 0) rest[0] = rest[0]!.subarray(n);
      }
    } finally {
      closeSync(fd);
    }
  }

  /**
   * Replaces `target` whole: `content` goes to a temporary file in our state directory (fsynced when `sync`),
   * which is then renamed over it. Readers see the old file or the new one, never a mix; a symlink at `target` is
   * replaced, not followed. On failure the temporary file is removed and the error thrown as it came.
   */
  private replaceFile(target: string, content: string | Uint8Array[], sync: boolean): void {
    this.ensureStateDir();
    const tmp = this.tmpPath();
    try {
      if (typeof content === "string") this.writeWhole(tmp, content, constants.O_CREAT | constants.O_EXCL, sync);
      else this.writePieces(tmp, content);
      renameSync(tmp, target);
    } catch (e) {
      try {
        unlinkSync(tmp);
      } catch {
        /* gone */
      }
      throw e;
    }
  }

  private tmpPath(): string {
    return join(this.stateDir, `tmp.${process.pid}.${this.tmpCounter++}`);
  }

  /** One fsynced temporary file per owner, linked to as many addresses as the ADD reserves. */
  prepared(owner: string): string {
    if (this.tmp?.owner === owner) return this.tmp.path;
    this.dropTmp();
    this.ensureStateDir();
    const path = this.tmpPath();
    this.writeWhole(path, owner, constants.O_CREAT | constants.O_EXCL);
    this.tmp = { owner, path };
    return path;
  }

  dropTmp(): void {
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
    this.table().add(leaseAddr(name)!, goTrim(owner));
    return true;
  }

  remove(name: string, owner: string | null): boolean {
    return this.removeReporting(name, owner) === null; // host-local swallows release errors, to release all it can
  }

  /** Removes the lease `name`; null on success (or when it was already gone), else what went wrong. */
  removeReporting(name: string, owner: string | null): string | null {
    const path = join(this.dir, name);
    try {
      unlinkSync(path);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "ENOENT") return `remove ${path}: ${goErrText(e)}`;
    }
    this.changed = true;
    const ip = leaseAddr(name);
    if (ip) this.table().remove(ip, owner);
    return null;
  }

  replace(name: string, owner: string, previous: string | null): void {
    const target = join(this.dir, name);
    try {
      this.replaceFile(target, owner, true);
    } catch (e) {
      if (e instanceof CniError) throw e;
      throw ioError("rename", target, e);
    }
    this.changed = true;
    const ip = leaseAddr(name)!;
    this.table().remove(ip, previous);
    this.table().add(ip, goTrim(owner));
  }

  private get releasedPath(): string {
    return join(this.stateDir, "released");
  }

  releases(): Map<string, number> {
    this.released ??= readReleaseTimes(this.releasedPath);
    return this.released;
  }

  noteRelease(name: string): void {
    this.releases().set(name, Date.now());
    this.releasedDirty = true;
  }

  forgetRelease(name: string): void {
    // without a reuse delay release times are never consulted: no need to read the file on every ADD
    if (this.releaseWindowMs <= 0 && !this.released) return;
    if (this.releases().delete(name)) this.releasedDirty = true;
  }

  private writeReleases(): void {
    const now = Date.now();
    const kept = [...this.releases()].filter(([, at]) => now - at < this.releaseWindowMs);
    this.replaceFile(this.releasedPath, JSON.stringify(Object.fromEntries(kept)), false);
    this.releasedDirty = false;
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
    const target = join(this.dir, `last_reserved_ip.${rangeId}`);
    try {
      this.replaceFile(target, ip, false);
    } catch (e) {
      if (e instanceof CniError) throw e;
      if ((e as NodeJS.ErrnoException).code !== "EXDEV") throw ioError("rename", target, e);
      this.writeWhole(target, ip, constants.O_CREAT | constants.O_TRUNC);
    }
    this.changed = true;
  }

  /**
   * Makes every change durable (directory fsync) before a result is printed, then records the directory's state
   * in the index. Our own changes end with the directory's mtime set to a moment two seconds ago: any later
   * create or unlink by someone else (host-local, a person) stamps the current time, which cannot be that value,
   * so the index is never taken for current after a foreign change, however coarse the kernel's clock tick.
   */
  commit(): void {
    this.dropTmp();
    if (this.changed) {
      const fd = openSync(this.dir, constants.O_RDONLY | constants.O_DIRECTORY);
      try {
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
    }
    if (this.releasedDirty) {
      try {
        this.writeReleases();
      } catch {
        /* release times are a preference, not a promise: losing them loses one delay */
      }
    }
    if (!this.tbl || (!this.changed && !this.rebuilt)) return;
    try {
      if (this.changed) {
        const when = Date.now() / 1000 - 2 - Math.random() / 2;
        utimesSync(this.dir, when, when);
      }
      this.replaceFile(this.indexPath, this.tbl.encode(dirStamp(this.dir)), false);
      if (this.rebuilds > 0) this.countRebuilds();
    } catch {
      // the index is only a cache: without it the next invocation scans the lease files, as host-local does
      try {
        unlinkSync(this.indexPath);
      } catch {
        /* none */
      }
    }
    this.changed = false;
    this.rebuilt = false;
  }

  /** How often the index had to be rebuilt from the lease files, kept for `local-ipam metrics`. */
  private countRebuilds(): void {
    const path = join(this.stateDir, "rebuilds");
    this.replaceFile(path, String(readCounter(path) + this.rebuilds), false);
  }

  close(): void {
    this.dropTmp();
    this.lock?.release();
    this.lock = null;
  }
}
