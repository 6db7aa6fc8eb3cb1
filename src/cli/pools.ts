// What the operator views show: the pools of a network (range sets from a conflist, when one is given) and how
// full they are, counted by the same functions ADD and STATUS use (allocator/pool.ts).
import { poolCounts } from "../allocator/pool.js";
import { isValidNetworkName } from "../cni/skel.js";
import { DEFAULT_DATA_DIR, type IpamConfig, loadIpamConfig } from "../config/ipam.js";
import { CniError } from "../errors.js";
import { formatRangeSet, type RangeSet } from "../net/range.js";
import { platform } from "../platform/index.js";
import { bootTimeMs } from "../store/boot.js";
import { readTextAt } from "../store/files.js";
import { inspectNetwork, type LeaseInfo, listNetworks, type NetworkView } from "../store/inspect.js";
import { UsageError } from "./flags.js";

interface PoolSource {
  network: string;
  dataDir: string;
  /** from a conflist; null when only the files are known */
  rangeSets: RangeSet[] | null;
  reclaimAfterReboot: boolean;
  reuseDelayMs: number;
}

/** The IPAM config of a .conf or .conflist, read as local-ipam itself reads it. */
export function loadConfigFile(path: string): IpamConfig {
  const text = readTextAt(null, path, 16 << 20);
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
  try {
    return loadIpamConfig({ ...plugin, name: doc.name, cniVersion: doc.cniVersion }, "");
  } catch (e) {
    if (e instanceof CniError) throw new UsageError(`${path}: ${e.msg}`);
    throw e;
  }
}

function sourceFromConfig(path: string): PoolSource {
  const conf = loadConfigFile(path);
  return {
    network: conf.name,
    dataDir: conf.dataDir,
    rangeSets: conf.rangeSets,
    reclaimAfterReboot: conf.reclaimAfterReboot,
    reuseDelayMs: conf.reuseDelayMs,
  };
}

/** A network named on the command line must be a name the plugin would accept: no "..", no "/". */
export function checkNetworkName(name: string): string {
  if (!isValidNetworkName(name)) throw new UsageError(`--network: ${JSON.stringify(name)} is not a valid network name`);
  return name;
}

export function sourcesFor(configs: string[], networks: string[], dataDir: string | undefined): PoolSource[] {
  if (configs.length > 0 && networks.length > 0) throw new UsageError("give --config or --network, not both");
  if (configs.length > 0) return configs.map(sourceFromConfig);
  const dir = dataDir ?? DEFAULT_DATA_DIR;
  const names = networks.length > 0 ? networks.map(checkNetworkName) : listNetworks(dir);
  return names.map((network) => ({
    network,
    dataDir: dir,
    rangeSets: null,
    reclaimAfterReboot: true,
    reuseDelayMs: 0,
  }));
}

interface RangeSetUsage {
  index: number;
  ranges: string;
  /** addresses, gateways and exclusions left out: a BigInt, as an IPv6 /64 holds 2^64 */
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
  if (b >= 10_000_000n) return Number(b).toExponential(2).replace("e+", "e");
  return String(b).replace(/\B(?=(\d{3})+(?!\d))/g, ",");
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

function usageOf(
  src: PoolSource,
  view: NetworkView,
  bootMs: number | null,
  now = platform().realtimeMs(),
): NetworkUsage {
  const beforeBoot = (l: LeaseInfo) => bootMs !== null && l.mtimeMs < bootMs;
  const policy = {
    reclaimBefore: () => (src.reclaimAfterReboot ? bootMs : null),
    reuseDelayMs: src.reuseDelayMs,
    now,
  };
  return {
    network: src.network,
    dataDir: src.dataDir,
    leases: view.leases.length,
    leasesBeforeBoot: view.leases.filter(beforeBoot).length,
    indexRebuilds: view.indexRebuilds,
    rangeSets:
      src.rangeSets?.map((set, index) => ({
        index,
        ranges: formatRangeSet(set),
        ...poolCounts(set, view.facts, policy, view.released),
      })) ?? null,
  };
}

export function collect(sources: PoolSource[]): { usage: NetworkUsage; leases: LeaseInfo[] }[] {
  const boot = bootTimeMs();
  return sources.map((src) => {
    const view = inspectNetwork(src.dataDir, src.network);
    return { usage: usageOf(src, view, boot), leases: view.leases };
  });
}
