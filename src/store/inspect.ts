// Read-only looks at a data dir for the operator CLI: which networks exist, and their leases with owners and
// ages, served as the same LeaseFacts the allocator reads, so that `usage` and `metrics` count exactly what ADD and
// STATUS count. Reading needs no lock (a lease file appears whole or not at all); changing does (network.ts).
import type { LeaseFacts } from "../allocator/store.js";
import { goTrim } from "../go/strings.js";
import { type Addr, formatIP } from "../net/ip.js";
import { platform } from "../platform/index.js";
import { Dir, isDir, readFileAt } from "./files.js";
import { LeaseIndex } from "./lease-index.js";
import { leaseAddr, MAX_LEASE_BYTES } from "./network.js";
import { REBUILDS, readCounter, readReleaseTimes, readStaticLeases, STATE_DIR } from "./state.js";

export interface LeaseInfo {
  name: string;
  ip: Addr;
  /** container ID ("" when unreadable) */
  containerId: string;
  /** interface name, or "" for a legacy id-only lease */
  ifname: string;
  /** the trimmed owner text, or null when the lease is not a readable regular file */
  owner: string | null;
  mtimeMs: number;
}

export interface NetworkView {
  leases: LeaseInfo[];
  facts: LeaseFacts;
  /** addresses with a remembered release time (for counting cooling ones) */
  released: Addr[];
  indexRebuilds: number;
}

/** Network directories under `dataDir` (our own state directory and hidden names excepted), sorted. */
export function listNetworks(dataDir: string): string[] {
  const dir = Dir.open(null, dataDir, null, true);
  if (!dir) return [];
  try {
    const p = platform();
    return dir
      .names()
      .filter((name) => {
        if (name.startsWith(".")) return false;
        try {
          return isDir(p.fstatat(dir.fd, name, p.c.AT_SYMLINK_NOFOLLOW));
        } catch {
          return false;
        }
      })
      .sort();
  } finally {
    dir.close();
  }
}

function readLeases(net: Dir): LeaseInfo[] {
  const p = platform();
  const out: LeaseInfo[] = [];
  for (const name of net.names().sort()) {
    const ip = leaseAddr(name);
    if (!ip) continue;
    let r: ReturnType<typeof readFileAt>;
    try {
      r = readFileAt(net, name, MAX_LEASE_BYTES);
    } catch {
      continue; // gone or unreadable since the listing
    }
    let mtimeMs = 0;
    if (r) mtimeMs = r.stat.mtimeSec * 1000 + r.stat.mtimeNsec / 1e6;
    else {
      try {
        const st = p.fstatat(net.fd, name, p.c.AT_SYMLINK_NOFOLLOW);
        mtimeMs = st.mtimeSec * 1000 + st.mtimeNsec / 1e6;
      } catch {
        continue;
      }
    }
    const owner = r ? goTrim(p.utf8Decode(r.bytes, 0, r.bytes.length)) : null;
    const [containerId = "", ifname = ""] = owner === null ? [] : owner.split("\r\n");
    out.push({ name, ip, containerId, ifname, owner, mtimeMs });
  }
  return out;
}

/** The leases of one network and what local-ipam remembers about them; empty when the network does not exist. */
export function inspectNetwork(dataDir: string, network: string): NetworkView {
  const data = Dir.open(null, dataDir, null, true);
  const net = data ? Dir.open(data, network) : null;
  const state = data ? Dir.open(data, STATE_DIR) : null;
  const own = state ? Dir.open(state, network) : null;
  try {
    const leases = net ? readLeases(net) : [];
    const released = readReleaseTimes(own);
    const statics = readStaticLeases(own);
    const byName = new Map(leases.map((l) => [l.name, l]));
    const index = LeaseIndex.fromLeases(leases);
    const facts: LeaseFacts = {
      nextUnused: (from, to) => index.nextUnused(from, to),
      countLeased: (from, to) => index.countIn(from, to),
      forEachLeased: (from, to, fn) => index.forEachIn(from, to, fn),
      leaseWrittenMs: (ip) => {
        const l = byName.get(formatIP(ip));
        return l && l.owner !== null ? l.mtimeMs : null;
      },
      isStatic: (ip) => {
        const l = byName.get(formatIP(ip));
        return !!l && l.owner !== null && statics.get(l.name) === l.owner;
      },
      releasedAt: (ip) => released.get(formatIP(ip)),
    };
    const releasedAddrs = [...released.keys()].map(leaseAddr).filter((a): a is Addr => a !== null);
    return { leases, facts, released: releasedAddrs, indexRebuilds: readCounter(own, REBUILDS) };
  } finally {
    for (const d of [own, state, net, data]) d?.close();
  }
}
