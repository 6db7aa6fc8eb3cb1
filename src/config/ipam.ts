// host-local's LoadIPAMConfig: the whole plugin config from stdin plus CNI_ARGS, decoded with Go's rules and
// validated in host-local's order ('ipam' key, CNI_ARGS, requested IPs, ranges), with its messages; then
// local-ipam's own keys (exclude, reclaimAfterReboot, reuseDelay, statusOnExhaustion), which host-local ignores.
import { versionAtLeast } from "../cni/version.js";
import { E } from "../errors.js";
import { goDecode, goErrorText, HardError, jsonKind, type Schema, TypeError_ } from "../go/json.js";
import { Exclusions, type Interval } from "../net/exclusions.js";
import { type Addr, broadcastOf, type Cidr, formatCIDR, formatIP, networkOf, parseCIDR, parseIP } from "../net/ip.js";
import {
  allocatableCount,
  canonicalizeRangeSet,
  formatRange,
  type Range,
  RangeError_,
  type RangeSet,
  type RawRange,
  rangeSetsOverlap,
} from "../net/range.js";
import { platform } from "../platform/index.js";
import { parseEnvArgs, parseRequestedIP } from "./args.js";
import { parseDuration } from "./duration.js";

export const DEFAULT_DATA_DIR = "/var/lib/cni/networks";

const STATUS_ON_EXHAUSTION = ["ready", "unavailable"] as const;

interface Route {
  dst: Cidr;
  gw?: Addr;
}

export interface IpamConfig {
  name: string;
  cniVersion: string;
  dataDir: string;
  resolvConf: string;
  rangeSets: RangeSet[];
  routes: Route[];
  /** Addresses asked for by IP=, args.cni.ips and runtimeConfig.ips, in that order, without repeats. */
  requested: Addr[];
  /** When a range set is full, take over the oldest lease written before the current boot (default true). */
  reclaimAfterReboot: boolean;
  /** An address released by DEL or GC is not chosen again for this long while others are free (default 0). */
  reuseDelayMs: number;
  /** What STATUS answers when the only problem is a full range set: "ready" (default) or "unavailable" (50). */
  statusOnExhaustion: (typeof STATUS_ON_EXHAUSTION)[number];
  /** A cluster network: addresses only from the blocks this node owns, claimed by the node agent (on etcd). */
  cluster: ClusterConfig | null;
}

export interface ClusterConfig {
  /** the node agent's unix socket, asked for a block when the owned ones are full */
  agentSocket: string;
  /** how long an ADD waits for the agent to claim blocks, in all (default 10 s) */
  claimTimeoutMs: number;
}

export const DEFAULT_AGENT_SOCKET = "/run/local-ipam/agent.sock";

type Excluded = Interval & { v6: boolean };

/** An exclude entry ("10.0.0.5" or "10.0.0.64/27") as an interval, validated like a subnet. */
function excludeInterval(where: string, entry: string | undefined): Excluded {
  const text = entry ?? "null";
  if (entry === undefined) throw E.badExclude(where, text, "not an IP address or CIDR");
  let cidr: Cidr | null;
  if (entry.includes("/")) cidr = parseCIDR(entry);
  else {
    const ip = parseIP(entry);
    cidr = ip && { ip, prefix: ip.v6 ? 128 : 32, maskBits: ip.v6 ? 128 : 32 };
  }
  if (!cidr) throw E.badExclude(where, text, "not an IP address or CIDR");
  if ((cidr.ip.v6 ? 128 : 32) !== cidr.maskBits) throw E.badExclude(where, text, E.maskVersionMismatch().msg);
  const net = networkOf(cidr.ip, cidr.prefix);
  if (net.n !== cidr.ip.n) throw E.badExclude(where, text, E.hostBitsSet(cidr.prefix, formatIP(net)).msg);
  return { v6: net.v6, from: net.n, to: broadcastOf(net, cidr.prefix).n };
}

interface ExcludeLists {
  v4: Exclusions;
  v6: Exclusions;
}

/**
 * An exclude list parsed, split by family, each family sorted and merged. The plain IPv4 entries (the ones that
 * come by the ten thousand) are the platform's to parse, natively where it can; every other entry is parsed here,
 * which also names the first bad one.
 */
