// The platform seam on node:fs, for the unit tests that run under Node (vitest). Node has no *at calls: a path
// relative to a directory descriptor goes through /proc/self/fd/<dirfd>/, which the kernel resolves from that
// descriptor as openat(2) would. Node cannot name an anonymous O_TMPFILE file either, so O_TMPFILE is 0 here and
// the store takes its other path. flock(2) is flock(1) run on the shared open file description.
import { isUtf8 } from "node:buffer";
import { spawnSync } from "node:child_process";
import { randomFillSync } from "node:crypto";
import * as fs from "node:fs";
import { constants as osConstants } from "node:os";
import { v4IntervalsOf } from "../net/exclusions.js";
import { checksum32 } from "./checksum.js";
import { type Constants, type Platform, type Stat, SysError } from "./types.js";

const AT_FDCWD = -100;
const ETIMEDOUT = osConstants.errno.ETIMEDOUT;
const EWOULDBLOCK = osConstants.errno.EWOULDBLOCK;
const EINVAL = osConstants.errno.EINVAL;
const EOPNOTSUPP = osConstants.errno.EOPNOTSUPP;

/** The child of unixRequest: argv path, timeout; stdin the request; stdout the answer, or an errno name and 1. */
const UNIX_REQUEST = `
const net = require("node:net");
const [path, timeout] = process.argv.slice(1);
let input = "";
process.stdin.setEncoding("utf8").on("data", (d) => (input += d)).on("end", () => {
  const fail = (code) => { process.stdout.write(code); process.exit(1); };
  const timer = setTimeout(() => fail("ETIMEDOUT"), Number(timeout));
  const s = net.connect(path, () => s.write(input));
  let got = "";
  s.setEncoding("utf8");
  s.on("data", (d) => {
    got += d;
    const nl = got.indexOf("\\n");
    if (nl >= 0) { process.stdout.write(got.slice(0, nl)); process.exit(0); }
  });
  s.on("end", () => { clearTimeout(timer); process.stdout.write(got); process.exit(0); });
  s.on("error", (e) => fail(e.code || "EIO"));
});`;

const c: Constants = {
  O_RDONLY: fs.constants.O_RDONLY,
  O_WRONLY: fs.constants.O_WRONLY,
  O_RDWR: fs.constants.O_RDWR,
  O_CREAT: fs.constants.O_CREAT,
  O_EXCL: fs.constants.O_EXCL,
  O_TRUNC: fs.constants.O_TRUNC,
  O_APPEND: fs.constants.O_APPEND,
  O_NOFOLLOW: fs.constants.O_NOFOLLOW,
  O_NONBLOCK: fs.constants.O_NONBLOCK,
  O_DIRECTORY: fs.constants.O_DIRECTORY,
  O_CLOEXEC: 0o2000000, // Linux; node:fs does not export it, and libuv sets it on every open anyway
  O_TMPFILE: 0,
  AT_FDCWD,
  AT_EMPTY_PATH: 0x1000,
  AT_SYMLINK_NOFOLLOW: 0x100,
  AT_SYMLINK_FOLLOW: 0x400,
  AT_REMOVEDIR: 0x200,
  LOCK_EX: 2,
  LOCK_NB: 4,
  LOCK_UN: 8,
  S_IFMT: fs.constants.S_IFMT,
  S_IFREG: fs.constants.S_IFREG,
  S_IFDIR: fs.constants.S_IFDIR,
  S_IFLNK: fs.constants.S_IFLNK,
};

function at(dirfd: number, path: string): string {
  if (path.includes("\0")) throw new SysError(EINVAL, "open", path);
  if (dirfd === AT_FDCWD || path.startsWith("/")) return path;
  return `/proc/self/fd/${dirfd}/${path}`;
}

/** Runs `fn`, turning a Node error into SysError(errno, syscall, path). */
function sys<T>(syscall: string, path: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (typeof err.errno === "number") throw new SysError(Math.abs(err.errno), syscall, path);
    throw e;
  }
}

function toStat(s: fs.BigIntStats): Stat {
  return {
    dev: s.dev,
    ino: s.ino,
    mode: Number(s.mode),
    nlink: Number(s.nlink),
    uid: Number(s.uid),
    gid: Number(s.gid),
    size: Number(s.size),
    mtimeSec: Number(s.mtimeNs / 1_000_000_000n),
    mtimeNsec: Number(s.mtimeNs % 1_000_000_000n),
  };
}

const sleeper = new Int32Array(new SharedArrayBuffer(4));

/**
 * UTF-8 as Go (and the native module) decode it: each byte that starts no valid sequence is one U+FFFD. Node's
 * decoder (WHATWG) replaces a truncated sequence as a whole ("E2 82 41" gives one U+FFFD there, two here).
 */
function goUtf8Decode(b: Uint8Array): string {
  const buf = Buffer.from(b.buffer, b.byteOffset, b.length);
  if (isUtf8(buf)) return buf.toString("utf8");
  let out = "";
  for (let i = 0; i < b.length; ) {
    const c = b[i]!;
    let need = 0;
    let min = 0;
    if (c < 0x80) {
      out += String.fromCharCode(c);
      i++;
      continue;
    }
    if (c >= 0xc2 && c <= 0xdf) [need, min] = [1, 0x80];
    else if (c >= 0xe0 && c <= 0xef) [need, min] = [2, 0x800];
    else if (c >= 0xf0 && c <= 0xf4) [need, min] = [3, 0x10000];
    let cp = need === 1 ? c & 0x1f : need === 2 ? c & 0x0f : c & 0x07;
    let ok = need > 0 && i + need < b.length;
    for (let k = 1; ok && k <= need; k++) {
      const cc = b[i + k];
      if (cc === undefined || (cc & 0xc0) !== 0x80) ok = false;
      else cp = (cp << 6) | (cc & 0x3f);
    }
    if (ok && cp >= min && cp <= 0x10ffff && !(cp >= 0xd800 && cp <= 0xdfff)) {
      out += String.fromCodePoint(cp);
      i += need + 1;
    } else {
      out += "\ufffd";
      i++;
    }
  }
  return out;
}

