// Allocation from one range set, with host-local's semantics (allocator/allocator.go, range_iter.go): requested
// addresses, the duplicate (id, ifname) check, and round-robin iteration after last_reserved_ip.N that skips each
// range's gateway, wraps, and tries the last reserved address last. Which addresses are free comes from a bitmap
// built from the lease names; the exclusive create of the lease file stays the arbiter.
import { AllocError, E } from "../cni/errors.js";
import type { IpConfig } from "../cni/result.js";
import { type Addr, formatIP, parseIP, sameAddr } from "../net/ip.js";
import { type RangeSet, formatRangeSet, rangeContains, rangeIndexFor, rangeSize } from "../net/range.js";
import { DenseBitmap, type OffsetSet, offsetSetFor } from "./bitmap.js";
import type { LeaseTable } from "./lease-table.js";
import { type Store, goTrim, leaseAddr, ownerKey } from "./store.js";

/**
 * The leases as one invocation sees them: the store's table answers which addresses are used and which addresses
 * an owner may hold; every owner answer is checked against the lease file itself, and a disagreement (an index
 * that missed a change) rebuilds the table from the files before answering.
 */
export class LeaseView {
  private readonly contents = new Map<string, string | null>();
  constructor(private readonly store: Store) {}

  get table(): LeaseTable {
    return this.store.table();
  }

  owner(name: string): string | null {
    if (!this.contents.has(name)) this.contents.set(name, this.store.readLease(name));
    return this.contents.get(name)!;
  }

  /** Lease names whose trimmed owner is exactly `key`, in lexical order (host-local walks the directory so). */
  owned(key: string, within: (ip: Addr) => boolean = () => true): string[] {
    for (let attempt = 0; ; attempt++) {
      const found: string[] = [];
      let stale = false;
      for (const ip of this.store.table().candidatesFor(key)) {
        if (!within(ip)) continue;
        const name = formatIP(ip);
        const content = this.owner(name);
        if (content !== null && goTrim(content) === key) found.push(name);
        else stale = true; // a hash collision, or an index that missed a change
      }
      if (!stale || attempt > 0) return found.sort();
      this.contents.clear();
      this.store.rescan();
    }
  }

  /** Leases held by (id, ifname), or by the legacy id-only key, in lexical order (Store.GetByID). */
  heldBy(id: string, ifname: string, within: (ip: Addr) => boolean = () => true): Addr[] {
    const names = new Set([...this.owned(ownerKey(id, ifname), within), ...this.owned(goTrim(id), within)]);
    return [...names].sort().map((n) => leaseAddr(n)!);
  }

  forget(name: string): void {
    this.contents.delete(name);
  }
}

/** The taken addresses of one range set: one offset set per range. */
export class RangeSetPool {
  readonly taken: OffsetSet[];
  constructor(readonly set: RangeSet) {
    this.taken = set.map((r) => offsetSetFor(rangeSize(r)));
  }
  /** Marks every used address of the set, from the lease table (a binary search per range). */
  markFrom(table: LeaseTable): this {
    this.set.forEach((r, ri) => {
      const taken = this.taken[ri]!;
      for (const e of r.exclude ?? []) taken.addInterval(e.from - r.rangeStart.n, e.to - r.rangeStart.n);
      if (!r.rangeStart.v6 && taken instanceof DenseBitmap) {
        const base = Number(r.rangeStart.n);
        taken.addAll(table.v4In(base, Number(r.rangeEnd.n)), base);
        return;
      }
      const base = r.rangeStart.n;
      table.forEachIn(r.rangeStart, r.rangeEnd, (n) => taken.add(n - base));
    });
    return this;
  }
  mark(ip: Addr): void {
    const ri = rangeIndexFor(this.set, ip);
    if (ri >= 0) this.taken[ri]!.add(ip.n - this.set[ri]!.rangeStart.n);
  }
  addrAt(ri: number, off: bigint): Addr {
    const start = this.set[ri]!.rangeStart;
    return { v6: start.v6, n: start.n + off };
  }
  /** Offset of range ri's gateway inside the range, or -1n when the gateway lies outside it. */
  gatewayOffset(ri: number): bigint {
    const r = this.set[ri]!;
    return rangeContains(r, r.gateway) ? r.gateway.n - r.rangeStart.n : -1n;
  }

