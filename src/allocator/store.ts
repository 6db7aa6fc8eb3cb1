// What the allocator needs from storage, in its own words, as host-local's backend.Store is (Reserve,
// LastReservedIP, ReleaseByID, GetByID, ...). src/store implements it on the network directory; the allocator
// never sees a file, an owner-key format or the index.
import type { Addr } from "../net/ip.js";

/** What is leased: the read side, which the operator CLI also serves from a plain scan of the files. */
export interface LeaseFacts {
  /** The first address in [from, to] (one family) that is not leased, or null. */
  nextUnused(from: Addr, to: Addr): bigint | null;
  /** How many addresses in [from, to] are leased. */
  countLeased(from: Addr, to: Addr): number;
  /** Every leased address in [from, to], in no particular order. */
  forEachLeased(from: Addr, to: Addr, fn: (n: bigint) => void): void;
  /** When the lease of `ip` was last written (ms since the epoch), or null when there is no regular lease file. */
  leaseWrittenMs(ip: Addr): number | null;
  /** Whether the lease of `ip` was made for an address its owner asked for (never taken over after a reboot). */
  isStatic(ip: Addr): boolean;
  /** When `ip` was last released by DEL or GC (ms since the epoch), if that is remembered. */
  releasedAt(ip: Addr): number | undefined;
}

export interface Store extends LeaseFacts {
  /** The addresses (id, ifname) holds, or, when it holds none, those of the legacy id-only key; sorted as names. */
  getByID(id: string, ifname: string): Addr[];
  /** The address last reserved in range set `rangeId` (last_reserved_ip.N), or null. */
  lastReservedIP(rangeId: number): Addr | null;
  /**
   * Leases `ip` to (id, ifname) and records it as range set `rangeId`'s last reservation; false when the address
   * is taken (whatever any index said). `requested`: the owner asked for this very address.
   */
  reserve(id: string, ifname: string, ip: Addr, rangeId: number, requested: boolean): boolean;
  /** Gives the lease of `ip` to (id, ifname) in place, whole or not at all; returns the previous owner's text. */
  takeOver(ip: Addr, id: string, ifname: string, rangeId: number): string;
  /** One pass of host-local's ReleaseByID: the leases of (id, ifname), or, if there are none, the legacy ones. */
  releaseByID(id: string, ifname: string): void;
}
