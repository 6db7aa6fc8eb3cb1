// Ranges and range sets with host-local's validation order and messages (allocator/range.go, range_set.go).
import { type CniError, E } from "../errors.js";
import type { Exclusions } from "./exclusions.js";
import {
  type Addr,
  bitsOf,
  broadcastOf,
  type Cidr,
  compareAddr,
  formatCIDR,
  formatIP,
  inSubnet,
  networkOf,
  nextAddr,
  sameAddr,
} from "./ip.js";

/** A range object as decoded from the config, before canonicalisation. */
export interface RawRange {
  subnet?: Cidr;
  rangeStart?: Addr;
  rangeEnd?: Addr;
  gateway?: Addr;
  exclude?: (string | undefined)[];
  /** local-ipam's own, for cluster networks; checked by the config */
  blockSize?: unknown;
}

export interface Range {
  readonly subnet: Cidr; // network address (host bits clear)
  readonly rangeStart: Addr;
  readonly rangeEnd: Addr;
  readonly gateway: Addr;
  /** Addresses never handed out automatically: sorted, merged, inside [rangeStart, rangeEnd]. */
  readonly exclude?: Exclusions;
  /** Cluster networks: the prefix length of the blocks the range is handed out in, node by node. */
  readonly blockSize?: number;
}

/** Whether `n` is one of the excluded addresses of `r`. */
function isExcluded(r: Range, n: bigint): boolean {
  return r.exclude !== undefined && r.exclude.find(n) >= 0;
}

/** Addresses of `r` that ADD may hand out: the range less its exclusions and its gateway. */
export function allocatableCount(r: Range): bigint {
  const excluded = r.exclude?.count ?? 0n;
  const gwInside = rangeContains(r, r.gateway) && !isExcluded(r, r.gateway.n);
  return rangeSize(r) - excluded - (gwInside ? 1n : 0n);
}

export type RangeSet = readonly Range[];

/** An error of one range set, which the config wraps as "invalid range set N: <message>". */
export class RangeError_ extends Error {
  constructor(readonly error: CniError) {
    super(error.msg);
  }
}

function containsPartial(subnet: Cidr, a: Addr, start?: Addr, end?: Addr): boolean {
  if (a.v6 !== subnet.ip.v6) return false;
  if (!inSubnet(a, subnet.ip, subnet.prefix)) return false;
  if (start && compareAddr(a, start) < 0) return false;
  if (end && compareAddr(a, end) > 0) return false;
  return true;
}

export function rangeContains(r: Range, a: Addr): boolean {
  return containsPartial(r.subnet, a, r.rangeStart, r.rangeEnd);
}

export function formatRange(r: Range): string {
  return `${formatIP(r.rangeStart)}-${formatIP(r.rangeEnd)}`;
}

export function formatRangeSet(s: RangeSet): string {
  return s.map(formatRange).join(",");
}

/** Range.Canonicalize(): defaults and checks, in host-local's order. */
export function canonicalizeRange(raw: RawRange): Range {
  const sub = raw.subnet;
  if (!sub) throw new RangeError_(E.notV4NorV6("<nil>"));
  const ones = sub.prefix;
  if (ones > sub.maskBits - 2) throw new RangeError_(E.networkTooSmall(formatCIDR(sub)));
  if (bitsOf(sub.ip) !== sub.maskBits) throw new RangeError_(E.maskVersionMismatch());
  const network = networkOf(sub.ip, ones);
  if (!sameAddr(network, sub.ip)) throw new RangeError_(E.hostBitsSet(ones, formatIP(network)));
  const subnet: Cidr = { ip: network, prefix: ones, maskBits: sub.maskBits };

  const gateway = raw.gateway ?? nextAddr(network);
  let rangeStart = raw.rangeStart;
  if (rangeStart) {
    if (!containsPartial(subnet, rangeStart, undefined, raw.rangeEnd))
      throw new RangeError_(E.rangeStartNotIn(formatIP(rangeStart), formatCIDR(subnet)));
  } else {
    rangeStart = nextAddr(network);
  }
  let rangeEnd = raw.rangeEnd;
  if (rangeEnd) {
    if (!containsPartial(subnet, rangeEnd, rangeStart, undefined))
      throw new RangeError_(E.rangeEndNotIn(formatIP(rangeEnd), formatCIDR(subnet)));
  } else {
    const last = broadcastOf(network, ones);
    rangeEnd = network.v6 ? last : { v6: false, n: last.n - 1n };
  }
  return { subnet, rangeStart, rangeEnd, gateway };
}

function rangesOverlap(a: Range, b: Range): boolean {
  if (a.rangeStart.v6 !== b.rangeStart.v6) return false;
  return (
    rangeContains(a, b.rangeStart) ||
    rangeContains(a, b.rangeEnd) ||
    rangeContains(b, a.rangeStart) ||
    rangeContains(b, a.rangeEnd)
  );
}

/** RangeSet.Canonicalize(). */
export function canonicalizeRangeSet(raws: readonly RawRange[]): Range[] {
  if (raws.length === 0) throw new RangeError_(E.emptyRangeSet());
  const set: Range[] = [];
  for (const raw of raws) {
    const r = canonicalizeRange(raw);
    if (set.length > 0 && set[0]!.rangeStart.v6 !== r.rangeStart.v6) throw new RangeError_(E.mixedFamilies());
    set.push(r);
  }
  for (let i = 0; i < set.length - 1; i++)
    for (let j = i + 1; j < set.length; j++)
      if (rangesOverlap(set[i]!, set[j]!))
        throw new RangeError_(E.subnetsOverlap(formatRange(set[i]!), formatRange(set[j]!)));
  return set;
}

export function rangeSetsOverlap(a: RangeSet, b: RangeSet): boolean {
  return a.some((r) => b.some((r1) => rangesOverlap(r, r1)));
}

/** Index of the first range of the set holding `a`, or -1 (RangeSet.RangeFor). */
export function rangeIndexFor(set: RangeSet, a: Addr): number {
  return set.findIndex((r) => rangeContains(r, a));
}

export function rangeSetContains(set: RangeSet, a: Addr): boolean {
  return rangeIndexFor(set, a) >= 0;
}

/** Number of addresses from rangeStart to rangeEnd inclusive (0 if the range is inverted). */
function rangeSize(r: Range): bigint {
  const d = r.rangeEnd.n - r.rangeStart.n;
  return d < 0n ? 0n : d + 1n;
}