  /**
   * Free candidates in host-local's iteration order: from the address after `last` (when it lies in the set),
   * otherwise from the first range's start, through every range once, wrapping, each range's gateway skipped.
   */
  *candidates(last: Addr | null): Generator<[number, bigint]> {
    const n = this.set.length;
    let ri = 0;
    let first = 0n;
    const lastRi = last ? rangeIndexFor(this.set, last) : -1;
    if (last && lastRi >= 0) {
      ri = lastRi;
      first = last.n - this.set[ri]!.rangeStart.n + 1n;
      if (first >= this.taken[ri]!.size) {
        ri = (ri + 1) % n;
        first = 0n;
      }
    }
    // segments: [first, end] of ri, then every other range whole, then [0, first-1] of ri
    const segments: [number, bigint, bigint][] = [[ri, first, this.taken[ri]!.size - 1n]];
    for (let k = 1; k < n; k++) {
      const rk = (ri + k) % n;
      segments.push([rk, 0n, this.taken[rk]!.size - 1n]);
    }
    if (first > 0n) segments.push([ri, 0n, first - 1n]);
    for (const [r, from, to] of segments) {
      const gw = this.gatewayOffset(r);
      let cur = from;
      while (cur <= to) {
        const free = this.taken[r]!.nextClear(cur, to);
        if (free < 0n) break;
        cur = free + 1n;
        if (free !== gw) yield [r, free];
      }
    }
  }
}

/** A lease that may be taken over: written before the current boot, so its network namespace is gone. */
export interface StaleLease {
  name: string;
  ip: Addr;
  rangeIndex: number;
  mtimeMs: number;
}

/**
 * Leases of the set written before `before` (ms since the epoch), oldest first, gateways excepted. A network
 * namespace does not survive a reboot, so such a lease's container is gone even if no DEL ever came.
 */
export function staleLeases(set: RangeSet, view: LeaseView, store: Store, before: number | null): StaleLease[] {
  if (before === null) return [];
  const out: StaleLease[] = [];
  set.forEach((r, ri) => {
    view.table.forEachIn(r.rangeStart, r.rangeEnd, (n) => {
      const ip = { v6: r.rangeStart.v6, n };
      if (sameAddr(ip, r.gateway)) return;
      const name = formatIP(ip);
      const mtimeMs = store.mtimeMs(name);
      if (mtimeMs !== null && mtimeMs < before) out.push({ name, ip, rangeIndex: ri, mtimeMs });
    });
  });
  return out.sort((a, b) => a.mtimeMs - b.mtimeMs || (a.ip.n < b.ip.n ? -1 : 1));
}

/** STATUS: can this range set serve an ADD (a free address, or a stale lease to take over)? */
export function canServe(set: RangeSet, view: LeaseView, store: Store, staleBefore: number | null): boolean {
  const pool = new RangeSetPool(set).markFrom(view.table);
  if (!pool.candidates(null).next().done) return true;
  return staleLeases(set, view, store, staleBefore).length > 0;
}

export interface AllocatorOptions {
  /** Leases last written before this time (ms since the epoch) may be taken over when the set is full. */
  reclaimBefore: number | null;
  /** Where to say what was taken over; the command prints it on stderr. */
  notes: string[];
  /** An address released less than this long ago is chosen only when nothing else is free. */
  reuseDelayMs?: number;
  now?: number;
}

export class Allocator {
  private readonly pool: RangeSetPool;
  constructor(
    private readonly set: RangeSet,
    private readonly rangeId: number,
    private readonly store: Store,
    private readonly view: LeaseView,
    private readonly options: AllocatorOptions = { reclaimBefore: null, notes: [] },
  ) {
    this.pool = new RangeSetPool(set).markFrom(view.table);
  }

