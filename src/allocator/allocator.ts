// Allocation from one range set, with host-local's semantics (allocator/allocator.go, range_iter.go): requested
// addresses, the duplicate (id, ifname) check, and round-robin iteration after last_reserved_ip.N that skips each
// range's gateway, wraps, and tries the last reserved address last. The index says which addresses look free;
// the exclusive creation of the lease file stays the arbiter. Then the local-ipam policies: addresses cooling
// after a release come last, and a full set takes over its oldest lease from before the boot.
import type { IpConfig } from "../cni/result.js";
import { E, NOTE } from "../errors.js";
import { type Addr, formatIP, sameAddr } from "../net/ip.js";
import { formatRangeSet, type RangeSet, rangeIndexFor } from "../net/range.js";
import { isCooling, type PoolPolicy, reclaimable, unleased } from "./pool.js";
import type { Store } from "./store.js";

export class Allocator {
  constructor(
    private readonly set: RangeSet,
    private readonly rangeId: number,
    private readonly store: Store,
    private readonly policy: PoolPolicy,
    /** where to say what a policy did; the command prints them on stderr */
    private readonly notes: string[],
  ) {}

  private config(ip: Addr, ri: number): IpConfig {
    const r = this.set[ri]!;
    return { address: { ip, prefix: r.subnet.prefix, maskBits: r.subnet.maskBits }, gateway: r.gateway };
  }

  /** IPAllocator.Get: throws host-local's errors (the command wraps them with the range set's index). */
  get(id: string, ifname: string, requested: Addr | null): IpConfig {
    if (requested) {
      const ri = rangeIndexFor(this.set, requested);
      if (sameAddr(requested, this.set[ri]!.gateway)) throw E.isGateway(formatIP(requested));
      if (!this.store.reserve(id, ifname, requested, this.rangeId, true))
        throw E.requestedTaken(formatIP(requested), formatRangeSet(this.set));
      return this.config(requested, ri);
    }
    for (const held of this.store.getByID(id, ifname))
      if (rangeIndexFor(this.set, held) >= 0) throw E.duplicate(formatIP(held), id);

    const cooling: { ip: Addr; ri: number; at: number }[] = [];
    for (const [ri, n] of unleased(this.set, this.store, this.store.lastReservedIP(this.rangeId))) {
      const ip = { v6: this.set[ri]!.rangeStart.v6, n };
      if (isCooling(this.store, ip, this.policy)) {
        cooling.push({ ip, ri, at: this.store.releasedAt(ip)! });
        continue;
      }
      // false: taken behind the index's back (the file system said so); the walk goes on past it
      if (this.store.reserve(id, ifname, ip, this.rangeId, false)) return this.config(ip, ri);
    }
    for (const c of cooling.sort((a, b) => a.at - b.at)) {
      if (!this.store.reserve(id, ifname, c.ip, this.rangeId, false)) continue;
      this.notes.push(NOTE.cooling(formatIP(c.ip), `${((this.policy.now - c.at) / 1000).toFixed(1)}s`));
      return this.config(c.ip, c.ri);
    }
    // full: free addresses always come first; only now take over the oldest lease from before the boot
    const stale = reclaimable(this.set, this.store, this.policy)[0];
    if (stale) {
      const previous = this.store.takeOver(stale.ip, id, ifname, this.rangeId);
      this.notes.push(
        NOTE.reclaimed(formatIP(stale.ip), previous.replace("\r\n", "/"), new Date(stale.writtenMs).toISOString()),
      );
      return this.config(stale.ip, stale.rangeIndex);
    }
    throw E.exhausted(formatRangeSet(this.set));
  }
}
