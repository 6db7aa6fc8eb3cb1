// What the allocator needs from storage, and nothing else: the store (src/store) implements it on files.
import type { Addr } from "../net/ip.js";
import { formatIP, parseIP } from "../net/ip.js";
import type { LeaseTable, ScannedLease } from "./lease-table.js";

export interface NamedLease extends ScannedLease {
  name: string;
}

export interface Store {
  /** The leases: from the index while it is current, else from a scan of the lease files. */
  table(): LeaseTable;
  /** Rebuilds the table from the lease files, when the index turned out to disagree with them. */
  rescan(): LeaseTable;
  /** Every lease file with its owner, read from disk (GC, reclamation). */
  scan(): NamedLease[];
  /** The raw content of the lease named `name`, or null when it is not a readable regular file. */
  readLease(name: string): string | null;
  /** Creates the lease file `name` holding `owner`, whole or not at all; false when the name is taken. */
  reserve(name: string, owner: string): boolean;
  /** Replaces the content of the lease `name` (held by `previous`) with `owner`, whole or not at all. */
  replace(name: string, owner: string, previous: string | null): void;
  /** Removes the lease `name` held by `owner`; false when it could not be removed. */
  remove(name: string, owner: string | null): boolean;
  /** Last modification of the lease `name` (ms since the epoch), or null when it is not a regular file. */
  mtimeMs(name: string): number | null;
  /** When addresses were last released (ms since the epoch), for the reuse delay; kept in our own state. */
  releases(): Map<string, number>;
  noteRelease(name: string): void;
  forgetRelease(name: string): void;
  /** The raw content of last_reserved_ip.<rangeId>, or null. */
  lastReserved(rangeId: number): string | null;
  setLastReserved(rangeId: number, ip: string): void;
}

/** The owner text host-local writes: trimmed container ID, CRLF, interface name. */
export function ownerKey(id: string, ifname: string): string {
  return `${goTrim(id)}\r\n${ifname}`;
}

/** Go's strings.TrimSpace for the ASCII and Unicode spaces Go knows (not U+FEFF, which JS's trim removes). */
export function goTrim(s: string): string {
  return s.replace(/^[\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+|[\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+$/g, "");
}

/** The address a lease file is named by, or null: names are Go's canonical form ("010.0.0.1" is no lease). */
export function leaseAddr(name: string): Addr | null {
  const ip = parseIP(name);
  return ip && formatIP(ip) === name ? ip : null;
}