  private config(ip: Addr, ri: number): IpConfig {
    const r = this.set[ri]!;
    return { address: { ip, prefix: r.subnet.prefix, maskBits: r.subnet.maskBits }, gateway: r.gateway };
  }

  private reserve(ip: Addr, owner: string): boolean {
    const name = formatIP(ip);
    if (!this.store.reserve(name, owner)) return false;
    this.view.forget(name);
    this.store.forgetRelease(name);
    this.store.setLastReserved(this.rangeId, name);
    return true;
  }

  /** IPAllocator.Get; throws AllocError with host-local's message. */
  get(id: string, ifname: string, requested: Addr | null): IpConfig {
    const owner = ownerKey(id, ifname);
    if (requested) {
      const ri = rangeIndexFor(this.set, requested);
      if (sameAddr(requested, this.set[ri]!.gateway)) throw new AllocError(E.isGateway(formatIP(requested)));
      if (!this.reserve(requested, owner))
        throw new AllocError(E.requestedTaken(formatIP(requested), formatRangeSet(this.set)));
      return this.config(requested, ri);
    }
    const inSet = (ip: Addr) => rangeIndexFor(this.set, ip) >= 0;
    for (const held of this.view.heldBy(id, ifname, inSet)) throw new AllocError(E.duplicate(formatIP(held), id));

    const lastText = this.store.lastReserved(this.rangeId);
    const last = lastText === null ? null : parseIP(lastText);
    const delay = this.options.reuseDelayMs ?? 0;
    const now = this.options.now ?? Date.now();
    const released = delay > 0 ? this.store.releases() : null;
    const cooling: { ip: Addr; ri: number; at: number }[] = [];
    for (const [ri, off] of this.pool.candidates(last)) {
      const ip = this.pool.addrAt(ri, off);
      const at = released?.get(formatIP(ip));
      if (at !== undefined && now - at < delay) {
        cooling.push({ ip, ri, at }); // released too recently: only if nothing else is free
        continue;
      }
      if (this.reserve(ip, owner)) return this.config(ip, ri);
      this.pool.mark(ip); // taken behind the bitmap's back: the file system said so, believe it
    }
    for (const c of cooling.sort((a, b) => a.at - b.at)) {
      if (!this.reserve(c.ip, owner)) continue;
      this.options.notes.push(E.coolingNote(formatIP(c.ip), `${((now - c.at) / 1000).toFixed(1)}s`));
      return this.config(c.ip, c.ri);
    }
    // full: free addresses always come first; only now take over the oldest lease from before the boot
    const stale = staleLeases(this.set, this.view, this.store, this.options.reclaimBefore)[0];
    if (stale) {
      const before = this.view.owner(stale.name);
      const previous = before === null ? null : goTrim(before);
      this.store.replace(stale.name, owner, previous);
      this.view.forget(stale.name);
      this.store.setLastReserved(this.rangeId, stale.name);
      this.options.notes.push(E.reclaimedNote(stale.name, (previous ?? "").replace("\r\n", "/"), new Date(stale.mtimeMs).toISOString()));
      return this.config(stale.ip, stale.rangeIndex);
    }
    throw new AllocError(E.exhausted(formatRangeSet(this.set)));
  }
}

/**
 * Store.ReleaseByID as host-local calls it `times` times in a row: each pass removes the leases of (id, ifname),
 * or, when there are none, the legacy id-only ones. Two passes or more therefore remove both kinds.
 */
export function releaseById(store: Store, view: LeaseView, id: string, ifname: string, times: number, noteRelease = false): void {
  if (times <= 0) return;
  const key = ownerKey(id, ifname);
  const legacy = goTrim(id);
  const release = (name: string, owner: string) => {
    if (store.remove(name, owner) && noteRelease) store.noteRelease(name);
  };
  const current = view.owned(key);
  for (const name of current) release(name, key);
  if (current.length === 0 || times >= 2) for (const name of view.owned(legacy)) release(name, legacy);
}