function excludeLists(where: string, entries: (string | undefined)[] | undefined): ExcludeLists {
  const { bounds, skipped } = platform().v4Intervals(entries ?? []);
  const v4 = Exclusions.ofV4Bounds(bounds);
  if (skipped.length === 0) return { v4, v6: NO_EXCLUSIONS_V6 };
  const others = skipped.map((i) => excludeInterval(where, entries![i]));
  return {
    v4: v4.union(
      Exclusions.of(
        others.filter((e) => !e.v6),
        false,
      ),
    ),
    v6: Exclusions.of(
      others.filter((e) => e.v6),
      true,
    ),
  };
}

const NO_EXCLUSIONS_V6 = Exclusions.of([], true);

// --- the Go types host-local decodes into, with the names Go prints in its errors ---
const netIP: Schema = {
  t: "text",
  goType: "net.IP",
  parse: (s) => {
    if (s === "") return undefined;
    const ip = parseIP(s);
    if (!ip) throw new HardError(`invalid IP address: ${s}`);
    return ip;
  },
};
const ipNet: Schema = {
  t: "custom",
  onNull: true,
  parse: (raw) => {
    if (typeof raw !== "string" && raw !== null) throw new TypeError_(jsonKind(raw), "string");
    const s = raw ?? "";
    const c = parseCIDR(s);
    if (!c) throw new HardError(`invalid CIDR address: ${s}`);
    return c;
  },
};
/** pkg/ip.IP in args.cni.ips and runtimeConfig.ips: "" decodes to a nil address, rejected later. */
const cniIP: Schema = {
  t: "text",
  goType: "*ip.IP",
  parse: (s) => {
    if (s === "") return NIL_IP;
    const ip = parseRequestedIP(s);
    if (!ip) throw new HardError(`invalid IP address ${s}`);
    return ip;
  },
};
const NIL_IP = Symbol("nil IP");
const strings: Schema = { t: "slice", goType: "[]string", elem: { t: "string" } };
/** One of local-ipam's own keys whose value is checked after decoding, with a message naming it. */
const raw: Schema = { t: "custom", onNull: false, parse: (v) => v };
// exclude and blockSize are local-ipam's own keys (host-local ignores them, as it ignores every unknown key)
const rangeFields = {
  rangeStart: netIP,
  rangeEnd: netIP,
  subnet: ipNet,
  gateway: netIP,
  exclude: strings,
  blockSize: raw,
};
const rangeSets: Schema = {
  t: "slice",
  goType: "[]allocator.RangeSet",
  elem: {
    t: "slice",
    goType: "allocator.RangeSet",
    elem: { t: "struct", goType: "allocator.Range", name: "Range", fields: rangeFields },
  },
};
const routeInner: Schema = {
  t: "struct",
  goType: "types.route",
  name: "route",
  fields: { dst: ipNet, gw: netIP },
};
const route: Schema = { t: "custom", onNull: false, parse: (raw) => goDecode(raw, routeInner) };
const ipList: Schema = { t: "slice", goType: "[]*ip.IP", elem: cniIP };
const netSchema: Schema = {
  t: "struct",
  goType: "allocator.Net",
  name: "Net",
  fields: {
    name: { t: "string" },
    cniVersion: { t: "string" },
    ipam: {
      t: "struct",
      goType: "allocator.IPAMConfig",
      name: "IPAMConfig",
      ptr: true,
      fields: {
        ...rangeFields,
        Name: { t: "string" },
        type: { t: "string" },
        routes: { t: "slice", goType: "[]*types.Route", elem: route },
        dataDir: { t: "string" },
        resolvConf: { t: "string" },
        ranges: rangeSets,
        reclaimAfterReboot: { t: "bool" },
        reuseDelay: { t: "string" },
        statusOnExhaustion: { t: "string" },
        cluster: raw,
      },
    },
    runtimeConfig: {
      t: "struct",
      goType:
        'struct { IPRanges []allocator.RangeSet "json:\\"ipRanges,omitempty\\""; IPs []*ip.IP "json:\\"ips,omitempty\\"" }',
      name: "",
      fields: { ipRanges: rangeSets, ips: ipList },
    },
    args: {
      t: "struct",
      goType: 'struct { A *allocator.IPAMArgs "json:\\"cni\\"" }',
      name: "",
      ptr: true,
      fields: {
        cni: { t: "struct", goType: "allocator.IPAMArgs", name: "IPAMArgs", ptr: true, fields: { ips: ipList } },
      },
    },
  },
};

