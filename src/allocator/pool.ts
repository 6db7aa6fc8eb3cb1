// What a range set can give, computed one way for everyone: ADD (which address next, which lease to take over),
// STATUS (can an ADD be served), and the operator's usage and metrics (how many are free, reclaimable, cooling).
import type { Addr } from "../net/ip.js";
import { allocatableCount, type Range, type RangeSet, rangeContains } from "../net/range.js";
import type { LeaseFacts } from "./store.js";

/** Facts about time that policies need: boot (null: no takeover after reboots), now, the reuse delay. */
export interface PoolPolicy {
  /** Leases written before this moment (ms since the epoch) may be taken over when the set is full; null: never. */
  reclaimBefore: () => number | null;
  reuseDelayMs: number;
  now: number;
}

/** The end of the excluded interval of `r` holding `n`, or null. */
export function excludedUntil(r: Range, n: bigint): bigint | null {
  const i = r.exclude?.find(n) ?? -1;
  return i < 0 ? null : r.exclude!.to(i);
}

function gatewayIn(r: Range): bigint {
  return rangeContains(r, r.gateway) ? r.gateway.n : -1n;
}

/** Whether ADD may hand out `ip` by itself: inside a range of the set, not its gateway, not excluded. */
function allocatable(set: RangeSet, ip: Addr): boolean {
  return set.some((r) => rangeContains(r, ip) && ip.n !== gatewayIn(r) && excludedUntil(r, ip.n) === null);
}

/**
 * Unleased addresses in host-local's iteration order: from the address after `last` (when it lies in the set),
 * otherwise from the first range's start, through every range once, wrapping, each range's gateway and excluded
 * addresses skipped. Each step costs a walk over leased runs and a binary search, not a pass over the range.
 */
export function* unleased(set: RangeSet, facts: LeaseFacts, last: Addr | null): Generator<[number, bigint]> {
  const n = set.length;
  let ri = 0;
  let first = set[0]!.rangeStart.n;
  const lastRi = last ? set.findIndex((r) => rangeContains(r, last)) : -1;
  if (last && lastRi >= 0) {
    ri = lastRi;
    first = last.n + 1n;
    if (first > set[ri]!.rangeEnd.n) {
      ri = (ri + 1) % n;
      first = set[ri]!.rangeStart.n;
    }
  }
  // segments: [first, end] of ri, then every other range whole, then [start, first-1] of ri
  const segments: [number, bigint, bigint][] = [[ri, first, set[ri]!.rangeEnd.n]];
  for (let k = 1; k < n; k++) {
    const rk = (ri + k) % n;
    segments.push([rk, set[rk]!.rangeStart.n, set[rk]!.rangeEnd.n]);
  }
  if (first > set[ri]!.rangeStart.n) segments.push([ri, set[ri]!.rangeStart.n, first - 1n]);
  for (const [r, from, to] of segments) {
    const range = set[r]!;
    const v6 = range.rangeStart.v6;
    const gw = gatewayIn(range);
    let x = from;
    while (x <= to) {
      const free = facts.nextUnused({ v6, n: x }, { v6, n: to });
      if (free === null) break;
      const skip = excludedUntil(range, free);
      if (skip !== null) {
        x = skip + 1n;
        continue;
      }
      x = free + 1n;
      if (free !== gw) yield [r, free];
    }
  }
}

/** A lease that may be taken over: written before the current boot, so its network namespace is gone. */
interface Reclaimable {
  ip: Addr;
  rangeIndex: number;
  writtenMs: number;
}

/**
 * Leases of the set that ADD may take over when nothing is free, oldest first: written before the boot, at an
 * address ADD may hand out by itself (not a gateway, not excluded), and not made for an address its owner asked
 * for (a runtime recreating a container with a static address after the reboot must find it again).
 */
