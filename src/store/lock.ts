// flock(2) on <dir>/lock, the very lock host-local takes, so that both plugins can share one directory.
// In the compiled binary (Bun) through bun:ffi; under Node (unit tests) through flock(1) on the shared fd.
import { closeSync, constants, openSync } from "node:fs";
import { E } from "../cni/errors.js";

const LOCK_EX = 2;
const LOCK_NB = 4;
const LOCK_UN = 8;
const EINTR = 4;
const EWOULDBLOCK = 11;

/** How long ADD/DEL/CHECK wait for another holder before giving up with error 11 (try again later). */
export const DEFAULT_LOCK_TIMEOUT_MS = 30_000;

export function lockTimeoutMs(env: NodeJS.ProcessEnv): number {
  const v = Number(env.LOCAL_IPAM_LOCK_TIMEOUT_MS);
  return Number.isFinite(v) && v > 0 ? v : DEFAULT_LOCK_TIMEOUT_MS;
}

export function sleepMs(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

interface Flock {
  /** 0 on success, else errno. */
  flock(fd: number, op: number): number;
}

let impl: Flock | undefined;

function bunFlock(): Flock {
  const ffi = require("bun:ffi");
  const libc = ffi.dlopen("libc.so.6", {
    flock: { args: ["i32", "i32"], returns: "i32" },
    __errno_location: { args: [], returns: "ptr" },
  });
  return {
    flock(fd, op) {
      if (libc.symbols.flock(fd, op) === 0) return 0;
      return ffi.read.i32(libc.symbols.__errno_location(), 0) as number;
    },
  };
}

function nodeFlock(): Flock {
  // loaded only under Node: child_process costs milliseconds of start-up in the compiled binary
  const { spawnSync } = require("node:child_process") as typeof import("node:child_process");
  return {
    flock(fd, op) {
      const args = op & LOCK_UN ? ["-u", "3"] : ["-x", "-n", "3"];
      const r = spawnSync("flock", args, { stdio: ["ignore", "ignore", "ignore", fd] });
      return r.status === 0 ? 0 : EWOULDBLOCK;
    },
  };
}

function flockImpl(): Flock {
  impl ??= typeof (globalThis as { Bun?: unknown }).Bun !== "undefined" ? bunFlock() : nodeFlock();
  return impl;
}

export class FileLock {
  private constructor(
    private readonly fd: number,
    readonly path: string,
  ) {}

  /** Opens (creating, mode 0750 as host-local) and locks `path`, polling up to `timeoutMs`. */
  static acquire(path: string, timeoutMs: number): FileLock {
    const fd = openSync(path, constants.O_RDONLY | constants.O_CREAT | constants.O_NOFOLLOW, 0o750);
    const f = flockImpl();
    const deadline = Date.now() + timeoutMs;
    let pause = 0.05;
    for (;;) {
      const err = f.flock(fd, LOCK_EX | LOCK_NB);
      if (err === 0) return new FileLock(fd, path);
      if (err !== EWOULDBLOCK && err !== EINTR) {
        closeSync(fd);
        throw E.io("flock", path, `errno ${err}`);
      }
      if (Date.now() >= deadline) {
        closeSync(fd);
        throw E.lockTimeout(path, timeoutMs);
      }
      sleepMs(pause);
      pause = Math.min(pause * 2, 2); // short at first: the usual holder is done within a millisecond or two
    }
  }

  release(): void {
    flockImpl().flock(this.fd, LOCK_UN);
    closeSync(this.fd);
  }
}