interface DecodedRoute {
  dst?: Cidr;
  gw?: Addr;
}
interface DecodedNet {
  name?: string;
  cniVersion?: string;
  ipam?: RawRange & {
    routes?: (DecodedRoute | undefined)[];
    dataDir?: string;
    resolvConf?: string;
    ranges?: (RawRange | undefined)[][];
    reclaimAfterReboot?: boolean;
    reuseDelay?: string;
    statusOnExhaustion?: string;
    cluster?: unknown;
  };
  runtimeConfig?: { ipRanges?: (RawRange | undefined)[][]; ips?: unknown[] };
  args?: { cni?: { ips?: unknown[] } };
}

/** Decodes `parsed` (the stdin JSON) into host-local's Net; Go's decode errors become code 999. */
function decodeNet(parsed: unknown): DecodedNet {
  try {
    return goDecode(parsed, netSchema) as DecodedNet;
  } catch (e) {
    if (e instanceof TypeError_ || e instanceof HardError) throw E.goJson(goErrorText(e));
    throw e;
  }
}

/** A missing range object or missing entries become empty objects, which fail as host-local's do. */
const rawSet = (set: (RawRange | undefined)[] | undefined): RawRange[] => (set ?? []).map((r) => r ?? {});

export function loadIpamConfig(parsed: unknown, envArgs: string): IpamConfig {
  const n = decodeNet(parsed);
  const ipam = n.ipam;
  if (!ipam) throw E.ipamMissing();

  const wanted: unknown[] = [];
  const env = parseEnvArgs(envArgs);
  if (env.ip) wanted.push(env.ip);
  wanted.push(...(n.args?.cni?.ips ?? []), ...(n.runtimeConfig?.ips ?? []));
  const requested: Addr[] = [];
  const seen = new Set<string>();
  for (const w of wanted) {
    if (w === NIL_IP || w === undefined) throw E.cannotUnderstandIp(E.notV4NorV6("<nil>"));
    const ip = w as Addr;
    const key = formatIP(ip);
    if (!seen.has(key)) {
      seen.add(key);
      requested.push(ip);
    }
  }

  const raws: RawRange[][] = [];
  for (const s of n.runtimeConfig?.ipRanges ?? []) raws.push(rawSet(s));
  if (ipam.subnet)
    raws.push([
      {
        subnet: ipam.subnet,
        rangeStart: ipam.rangeStart,
        rangeEnd: ipam.rangeEnd,
        gateway: ipam.gateway,
        blockSize: ipam.blockSize,
      },
    ]);
  for (const s of ipam.ranges ?? []) raws.push(rawSet(s));
  if (raws.length === 0) throw E.noRanges();

  const cniVersion = n.cniVersion ?? "";
  const cluster = clusterConfig(ipam.cluster);
  const everywhere = excludeLists("ipam", ipam.exclude);
  const sets: RangeSet[] = [];
  let v4 = 0;
  let v6 = 0;
  raws.forEach((raw, i) => {
    let set: Range[];
    try {
      set = canonicalizeRangeSet(raw);
    } catch (e) {
      if (e instanceof RangeError_) throw E.invalidRangeSet(i, e.error);
      throw e;
    }
    // host-local walks a range whose start lies past its end out of the subnet; refuse such a range up front
    for (const r of set)
      if (r.rangeStart.n > r.rangeEnd.n) throw E.rangeStartAfterEnd(i, formatIP(r.rangeStart), formatIP(r.rangeEnd));
    set = set.map((r, k): Range => {
      const own = excludeLists(`range set ${i}`, raw[k]!.exclude);
      const family = r.rangeStart.v6 ? "v6" : "v4";
      const clipped = own[family].union(everywhere[family]).clip(r.rangeStart.n, r.rangeEnd.n);
      const sized = cluster ? { ...r, blockSize: blockSize(i, r, raw[k]!.blockSize) } : r;
      if (!cluster && raw[k]!.blockSize !== undefined) throw E.blockSizeWithoutCluster(i);
      if (!clipped) return sized;
      const ranged: Range = { ...sized, exclude: clipped };
      if (allocatableCount(ranged) <= 0n) throw E.allExcluded(i, formatRange(r));
      return ranged;
    });
    if (set[0]!.rangeStart.v6) v6++;
    else v4++;
    sets.push(set);
  });
  if ((v4 > 1 || v6 > 1) && !versionAtLeast(cniVersion, "0.3.0")) throw E.tooManyPerFamily(cniVersion);
  for (let i = 0; i < sets.length - 1; i++)
    for (let j = i + 1; j < sets.length; j++) if (rangeSetsOverlap(sets[i]!, sets[j]!)) throw E.rangeSetsOverlap(i, j);
  if (cluster) {
    if ((n.runtimeConfig?.ipRanges ?? []).length > 0) throw E.clusterIpRanges();
    checkBlockGrid(sets);
  }

  const routes: Route[] = (ipam.routes ?? []).map((r, i) => {
    if (!r?.dst) throw E.routeWithoutDst(i);
    return r.gw ? { dst: r.dst, gw: r.gw } : { dst: r.dst };
  });

  return {
    name: n.name ?? "",
    cniVersion,
    dataDir: ipam.dataDir || DEFAULT_DATA_DIR,
    resolvConf: ipam.resolvConf ?? "",
    rangeSets: sets,
    routes,
    requested,
    reclaimAfterReboot: ipam.reclaimAfterReboot ?? true,
    reuseDelayMs: reuseDelay(ipam.reuseDelay),
    statusOnExhaustion: choice("statusOnExhaustion", ipam.statusOnExhaustion, STATUS_ON_EXHAUSTION),
    cluster,
  };
}

