// What every command does first: the config, and the network's store under its lock.
import type { PoolPolicy } from "../allocator/pool.js";
import type { Dns } from "../cni/result.js";
import type { IpamConfig } from "../config/ipam.js";
import { parseResolvConf } from "../config/resolvconf.js";
import { E, errnoText } from "../errors.js";
import { platform } from "../platform/index.js";
import { SysError } from "../platform/types.js";
import { bootTimeMs } from "../store/boot.js";
import { isDir, isReg, readFd } from "../store/files.js";
import { lockTimeoutMs } from "../store/lock.js";
import { NetworkStore, type StoreOptions } from "../store/network.js";

export function openStore(
  conf: IpamConfig,
  env: Record<string, string | undefined>,
  opts: Omit<StoreOptions, "lockTimeoutMs" | "reuseDelayMs">,
): NetworkStore | null {
  return NetworkStore.open(conf.dataDir, conf.name, {
    ...opts,
    lockTimeoutMs: lockTimeoutMs(env),
    reuseDelayMs: conf.reuseDelayMs,
  });
}

/** The pool policies of a config; the boot time is read only if a full set makes it matter. */
export function policyOf(conf: IpamConfig): PoolPolicy {
  let boot: number | null | undefined;
  return {
    reclaimBefore: () => {
      if (!conf.reclaimAfterReboot) return null;
      if (boot === undefined) boot = bootTimeMs();
      return boot;
    },
    reuseDelayMs: conf.reuseDelayMs,
    now: platform().realtimeMs(),
  };
}

/** resolvConf as host-local reads it (os.Open, then line by line); failures in Go's words, code 999. */
export function readResolvConf(path: string): Dns {
  const p = platform();
  let fd: number;
  try {
    fd = p.openat(p.c.AT_FDCWD, path, p.c.O_RDONLY | p.c.O_NONBLOCK | p.c.O_CLOEXEC, 0);
  } catch (e) {
    throw E.resolvConf(`open ${path}: ${errnoText(e instanceof SysError ? e.errno : 5)}`);
  }
  let text: string;
  try {
    const st = p.fstat(fd);
    if (isDir(st)) throw E.resolvConf(`read ${path}: is a directory`);
    if (!isReg(st)) throw E.resolvConf(`read ${path}: not a regular file`);
    const bytes = readFd(fd, st.size, 16 << 20);
    text = p.utf8Decode(bytes, 0, bytes.length);
  } catch (e) {
    if (e instanceof SysError) throw E.resolvConf(`read ${path}: ${errnoText(e.errno)}`);
    throw e;
  } finally {
    p.close(fd);
  }
  const dns = parseResolvConf(text);
  if ("error" in dns) throw E.resolvConf(dns.error);
  return dns;
}
