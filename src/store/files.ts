// File primitives of the store, each whole-or-nothing, on the platform seam. A directory is opened once (never
// through a symlink) and every file is reached relative to its descriptor, so a directory renamed or swapped by
// someone else midway is never followed. Nothing here knows about leases: that is network.ts.
import { E, ERRNO } from "../errors.js";
import { platform } from "../platform/index.js";
import { type Stat, SysError } from "../platform/types.js";

/** Temporary files start with this; they exist only while their writer holds the network's lock. */
export const TMP_PREFIX = ".local-ipam-tmp.";

/** filepath.Join of a directory and a name, for the paths we print (node:path is not in the native executable). */
export function join(dir: string, name: string): string {
  return dir.endsWith("/") ? dir + name : `${dir}/${name}`;
}

/** A SysError as a CNI error naming the file (fd-based calls do not know it). */
export function ioError(e: unknown, path: string): unknown {
  if (e instanceof SysError)
    return E.io({ errno: e.errno, syscall: e.syscall, path: e.path?.startsWith("/") ? e.path : path });
  return e;
}

export function errnoOf(e: unknown): number {
  return e instanceof SysError ? e.errno : 0;
}

export function isReg(st: Stat): boolean {
  return (st.mode & platform().c.S_IFMT) === platform().c.S_IFREG;
}

export function isDir(st: Stat): boolean {
  return (st.mode & platform().c.S_IFMT) === platform().c.S_IFDIR;
}

/** An open directory: `fd` for the *at calls, `path` for messages. */
export class Dir {
  private constructor(
    readonly fd: number,
    readonly path: string,
  ) {}

  /**
   * Opens `name` inside `parent` (or the absolute `name` when parent is null) as a directory, without following a
   * symlink at its last component. `create` makes it (with `mode`) when missing. Null when missing and not created.
   */
  static open(
    parent: Dir | null,
    name: string,
    create: { mode: number } | null = null,
    followLink = false,
  ): Dir | null {
    const p = platform();
    const dirfd = parent ? parent.fd : p.c.AT_FDCWD;
    const path = parent ? join(parent.path, name) : name;
    const flags = p.c.O_RDONLY | p.c.O_DIRECTORY | p.c.O_CLOEXEC | (followLink ? 0 : p.c.O_NOFOLLOW);
    for (let attempt = 0; ; attempt++) {
      try {
        return new Dir(p.openat(dirfd, name, flags, 0), path);
      } catch (e) {
        const errno = errnoOf(e);
        if ((errno === ERRNO.ELOOP || errno === ERRNO.ENOTDIR) && isSymlink(dirfd, name)) throw E.symlinkRefused(path);
        if (errno !== ERRNO.ENOENT || !create || attempt > 0) {
          if (errno === ERRNO.ENOENT && !create) return null;
          throw ioError(e, path);
        }
      }
      try {
        p.mkdirat(dirfd, name, create.mode);
      } catch (e) {
        if (errnoOf(e) !== ERRNO.EEXIST) throw ioError(e, path); // made by another process meanwhile: fine
      }
    }
  }

  /**
   * Opens `path`, creating it and its missing parents with `mode` as Go's os.MkdirAll does (so a failure reads as
   * host-local's: "mkdir <the first directory that could not be made>: ..."); symlinks on the way are followed.
   */
  static openPath(path: string, mode: number): Dir {
    try {
      const existing = Dir.open(null, path, null, true);
      if (existing) return existing;
    } catch {
      // MkdirAll reports the failing mkdir below, not this open
    }
    const trimmed = path.replace(/\/+$/, "");
    const slash = trimmed.lastIndexOf("/");
    const parentPath = slash < 0 ? "." : slash === 0 ? "/" : trimmed.slice(0, slash);
    const parent = slash < 0 ? Dir.open(null, ".", null, true)! : Dir.openPath(parentPath, mode);
    try {
      const p = platform();
      const name = trimmed.slice(slash + 1);
      try {
        p.mkdirat(parent.fd, name, mode);
      } catch (e) {
        if (errnoOf(e) !== ERRNO.EEXIST)
          throw E.io({ errno: errnoOf(e) || ERRNO.EIO, syscall: "mkdir", path: trimmed });
      }
      let made: Dir | null;
      try {
        made = Dir.open(parent, name, null, true);
      } catch {
        // something that is not a directory is in the way: MkdirAll says so as a mkdir error
        throw E.io({ errno: ERRNO.ENOTDIR, syscall: "mkdir", path: trimmed });
      }
      if (!made) throw E.io({ errno: ERRNO.ENOENT, syscall: "mkdir", path: trimmed });
      return made;
    } finally {
      parent.close();
    }
  }

