// What the allocator needs from storage, and nothing else: the store (src/store) implements it on files.
export interface Store {
  /** Names of the entries of the network directory, sorted; leases are the ones named by an address. */
  names(): readonly string[];
  /** The raw content of the lease named `name`, or null when it is not a readable regular file. */
  readLease(name: string): string | null;
  /** Creates the lease file `name` holding `owner`, whole or not at all; false when the name is taken. */
  reserve(name: string, owner: string): boolean;
  /** Removes the lease `name`; false when it was already gone. */
  remove(name: string): boolean;
  /** Replaces the content of the lease `name` with `owner`, whole or not at all. */
  replace(name: string, owner: string): void;
  /** Last modification of the lease `name` (ms since the epoch), or null when it is not a regular file. */
  mtimeMs(name: string): number | null;
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