export function reclaimable(set: RangeSet, facts: LeaseFacts, policy: PoolPolicy): Reclaimable[] {
  const before = policy.reclaimBefore();
  if (before === null) return [];
  const out: Reclaimable[] = [];
  set.forEach((r, rangeIndex) => {
    const v6 = r.rangeStart.v6;
    facts.forEachLeased(r.rangeStart, r.rangeEnd, (n) => {
      const ip = { v6, n };
      if (n === gatewayIn(r) || excludedUntil(r, n) !== null) return;
      const writtenMs = facts.leaseWrittenMs(ip);
      if (writtenMs === null || writtenMs >= before || facts.isStatic(ip)) return;
      out.push({ ip, rangeIndex, writtenMs });
    });
  });
  return out.sort((a, b) => a.writtenMs - b.writtenMs || (a.ip.n < b.ip.n ? -1 : 1));
}

/** Whether an unleased address is cooling down after a release (chosen only when nothing else is free). */
export function isCooling(facts: LeaseFacts, ip: Addr, policy: PoolPolicy): boolean {
  if (policy.reuseDelayMs <= 0) return false;
  const at = facts.releasedAt(ip);
  return at !== undefined && policy.now - at < policy.reuseDelayMs;
}

interface PoolCounts {
  /** addresses ADD may hand out by itself: gateways and exclusions left out (a BigInt: an IPv6 /64 holds 2^64) */
  total: bigint;
  /** leased among those */
  used: number;
  free: bigint;
  /** leased, but ADD would take them over when the set is full (see reclaimable) */
  reclaimable: number;
  /** free, but released less than reuseDelay ago */
  cooling: number;
}

/** How many leased addresses of `r` ADD could have handed out by itself. */
function leasedAllocatable(r: Range, facts: LeaseFacts): number {
  const v6 = r.rangeStart.v6;
  let used = facts.countLeased(r.rangeStart, r.rangeEnd);
  const ex = r.exclude;
  if (ex && ex.length > used) {
    // fewer leases than excluded intervals (80,000 of them, often): look each lease up instead
    facts.forEachLeased(r.rangeStart, r.rangeEnd, (n) => {
      if (ex.find(n) >= 0) used--;
    });
  } else if (ex) {
    for (let i = 0; i < ex.length; i++) used -= facts.countLeased({ v6, n: ex.from(i) }, { v6, n: ex.to(i) });
  }
  const gw = gatewayIn(r);
  if (gw >= 0n && excludedUntil(r, gw) === null && facts.countLeased(r.gateway, r.gateway) > 0) used--;
  return used;
}

/** Total, used and free addresses of a set, without the takeover question (which walks every lease). */
export function freeCounts(set: RangeSet, facts: LeaseFacts): { total: bigint; used: number; free: bigint } {
  const total = set.reduce((n, r) => n + allocatableCount(r), 0n);
  const used = set.reduce((n, r) => n + leasedAllocatable(r, facts), 0);
  return { total, used, free: total > BigInt(used) ? total - BigInt(used) : 0n };
}

export function poolCounts(
  set: RangeSet,
  facts: LeaseFacts,
  policy: PoolPolicy,
  released: Iterable<Addr> = [],
): PoolCounts {
  const total = set.reduce((n, r) => n + allocatableCount(r), 0n);
  const used = set.reduce((n, r) => n + leasedAllocatable(r, facts), 0);
  let cooling = 0;
  for (const ip of released) {
    if (!allocatable(set, ip) || facts.countLeased(ip, ip) > 0) continue;
    if (isCooling(facts, ip, policy)) cooling++;
  }
  const free = total > BigInt(used) ? total - BigInt(used) : 0n;
  return { total, used, free, reclaimable: reclaimable(set, facts, policy).length, cooling };
}

/** STATUS: whether an ADD on this set would succeed: an unleased address (cooling ones too), or one to take over. */
export function canServe(set: RangeSet, facts: LeaseFacts, policy: PoolPolicy): boolean {
  if (!unleased(set, facts, null).next().done) return true;
  return reclaimable(set, facts, policy).length > 0;
}
