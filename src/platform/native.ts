// The platform seam on the C module of the shipped executable (native/module.c), which the host installs as the
// global `__sys` before it runs this bundle. Its functions return -errno on failure; here that becomes SysError.
import type { Constants, Platform, Stat } from "./types.js";
import { SysError } from "./types.js";

/** The C module as the host installs it: numbers are -errno on failure. */
interface NativeSys {
  constants: Constants & { errno: Record<string, number>; SIGKILL: number; SIGTERM: number; arch: string };
  openat(dirfd: number, path: string, flags: number, mode: number): number;
  close(fd: number): number;
  read(fd: number, buf: Uint8Array, off: number, len: number): number;
  write(fd: number, buf: Uint8Array, off: number, len: number): number;
  fsync(fd: number): number;
  fstat(fd: number): NativeStat | number;
  fstatat(dirfd: number, path: string, flags: number): NativeStat | number;
  linkat(olddirfd: number, oldpath: string, newdirfd: number, newpath: string, flags: number): number;
  renameat(olddirfd: number, oldpath: string, newdirfd: number, newpath: string): number;
  unlinkat(dirfd: number, path: string, flags: number): number;
  mkdirat(dirfd: number, path: string, mode: number): number;
  readdir(dirfd: number): string[] | number;
  futimens(fd: number, aSec: number, aNsec: number, mSec: number, mNsec: number): number;
  fchmod(fd: number, mode: number): number;
  flock(fd: number, op: number, timeoutMs: number): number;
  getrandom(buf: Uint8Array, off: number, len: number): number;
  geteuid(): number;
  getpid(): number;
  killSelf(signal: number): number;
  realtimeMs(): number;
  monotonicMs(): number;
  sleepMs(ms: number): void;
  env(): Record<string, string>;
  argv(): string[];
  exit(status: number): never;
  utf8Encode(text: string): Uint8Array;
  utf8Decode(buf: Uint8Array, off: number, len: number): string;
  hash32(buf: Uint8Array, off: number, len: number): number;
  v4Intervals(list: readonly unknown[]): Uint8Array | number;
  unixRequest(path: string, request: string, timeoutMs: number): string | number;
}
type NativeStat = [bigint, bigint, number, number, number, number, number, number, number];

declare const __sys: NativeSys;

function check(r: number, syscall: string, path = ""): number {
  if (r < 0) throw new SysError(-r, syscall, path);
  return r;
}

function stat(r: NativeStat | number, syscall: string, path = ""): Stat {
  if (typeof r === "number") throw new SysError(-r, syscall, path);
  const [dev, ino, mode, nlink, uid, gid, size, mtimeSec, mtimeNsec] = r;
  return { dev, ino, mode, nlink, uid, gid, size, mtimeSec, mtimeNsec };
}

export function nativePlatform(): Platform {
  const s = __sys;
  return {
    name: "native",
    arch: s.constants.arch,
    c: s.constants,
    openat: (dirfd, path, flags, mode) => check(s.openat(dirfd, path, flags, mode), "open", path),
    close: (fd) => void check(s.close(fd), "close"),
    read: (fd, buf, off, len) => check(s.read(fd, buf, off, len), "read"),
    write: (fd, buf, off, len) => check(s.write(fd, buf, off, len), "write"),
    fsync: (fd) => void check(s.fsync(fd), "sync"),
    fstat: (fd) => stat(s.fstat(fd), "stat"),
    fstatat: (dirfd, path, flags) => stat(s.fstatat(dirfd, path, flags), "lstat", path),
    linkat: (od, op, nd, np, flags) => void check(s.linkat(od, op, nd, np, flags), "link", np),
    renameat: (od, op, nd, np) => void check(s.renameat(od, op, nd, np), "rename", np),
    unlinkat: (dirfd, path, flags) => void check(s.unlinkat(dirfd, path, flags), "remove", path),
    mkdirat: (dirfd, path, mode) => void check(s.mkdirat(dirfd, path, mode), "mkdir", path),
    readdir: (dirfd) => {
      const r = s.readdir(dirfd);
      if (typeof r === "number") throw new SysError(-r, "readdir");
      return r;
    },
    futimens: (fd, aSec, aNsec, mSec, mNsec) => void check(s.futimens(fd, aSec, aNsec, mSec, mNsec), "chtimes"),
    fchmod: (fd, mode) => void check(s.fchmod(fd, mode), "chmod"),
    flock: (fd, op, timeoutMs) => void check(s.flock(fd, op, timeoutMs), "flock"),
    getrandom: (buf, off, len) => void check(s.getrandom(buf, off, len), "getrandom"),
    geteuid: () => s.geteuid(),
    getpid: () => s.getpid(),
    killSelf: (signal) => void check(s.killSelf(signal), "kill"),
    realtimeMs: () => s.realtimeMs(),
    monotonicMs: () => s.monotonicMs(),
    sleepMs: (ms) => s.sleepMs(ms),
    env: () => s.env(),
    argv: () => s.argv(),
    exit: (status) => s.exit(status),
    utf8Encode: (text) => s.utf8Encode(text),
    utf8Decode: (buf, off, len) => s.utf8Decode(buf, off, len),
    hash32: (buf, off, len) => s.hash32(buf, off, len),
    unixRequest: (path, request, timeoutMs) => {
      const r = s.unixRequest(path, request, timeoutMs);
      if (typeof r === "number") throw new SysError(-r, "connect", path);
      return r;
    },
    v4Intervals: (list) => {
      const r = s.v4Intervals(list);
      if (typeof r === "number") throw new SysError(-r, "v4Intervals");
      const words = new Uint32Array(r.buffer, r.byteOffset, r.byteLength / 4);
      const m = words[0]!;
      return { bounds: words.subarray(1, 1 + 2 * m), skipped: Array.from(words.subarray(1 + 2 * m)) };
    },
  };
}