/** kubelet's runtime requests time out after 2 minutes; an ADD waiting longer for a block helps nobody */
const MAX_CLAIM_TIMEOUT_MS = 2 * 60_000;

/** ipam.cluster: an object; its agentSocket an absolute path (default DEFAULT_AGENT_SOCKET). */
function clusterConfig(v: unknown): ClusterConfig | null {
  if (v === undefined) return null;
  if (typeof v !== "object" || v === null || Array.isArray(v)) throw E.badCluster("must be an object");
  const { agentSocket = DEFAULT_AGENT_SOCKET, claimTimeout = "10s" } = v as Record<string, unknown>;
  if (typeof agentSocket !== "string" || !agentSocket.startsWith("/") || agentSocket.includes("\0"))
    throw E.badCluster(`agentSocket ${JSON.stringify(agentSocket)} must be an absolute path`);
  const ms = typeof claimTimeout === "string" ? parseDuration(claimTimeout) : null;
  if (ms === null || ms <= 0 || ms > MAX_CLAIM_TIMEOUT_MS)
    throw E.badCluster(`claimTimeout ${JSON.stringify(claimTimeout)} must be a duration such as "10s", at most 2m`);
  return { agentSocket, claimTimeoutMs: ms };
}

/**
 * A block is named by its CIDR alone (in etcd and in the blocks file): two ranges whose subnets overlap must cut
 * them in one grid, in one range set, or two nodes could own overlapping blocks under different names.
 */
function checkBlockGrid(sets: RangeSet[]): void {
  const all = sets.flatMap((set, i) => set.map((r) => ({ r, i })));
  for (let a = 0; a < all.length; a++)
    for (let b = a + 1; b < all.length; b++) {
      const x = all[a]!;
      const y = all[b]!;
      if (x.r.subnet.ip.v6 !== y.r.subnet.ip.v6) continue;
      const shorter = Math.min(x.r.subnet.prefix, y.r.subnet.prefix);
      const overlap = networkOf(x.r.subnet.ip, shorter).n === networkOf(y.r.subnet.ip, shorter).n;
      if (overlap && (x.i !== y.i || x.r.blockSize !== y.r.blockSize))
        throw E.clusterBlocksDisagree(formatCIDR(x.r.subnet), formatCIDR(y.r.subnet));
    }
}

/** A range's blockSize: a prefix length between the subnet's and the address's (default 26 for IPv4, 122 for IPv6). */
function blockSize(set: number, r: Range, v: unknown): number {
  const bits = r.subnet.ip.v6 ? 128 : 32;
  if (v === undefined) return Math.max(r.subnet.prefix, r.subnet.ip.v6 ? 122 : 26);
  if (typeof v !== "number" || !Number.isInteger(v) || v < r.subnet.prefix || v > bits)
    throw E.badBlockSize(set, JSON.stringify(v), r.subnet.prefix, bits);
  return v;
}

function choice<T extends string>(key: string, text: string | undefined, allowed: readonly T[]): T {
  if (text === undefined || text === "") return allowed[0]!;
  if (!(allowed as readonly string[]).includes(text)) throw E.badChoice(key, text, allowed);
  return text as T;
}

function reuseDelay(text: string | undefined): number {
  if (text === undefined || text === "") return 0;
  const ms = parseDuration(text);
  if (ms === null) throw E.badDuration("reuseDelay", text);
  return ms;
}
