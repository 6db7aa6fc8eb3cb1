// What the operator views show: the pools of a network (range sets from a conflist, when one is given) and how
// full they are, computed from the lease files and the boot time.
import { CniError } from "../cni/errors.js";
import { DEFAULT_DATA_DIR, loadIpamConfig } from "../config/ipam.js";
import { type Addr, parseIP } from "../net/ip.js";
import { type RangeSet, allocatableCount, formatRangeSet, rangeContains } from "../net/range.js";
import { type LeaseInfo, indexRebuilds, listNetworks, readLeases, readReleases, readTextFile } from "../store/inspect.js";
import { UsageError } from "./flags.js";

export interface PoolSource {
  network: string;
  dataDir: string;
  /** from a conflist; null when only the files are known */
  rangeSets: RangeSet[] | null;
  reclaimAfterReboot: boolean;
  reuseDelayMs: number;
}

/** The IPAM config of a .conf or .conflist, read as local-ipam itself reads it. */
export function sourceFromConfig(path: string): PoolSource {
  const text = readTextFile(path);
  if (text === null) throw new UsageError(`cannot read ${path}`);
  let doc: Record<string, unknown>;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw new UsageError(`${path} is not JSON: ${(e as Error).message}`);
  }
  const plugins = Array.isArray(doc.plugins) ? (doc.plugins as Record<string, unknown>[]) : [doc];
  const plugin = plugins.find((p) => p && typeof p === "object" && p.ipam && typeof p.ipam === "object");
  if (!plugin) throw new UsageError(`${path} has no plugin with an "ipam" block`);
  const netconf = { ...plugin, name: doc.name, cniVersion: doc.cniVersion };
  try {
    const conf = loadIpamConfig(netconf, "");
    return {
      network: conf.name,
      dataDir: conf.dataDir,
      rangeSets: conf.rangeSets,
      reclaimAfterReboot: conf.reclaimAfterReboot,
      reuseDelayMs: conf.reuseDelayMs,
    };
  } catch (e) {
    if (e instanceof CniError) throw new UsageError(`${path}: ${e.msg}`);
    throw e;
  }
}

export function sourcesFor(configs: string[], networks: string[], dataDir: string | undefined): PoolSource[] {
  if (configs.length > 0 && networks.length > 0) throw new UsageError("give --config or --network, not both");
  if (configs.length > 0) return configs.map(sourceFromConfig);
  const dir = dataDir ?? DEFAULT_DATA_DIR;
  const names = networks.length > 0 ? networks : listNetworks(dir);
  return names.map((network) => ({ network, dataDir: dir, rangeSets: null, reclaimAfterReboot: true, reuseDelayMs: 0 }));
}

export interface RangeSetUsage {
  index: number;
  ranges: string;
  /** addresses, gateways excluded: a BigInt, as an IPv6 /64 holds 2^64 */
  total: bigint;
  used: number;
  free: bigint;
  reclaimable: number;
  /** free, but released less than reuseDelay ago: chosen only when nothing else is free */
  cooling: number;
}

/** For JSON: exact numbers while they are safe integers, exact decimal strings beyond. */
export function jsonCount(n: bigint | number): number | string {
  return BigInt(n) <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(n) : BigInt(n).toString();
}

/** For people: 253, 65,534, 1.84e19. */
export function humanCount(n: bigint | number): string {
  const b = BigInt(n);
  return b < 10_000_000n ? Number(b).toLocaleString("en") : Number(b).toExponential(2).replace("e+", "e");
}

export function percentUsed(s: RangeSetUsage): number {
  return s.total > 0n ? (100 * s.used) / Number(s.total) : 0;
}

export interface NetworkUsage {
  network: string;
  dataDir: string;
  leases: number;
  leasesBeforeBoot: number;
  indexRebuilds: number;
  rangeSets: RangeSetUsage[] | null;
}

/** Whether ADD may hand out `ip` automatically: in a range of the set, not a gateway, not excluded. */
function allocatable(set: RangeSet, ip: Addr): boolean {
  return set.some(
    (r) => rangeContains(r, ip) && !sameGateway(r.gateway, ip) && !(r.exclude ?? []).some((e) => ip.n >= e.from && ip.n <= e.to),
  );
}

export function usageOf(src: PoolSource, leases: LeaseInfo[], bootMs: number | null, released = new Map<string, number>(), now = Date.now()): NetworkUsage {
  const beforeBoot = (l: LeaseInfo) => bootMs !== null && l.mtimeMs < bootMs;
  return {
    network: src.network,
    dataDir: src.dataDir,
    leases: leases.length,
    leasesBeforeBoot: leases.filter(beforeBoot).length,
    indexRebuilds: indexRebuilds(src.dataDir, src.network),
    rangeSets:
      src.rangeSets?.map((set, index) => {
        const inSet = leases.filter((l) => allocatable(set, l.ip));
        const total = set.reduce((n, r) => n + allocatableCount(r), 0n);
        const used = inSet.length;
        const reclaimable = src.reclaimAfterReboot ? inSet.filter(beforeBoot).length : 0;
        const free = total > BigInt(used) ? total - BigInt(used) : 0n;
        const leased = new Set(leases.map((l) => l.name));
        let cooling = 0;
        for (const [name, at] of released) {
          const ip = parseIP(name);
          if (ip && now - at < src.reuseDelayMs && !leased.has(name) && allocatable(set, ip)) cooling++;
        }
        return { index, ranges: formatRangeSet(set), total, used, free, reclaimable, cooling };
      }) ?? null,
  };
}

function sameGateway(gw: Addr, ip: Addr): boolean {
  return gw.v6 === ip.v6 && gw.n === ip.n;
}

export function collect(sources: PoolSource[], bootMs: number | null): { usage: NetworkUsage; leases: LeaseInfo[] }[] {
  return sources.map((src) => {
    const leases = readLeases(src.dataDir, src.network);
    return { usage: usageOf(src, leases, bootMs, readReleases(src.dataDir, src.network)), leases };
  });
}

