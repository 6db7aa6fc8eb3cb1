// Garbage collection for runtimes that never call CNI GC (containerd does not): the pod sandboxes the CRI runtime
// lists are the live attachments; a lease whose sandbox is missing from `misses` listings in a row, and is older
// than the grace period, is released through `local-ipam gc` (the code CNI GC runs, under the plugin's lock, which
// checks the owner and the age again). A listing that fails counts for nothing: while the runtime cannot be asked,
// nothing is released.

/** A row of `local-ipam leases --json`. */
export interface LeaseRow {
  network: string;
  address: string;
  containerId: string;
  ifname: string;
  ageSeconds: number;
  readable: boolean;
}

/** An attachment to release: the network and the owner, as `local-ipam gc --stale` takes it. */
interface StaleAttachment {
  network: string;
  /** "ID/IFNAME", or a bare ID for a legacy lease */
  stale: string;
}

const keyOf = (l: LeaseRow) => `${l.network}\u0000${l.containerId}\u0000${l.ifname}`;

/** Counts, per attachment, the listings in a row it was missing from. Pure: no clock, no I/O. */
export class AbsenceTracker {
  private readonly misses = new Map<string, number>();

  constructor(
    readonly needed: number,
    readonly graceSeconds: number,
  ) {}

  /**
   * One complete, successful listing: the sandbox IDs the runtime has, and the leases on disk read after it began.
   * Returns the attachments missing from `needed` listings in a row whose leases are all older than the grace.
   */
  observe(sandboxes: ReadonlySet<string>, leases: readonly LeaseRow[]): StaleAttachment[] {
    const youngest = new Map<string, LeaseRow>();
    for (const l of leases) {
      if (!l.readable || l.containerId === "") continue; // nothing to match it with: never ours to judge
      const k = keyOf(l);
      const seen = youngest.get(k);
      if (!seen || l.ageSeconds < seen.ageSeconds) youngest.set(k, l);
    }
    const out: StaleAttachment[] = [];
    for (const [k, l] of youngest) {
      if (sandboxes.has(l.containerId)) {
        this.misses.delete(k);
        continue;
      }
      const n = (this.misses.get(k) ?? 0) + 1;
      this.misses.set(k, n);
      if (n >= this.needed && l.ageSeconds >= this.graceSeconds)
        out.push({ network: l.network, stale: l.ifname === "" ? l.containerId : `${l.containerId}/${l.ifname}` });
    }
    // forget attachments that no longer have a lease (released, by us or by a DEL)
    for (const k of this.misses.keys()) if (!youngest.has(k)) this.misses.delete(k);
    return out;
  }

  /** How many attachments are being watched (missing from at least one listing). */
  get watching(): number {
    return this.misses.size;
  }
}