  /**
   * Refuses a directory that someone other than us could change: not owned by our user, or writable by group or
   * others. Our own state lives only in such checked directories (a neighbour could otherwise swap our files).
   */
  requireSafe(): this {
    const st = this.stat();
    const euid = platform().geteuid();
    if (st.uid !== euid) throw E.unsafeDir(this.path, `owned by uid ${st.uid}, not ${euid}`);
    if (st.mode & 0o022)
      throw E.unsafeDir(
        this.path,
        `writable by ${st.mode & 0o020 ? "group" : "others"} (mode ${(st.mode & 0o7777).toString(8).padStart(4, "0")})`,
      );
    return this;
  }

  stat(): Stat {
    try {
      return platform().fstat(this.fd);
    } catch (e) {
      throw ioError(e, this.path);
    }
  }

  names(): string[] {
    try {
      return platform().readdir(this.fd);
    } catch (e) {
      throw ioError(e, this.path);
    }
  }

  /** Makes the directory's entries durable (creates, links, renames, removes). */
  sync(): void {
    try {
      platform().fsync(this.fd);
    } catch (e) {
      throw ioError(e, this.path);
    }
  }

  close(): void {
    try {
      platform().close(this.fd);
    } catch {
      /* closing a directory cannot lose data */
    }
  }

  child(name: string): string {
    return join(this.path, name);
  }
}

function isSymlink(dirfd: number, name: string): boolean {
  const p = platform();
  try {
    return (p.fstatat(dirfd, name, p.c.AT_SYMLINK_NOFOLLOW).mode & p.c.S_IFMT) === p.c.S_IFLNK;
  } catch {
    return false;
  }
}

/**
 * Reads `fd` to its end, or up to `limit` bytes; `sizeHint` sizes the first buffer (files in /proc say 0). With
 * `exact`, a file that returned exactly its size is taken as whole without a read to see its end (files we read
 * under the network's lock, which nobody changes meanwhile).
 */
export function readFd(fd: number, sizeHint: number, limit: number, exact = false): Uint8Array {
  const p = platform();
  let buf = new Uint8Array(Math.min(limit, Math.max(sizeHint + 1, 256)));
  let len = 0;
  for (;;) {
    if (exact && sizeHint > 0 && len === sizeHint) break;
    if (len === buf.length) {
      if (buf.length >= limit) break;
      const bigger = new Uint8Array(Math.min(limit, buf.length * 4));
      bigger.set(buf);
      buf = bigger;
    }
    const n = p.read(fd, buf, len, buf.length - len);
    if (n === 0) break;
    len += n;
  }
  return buf.subarray(0, len);
}

interface FileRead {
  bytes: Uint8Array;
  stat: Stat;
}

/**
 * A regular file's content and status, read without following a symlink and without blocking on a FIFO; null
 * when there is no such name or it is not a regular file. Other errors throw, naming the path.
 */
export function readFileAt(dir: Dir | null, name: string, limit: number, exact = false): FileRead | null {
  const p = platform();
  const path = () => (dir ? dir.child(name) : name);
  let fd: number;
  try {
    fd = p.openat(dir ? dir.fd : p.c.AT_FDCWD, name, p.c.O_RDONLY | p.c.O_NOFOLLOW | p.c.O_NONBLOCK | p.c.O_CLOEXEC, 0);
  } catch (e) {
    const errno = errnoOf(e);
    if (errno === ERRNO.ENOENT || errno === ERRNO.ELOOP || errno === ERRNO.ENOTDIR) return null;
    throw ioError(e, path());
  }
  try {
    const stat = p.fstat(fd);
    if (!isReg(stat)) return null;
    return { bytes: readFd(fd, stat.size, limit, exact), stat };
  } catch (e) {
    throw ioError(e, path());
  } finally {
    p.close(fd);
  }
}

export function readTextAt(dir: Dir | null, name: string, limit: number): string | null {
  const r = readFileAt(dir, name, limit);
  return r ? platform().utf8Decode(r.bytes, 0, r.bytes.length) : null;
}

/** Writes all of `bytes` to `fd`. */
export function writeFd(fd: number, bytes: Uint8Array): void {
  const p = platform();
  let off = 0;
  while (off < bytes.length) off += p.write(fd, bytes, off, bytes.length - off);
}

/** `bytes` random bytes from the kernel, as hex: names nobody can predict. */
export function randomHex(bytes: number): string {
  const b = new Uint8Array(bytes);
  platform().getrandom(b, 0, bytes);
  let s = "";
  for (const x of b) s += (x < 16 ? "0" : "") + x.toString(16);
  return s;
}

function randomName(): string {
  return TMP_PREFIX + randomHex(12);
}

/**
 * Creates `name` in `dir` holding `bytes`, only if no such name exists (false then): O_EXCL, never through a
 * symlink. With `sync` the content is on disk before this returns. A failed write removes the file again.
 */
