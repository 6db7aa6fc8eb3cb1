// flock(2) on <dir>/lock, the very lock host-local takes, so that both plugins can share one directory. The lock
// file is opened without following a symlink and without blocking, and must be a regular file: a FIFO planted
// there would otherwise hang the open before the wait bound even starts.
import { E, ERRNO } from "../errors.js";
import { platform } from "../platform/index.js";
import { type Dir, errnoOf, ioError, isReg } from "./files.js";

/** How long ADD/DEL/CHECK wait for another holder before giving up with error 11 (try again later). */
const DEFAULT_LOCK_TIMEOUT_MS = 30_000;

export function lockTimeoutMs(env: Record<string, string | undefined>): number {
  const v = Number(env.LOCAL_IPAM_LOCK_TIMEOUT_MS);
  return Number.isFinite(v) && v > 0 ? v : DEFAULT_LOCK_TIMEOUT_MS;
}

export class FileLock {
  private constructor(
    private fd: number,
    readonly path: string,
  ) {}

  /** Opens (creating, mode 0750 as host-local) and locks `dir`/lock, waiting at most `timeoutMs`. */
  static acquire(dir: Dir, timeoutMs: number): FileLock {
    const p = platform();
    const path = dir.child("lock");
    let fd: number;
    try {
      fd = p.openat(
        dir.fd,
        "lock",
        p.c.O_RDONLY | p.c.O_CREAT | p.c.O_NOFOLLOW | p.c.O_NONBLOCK | p.c.O_CLOEXEC,
        0o750,
      );
    } catch (e) {
      if (errnoOf(e) === ERRNO.ELOOP) throw E.notRegular(path);
      throw ioError(e, path);
    }
    try {
      if (!isReg(p.fstat(fd))) throw E.notRegular(path);
      p.flock(fd, p.c.LOCK_EX, timeoutMs);
    } catch (e) {
      p.close(fd);
      if (errnoOf(e) === ERRNO.ETIMEDOUT || errnoOf(e) === ERRNO.EAGAIN) throw E.lockTimeout(path, timeoutMs);
      throw ioError(e, path);
    }
    return new FileLock(fd, path);
  }

  release(): void {
    if (this.fd < 0) return;
    const p = platform();
    try {
      p.flock(this.fd, p.c.LOCK_UN, 0);
    } finally {
      p.close(this.fd); // closing drops the lock in any case
      this.fd = -1;
    }
  }
}
