// The platform seam: every system call local-ipam makes goes through one of these functions. Two implementations:
// native.ts binds the C module of the shipped executable (native/), node.ts uses node:fs for tests under Node.
// Everything above this seam is the same code on both.
//
// Conventions, shared by both implementations and by the C module:
// - A call that fails throws SysError (errno, the syscall's name, the path when there is one). The C functions
//   themselves return -errno and native.ts turns that into SysError, so the C side never builds JS errors.
// - Paths are relative to a directory file descriptor (`dirfd`, or AT_FDCWD): callers open a directory once with
//   O_DIRECTORY|O_NOFOLLOW and work inside it, so a directory swapped by someone else mid-operation is never
//   followed. A path containing a NUL byte fails with EINVAL (it would otherwise be cut short in C).
// - Constants (O_*, AT_*, LOCK_*) come from the platform: their values differ between x86-64 and arm64.

export interface Stat {
  /** device and inode: 64-bit values, which do not fit a JS number */
  dev: bigint;
  ino: bigint;
  /** st_mode: type bits and permissions */
  mode: number;
  nlink: number;
  uid: number;
  gid: number;
  size: number;
  mtimeSec: number;
  mtimeNsec: number;
}

export interface Constants {
  O_RDONLY: number;
  O_WRONLY: number;
  O_RDWR: number;
  O_CREAT: number;
  O_EXCL: number;
  O_TRUNC: number;
  O_APPEND: number;
  O_NOFOLLOW: number;
  O_NONBLOCK: number;
  O_DIRECTORY: number;
  O_CLOEXEC: number;
  /** 0 where the platform cannot create anonymous files that linkat can name later */
  O_TMPFILE: number;
  AT_FDCWD: number;
  AT_EMPTY_PATH: number;
  AT_SYMLINK_NOFOLLOW: number;
  AT_SYMLINK_FOLLOW: number;
  AT_REMOVEDIR: number;
  LOCK_EX: number;
  LOCK_NB: number;
  LOCK_UN: number;
  S_IFMT: number;
  S_IFREG: number;
  S_IFDIR: number;
  S_IFLNK: number;
}

export interface Platform {
  readonly name: "native" | "node";
  /** "x86_64" or "arm64": Go's errno texts differ slightly between the two */
  readonly arch: string;
  readonly c: Constants;

  openat(dirfd: number, path: string, flags: number, mode: number): number;
  close(fd: number): void;
  /** Bytes read into buf[off, off+len); 0 at end of file. EAGAIN/EINTR are thrown like any errno. */
  read(fd: number, buf: Uint8Array, off: number, len: number): number;
  /** Bytes written from buf[off, off+len). */
  write(fd: number, buf: Uint8Array, off: number, len: number): number;
  fsync(fd: number): void;
  fstat(fd: number): Stat;
  /** AT_SYMLINK_NOFOLLOW in flags for lstat. */
  fstatat(dirfd: number, path: string, flags: number): Stat;
  linkat(olddirfd: number, oldpath: string, newdirfd: number, newpath: string, flags: number): void;
  renameat(olddirfd: number, oldpath: string, newdirfd: number, newpath: string): void;
  /** AT_REMOVEDIR in flags for rmdir. */
  unlinkat(dirfd: number, path: string, flags: number): void;
  mkdirat(dirfd: number, path: string, mode: number): void;
  /** The names in the directory open at dirfd, "." and ".." left out, in no particular order; dirfd stays open. */
  readdir(dirfd: number): string[];
  /** Sets the access and modification times of the open file (ns since the epoch as sec + nsec). */
  futimens(fd: number, atimeSec: number, atimeNsec: number, mtimeSec: number, mtimeNsec: number): void;
  fchmod(fd: number, mode: number): void;
  /**
   * flock(2) with a bound: timeoutMs 0 = LOCK_NB, < 0 = wait forever, > 0 = wait at most that long, then
   * ETIMEDOUT. `op` is LOCK_EX or LOCK_UN (LOCK_NB is implied by timeoutMs 0).
   */
  flock(fd: number, op: number, timeoutMs: number): void;
  /** Fills buf[off, off+len) from the kernel's random source. */
  getrandom(buf: Uint8Array, off: number, len: number): void;
  geteuid(): number;
  getpid(): number;
  /** Sends a signal to this process (the fault points of test builds). */
  killSelf(signal: number): void;

  /** Wall-clock time, ms since the epoch (fractional). */
  realtimeMs(): number;
  /** A clock that never jumps, ms (fractional). */
  monotonicMs(): number;
  sleepMs(ms: number): void;

  /** The process environment and arguments (argv[0] is the program). */
  env(): Record<string, string>;
  argv(): string[];
  /** Ends the process now with `status`; output already written stays written. */
  exit(status: number): never;

  /** UTF-8 text: invalid sequences decode to U+FFFD, as Go's string conversions do. */
  utf8Encode(text: string): Uint8Array;
  utf8Decode(buf: Uint8Array, off: number, len: number): string;
  /** The index file's checksum of buf[off, off+len) (see checksum.ts), identical on both implementations. */
  hash32(buf: Uint8Array, off: number, len: number): number;
  /**
   * The plain IPv4 entries of an exclude list as sorted, merged bounds (from, to, ...), and the indices of the
   * other entries; identical on both implementations (v4IntervalsOf in net/exclusions.ts is the reference).
   */
  v4Intervals(list: readonly unknown[]): { bounds: Uint32Array; skipped: number[] };
  /**
   * One request on a unix stream socket (the node agent's): connects, sends `request`, and returns the answer up
   * to its first newline (or the end of the stream), all within `timeoutMs`. SysError with ENOENT or ECONNREFUSED
   * when nobody listens, ETIMEDOUT when no whole answer came in time.
   */
  unixRequest(path: string, request: string, timeoutMs: number): string;
}

/** errno, with the name of the call and the path it was made on, as Go's os.PathError carries them. */
export class SysError extends Error {
  constructor(
    readonly errno: number,
    readonly syscall: string,
    readonly path: string = "",
  ) {
    super(`${syscall} ${path}: errno ${errno}`);
  }
}