export function createExclusive(dir: Dir, name: string, bytes: Uint8Array, mode: number, sync: boolean): boolean {
  const p = platform();
  let fd: number;
  try {
    fd = p.openat(dir.fd, name, p.c.O_WRONLY | p.c.O_CREAT | p.c.O_EXCL | p.c.O_NOFOLLOW | p.c.O_CLOEXEC, mode);
  } catch (e) {
    if (errnoOf(e) === ERRNO.EEXIST) return false;
    throw ioError(e, dir.child(name));
  }
  try {
    p.fchmod(fd, mode); // the umask must not widen or narrow what we promise
    writeFd(fd, bytes);
    if (sync) p.fsync(fd);
  } catch (e) {
    p.close(fd);
    removeQuietly(dir, name);
    throw ioError(e, dir.child(name));
  }
  p.close(fd);
  return true;
}

/**
 * Replaces `name` in `dir` whole: the content goes to a temporary file with an unpredictable name in the same
 * directory (so the rename never crosses a file system), fsynced when `sync`, then renamed over `name`. Readers see
 * the old file or the new one; a symlink at `name` is replaced, not followed. Callers hold the network's lock,
 * which is what makes a temporary file left by a killed writer provably stale (see removeLeftovers).
 */
export function replaceFile(
  dir: Dir,
  name: string,
  content: Uint8Array | Uint8Array[],
  mode: number,
  sync: boolean,
): void {
  const p = platform();
  const pieces = content instanceof Uint8Array ? [content] : content;
  for (;;) {
    const tmp = randomName();
    let fd: number;
    try {
      fd = p.openat(dir.fd, tmp, p.c.O_WRONLY | p.c.O_CREAT | p.c.O_EXCL | p.c.O_NOFOLLOW | p.c.O_CLOEXEC, mode);
    } catch (e) {
      if (errnoOf(e) === ERRNO.EEXIST) continue; // 96 random bits met an old name: draw again
      throw ioError(e, dir.child(name));
    }
    try {
      p.fchmod(fd, mode);
      for (const piece of pieces) writeFd(fd, piece);
      if (sync) p.fsync(fd);
      p.close(fd);
      fd = -1;
      p.renameat(dir.fd, tmp, dir.fd, name);
    } catch (e) {
      if (fd >= 0) p.close(fd);
      removeQuietly(dir, tmp);
      throw ioError(e, dir.child(name));
    }
    return;
  }
}

/** Removes `name`; true when it is gone (removed now or already absent). */
export function removeAt(dir: Dir, name: string): true {
  try {
    platform().unlinkat(dir.fd, name, 0);
  } catch (e) {
    if (errnoOf(e) !== ERRNO.ENOENT) throw ioError(e, dir.child(name));
  }
  return true;
}

export function removeQuietly(dir: Dir, name: string): void {
  try {
    platform().unlinkat(dir.fd, name, 0);
  } catch {
    /* gone already, or not ours to insist on */
  }
}

/**
 * Removes temporary files of writers that were killed midway. Only called while holding the network's lock:
 * every temporary file is created and renamed by a holder of that lock, so one still present now belongs to a
 * holder that died. Another process removing the same file first is fine.
 */
export function removeLeftovers(dir: Dir, names: readonly string[]): number {
  let removed = 0;
  for (const name of names) {
    if (!name.startsWith(TMP_PREFIX)) continue;
    removeQuietly(dir, name);
    removed++;
  }
  return removed;
}

/**
 * Proves that `dir` takes new files: a small file written and fsynced, then gone. An anonymous O_TMPFILE file
 * where the platform has it (the directory itself does not change, so the lease index stays current), else a
 * named temporary file (true: the directory changed). A read-only or full file system throws here.
 */
export function probeWritable(dir: Dir): boolean {
  const p = platform();
  const bytes = p.utf8Encode("local-ipam write probe\n");
  if (p.c.O_TMPFILE !== 0) {
    let fd = -1;
    try {
      fd = p.openat(dir.fd, ".", p.c.O_TMPFILE | p.c.O_WRONLY | p.c.O_CLOEXEC, 0o600);
    } catch (e) {
      const errno = errnoOf(e);
      if (errno !== ERRNO.EOPNOTSUPP && errno !== ERRNO.EISDIR && errno !== ERRNO.EINVAL) throw ioError(e, dir.path);
    }
    if (fd >= 0) {
      try {
        writeFd(fd, bytes);
        p.fsync(fd);
      } catch (e) {
        throw ioError(e, dir.path);
      } finally {
        p.close(fd);
      }
      return false;
    }
  }
  const name = randomName();
  createExclusive(dir, name, bytes, 0o600, true);
  removeQuietly(dir, name);
  return true;
}