export const nodePlatform: Platform = {
  name: "node",
  arch: process.arch === "arm64" ? "arm64" : "x86_64",
  c,
  openat: (dirfd, path, flags, mode) => sys("open", path, () => fs.openSync(at(dirfd, path), flags, mode)),
  close: (fd) => sys("close", "", () => fs.closeSync(fd)),
  read: (fd, buf, off, len) => sys("read", "", () => fs.readSync(fd, buf, off, len, null)),
  write: (fd, buf, off, len) => sys("write", "", () => fs.writeSync(fd, buf, off, len)),
  fsync: (fd) => sys("sync", "", () => fs.fsyncSync(fd)),
  fstat: (fd) => sys("stat", "", () => toStat(fs.fstatSync(fd, { bigint: true }))),
  fstatat: (dirfd, path, flags) =>
    sys("lstat", path, () => {
      const p = at(dirfd, path);
      return toStat(
        flags & c.AT_SYMLINK_NOFOLLOW ? fs.lstatSync(p, { bigint: true }) : fs.statSync(p, { bigint: true }),
      );
    }),
  linkat: (olddirfd, oldpath, newdirfd, newpath, flags) => {
    if (flags & c.AT_EMPTY_PATH) throw new SysError(EOPNOTSUPP, "link", newpath);
    sys("link", newpath, () => fs.linkSync(at(olddirfd, oldpath), at(newdirfd, newpath)));
  },
  renameat: (olddirfd, oldpath, newdirfd, newpath) =>
    sys("rename", newpath, () => fs.renameSync(at(olddirfd, oldpath), at(newdirfd, newpath))),
  unlinkat: (dirfd, path, flags) =>
    sys("remove", path, () =>
      flags & c.AT_REMOVEDIR ? fs.rmdirSync(at(dirfd, path)) : fs.unlinkSync(at(dirfd, path)),
    ),
  mkdirat: (dirfd, path, mode) => sys("mkdir", path, () => fs.mkdirSync(at(dirfd, path), { mode })),
  readdir: (dirfd) => sys("readdir", "", () => fs.readdirSync(`/proc/self/fd/${dirfd}`)),
  futimens: (fd, aSec, aNsec, mSec, mNsec) =>
    sys("chtimes", "", () => fs.futimesSync(fd, aSec + aNsec / 1e9, mSec + mNsec / 1e9)),
  fchmod: (fd, mode) => sys("chmod", "", () => fs.fchmodSync(fd, mode)),
  flock: (fd, op, timeoutMs) => {
    let args: string[];
    if (op === c.LOCK_UN) args = ["-u", "3"];
    else if (timeoutMs === 0) args = ["-x", "-n", "3"];
    else if (timeoutMs < 0) args = ["-x", "3"];
    else args = ["-x", "-w", String(timeoutMs / 1000), "3"];
    const r = spawnSync("flock", args, { stdio: ["ignore", "ignore", "ignore", fd] });
    if (r.status === 0) return;
    throw new SysError(timeoutMs === 0 ? EWOULDBLOCK : ETIMEDOUT, "flock", "");
  },
  getrandom: (buf, off, len) => {
    randomFillSync(buf, off, len);
  },
  geteuid: () => process.geteuid?.() ?? 0,
  getpid: () => process.pid,
  killSelf: (signal) => {
    process.kill(process.pid, signal);
  },
  realtimeMs: () => performance.timeOrigin + performance.now(),
  monotonicMs: () => performance.now(),
  sleepMs: (ms) => {
    Atomics.wait(sleeper, 0, 0, ms);
  },
  env: () => {
    const out: Record<string, string> = {};
    for (const [k, v] of Object.entries(process.env)) if (v !== undefined) out[k] = v;
    return out;
  },
  argv: () => process.argv.slice(1),
  exit: (status) => process.exit(status),
  utf8Encode: (text) => {
    const b = Buffer.from(text, "utf8");
    return new Uint8Array(b.buffer, b.byteOffset, b.length);
  },
  utf8Decode: (buf, off, len) => goUtf8Decode(buf.subarray(off, off + len)),
  hash32: (buf, off, len) => checksum32(buf, off, len),
  v4Intervals: (list) => v4IntervalsOf(list),
  // node:net has no synchronous socket: a child Node does the one request, as flock(1) does the lock above
  unixRequest: (path, request, timeoutMs) => {
    const r = spawnSync(process.execPath, ["-e", UNIX_REQUEST, path, String(timeoutMs)], {
      input: request,
      encoding: "utf8",
      timeout: timeoutMs + 5000,
    });
    const out = r.stdout ?? "";
    if (r.status === 0) return out;
    const errno = osConstants.errno[out.trim() as keyof typeof osConstants.errno];
    throw new SysError(errno ?? ETIMEDOUT, "connect", path);
  },
};
