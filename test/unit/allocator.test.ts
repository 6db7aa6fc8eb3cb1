import { describe, expect, it } from "vitest";
import { Allocator, LeaseView, RangeSetPool, releaseById } from "../../src/allocator/allocator.js";
import { DenseBitmap, SparseSet } from "../../src/allocator/bitmap.js";
import { LeaseTable } from "../../src/allocator/lease-table.js";
import { type NamedLease, type Store, goTrim, leaseAddr } from "../../src/allocator/store.js";
import { type Addr, formatIP, nextAddr, parseCIDR, parseIP, sameAddr } from "../../src/net/ip.js";
import { type RangeSet, canonicalizeRangeSet, rangeContains, rangeSetContains } from "../../src/net/range.js";

const ip = (s: string): Addr => parseIP(s)!;

/** A Store in memory, for the pure allocator. */
class MemStore implements Store {
  files = new Map<string, string>();
  last = new Map<number, string>();
  /** names that exist on "disk" but that names() does not show: a writer behind our back */
  hidden = new Set<string>();
  scan(): NamedLease[] {
    return [...this.files.keys()]
      .filter((n) => leaseAddr(n))
      .sort()
      .map((name) => ({ name, ip: leaseAddr(name)!, owner: goTrim(this.files.get(name)!) }));
  }
  /** like an index that missed the hidden names; rebuilt on each call, as tests edit `files` directly */
  table() {
    return LeaseTable.fromScan(this.scan().filter((l) => !this.hidden.has(l.name)));
  }
  rescan() {
    this.hidden.clear();
    return this.table();
  }
  readLease(name: string) {
    return this.files.get(name) ?? null;
  }
  reserve(name: string, owner: string) {
    if (this.files.has(name)) return false;
    this.files.set(name, owner);
    return true;
  }
  remove(name: string) {
    return this.files.delete(name);
  }
  mtimes = new Map<string, number>();
  replace(name: string, owner: string) {
    this.files.set(name, owner);
    this.mtimes.set(name, Date.now());
  }
  mtimeMs(name: string) {
    return this.files.has(name) ? (this.mtimes.get(name) ?? Date.now()) : null;
  }
  released = new Map<string, number>();
  releases() {
    return this.released;
  }
  noteRelease(name: string) {
    this.released.set(name, Date.now());
  }
  forgetRelease(name: string) {
    this.released.delete(name);
  }
  lastReserved(id: number) {
    return this.last.get(id) ?? null;
  }
  setLastReserved(id: number, s: string) {
    this.last.set(id, s);
  }
}

/** host-local's RangeIter (range_iter.go), transcribed literally, as the oracle for the bitmap iteration. */
function referenceOrder(set: RangeSet, last: Addr | null): Addr[] {
  let rangeIdx = 0;
  let cur: Addr | null = null;
  let startIP: Addr | null = null;
  if (last && rangeSetContains(set, last)) {
    rangeIdx = set.findIndex((r) => rangeContains(r, last));
    cur = last;
  } else {
    startIP = set[0]!.rangeStart;
  }
  const next = (): Addr | null => {
    let r = set[rangeIdx]!;
    if (cur === null) {
      cur = r.rangeStart;
      startIP = cur;
      if (sameAddr(cur, r.gateway)) return next();
      return cur;
    }
    if (sameAddr(cur, r.rangeEnd)) {
      rangeIdx = (rangeIdx + 1) % set.length;
      r = set[rangeIdx]!;
      cur = r.rangeStart;
    } else {
      cur = nextAddr(cur);
    }
    if (startIP === null) startIP = cur;
    else if (sameAddr(cur, startIP)) return null;
    if (sameAddr(cur, r.gateway)) return next();
    return cur;
  };
  const out: Addr[] = [];
  for (let a = next(); a; a = next()) out.push(a);
  return out;
}

function mulberry32(seed: number) {
  return () => {
    seed |= 0;
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe("offset sets", () => {
  for (const make of [(n: bigint) => new DenseBitmap(n), (n: bigint) => new SparseSet(n)]) {
    const name = make(1n).constructor.name;
    it(`${name}: nextClear skips taken offsets across word boundaries`, () => {
      const s = make(100n);
      for (let i = 0n; i < 70n; i++) s.add(i);
      expect(s.nextClear(0n, 99n)).toBe(70n);
      expect(s.nextClear(0n, 69n)).toBe(-1n);
      s.delete(33n);
      expect(s.nextClear(0n, 99n)).toBe(33n);
      expect(s.count()).toBe(69);
      for (let i = 0n; i < 100n; i++) s.add(i);
      expect(s.nextClear(0n, 99n)).toBe(-1n);
      expect(s.nextClear(50n, 1000n)).toBe(-1n);
    });
  }
});

describe("iteration order matches host-local's RangeIter", () => {
  const sets: [string, RangeSet][] = [
    ["one /28", canonicalizeRangeSet([{ subnet: parseCIDR("10.0.0.0/28")! }])],
    [
      "two ranges, explicit bounds, gateway inside the second",
      canonicalizeRangeSet([
        { subnet: parseCIDR("10.0.0.0/29")!, rangeStart: ip("10.0.0.3") },
        { subnet: parseCIDR("10.0.1.0/28")!, rangeStart: ip("10.0.1.4"), rangeEnd: ip("10.0.1.9"), gateway: ip("10.0.1.6") },
      ]),
    ],
    [
      "gateway at rangeStart and at rangeEnd",
      canonicalizeRangeSet([
        { subnet: parseCIDR("10.2.0.0/29")!, rangeStart: ip("10.2.0.1") },
        { subnet: parseCIDR("10.2.1.0/29")!, gateway: ip("10.2.1.6") },
      ]),
    ],
    ["IPv6 /124", canonicalizeRangeSet([{ subnet: parseCIDR("fd00::/124")! }])],
  ];
  for (const [label, set] of sets) {
    it(`${label}: every start point, with and without taken addresses`, () => {
      const all = referenceOrder(set, null);
      const starts: (Addr | null)[] = [null, ip("192.0.2.1"), ...all, ...set.map((r) => r.gateway)];
      const rnd = mulberry32(set.length * 7919);
      for (const last of starts) {
        const ref = referenceOrder(set, last);
        const pool = new RangeSetPool(set);
        expect([...pool.candidates(last)].map(([ri, off]) => formatIP(pool.addrAt(ri, off)))).toEqual(ref.map(formatIP));
        // with random addresses taken, the first free candidate is the reference's first untaken address
        const taken = new Set(all.filter(() => rnd() < 0.6).map(formatIP));
        for (const t of taken) pool.mark(ip(t));
        const expected = ref.map(formatIP).filter((a) => !taken.has(a));
        expect([...pool.candidates(last)].map(([ri, off]) => formatIP(pool.addrAt(ri, off)))).toEqual(expected);
      }
    });
  }
});

describe("Allocator", () => {
  const set = canonicalizeRangeSet([{ subnet: parseCIDR("10.9.0.0/29")! }]); // .2 - .6 usable
  const alloc = (store: MemStore) => new Allocator(set, 0, store, new LeaseView(store));

  it("hands out round-robin after last_reserved_ip and writes the owner key", () => {
    const store = new MemStore();
    expect(formatIP(alloc(store).get("a", "eth0", null).address.ip)).toBe("10.9.0.2");
    expect(formatIP(alloc(store).get("b", "eth0", null).address.ip)).toBe("10.9.0.3");
    store.remove("10.9.0.2");
    expect(formatIP(alloc(store).get("c", "eth0", null).address.ip)).toBe("10.9.0.4");
    expect(store.files.get("10.9.0.4")).toBe("c\r\neth0");
    expect(store.last.get(0)).toBe("10.9.0.4");
  });
  it("refuses a duplicate (id, ifname), also against a legacy id-only lease", () => {
    const store = new MemStore();
    alloc(store).get("a", "eth0", null);
    expect(() => alloc(store).get("a", "eth0", null)).toThrow("10.9.0.2 has been allocated to a, duplicate allocation is not allowed");
    store.files.set("10.9.0.5", "legacy");
    expect(() => alloc(store).get("legacy", "eth1", null)).toThrow("10.9.0.5 has been allocated to legacy");
    expect(formatIP(alloc(store).get("a", "eth1", null).address.ip)).toBe("10.9.0.3");
  });
  it("gives a requested address, refuses the gateway and a taken one", () => {
    const store = new MemStore();
    expect(formatIP(alloc(store).get("a", "eth0", ip("10.9.0.6")).address.ip)).toBe("10.9.0.6");
    expect(() => alloc(store).get("b", "eth0", ip("10.9.0.1"))).toThrow("requested ip 10.9.0.1 is subnet's gateway");
    expect(() => alloc(store).get("b", "eth0", ip("10.9.0.6"))).toThrow(
      "requested IP address 10.9.0.6 is not available in range set 10.9.0.1-10.9.0.6",
    );
  });
  it("trusts the exclusive create over the bitmap: a name it did not see is skipped, not doubled", () => {
    const store = new MemStore();
    store.files.set("10.9.0.2", "someone\r\neth0");
    store.hidden.add("10.9.0.2");
    expect(formatIP(alloc(store).get("a", "eth0", null).address.ip)).toBe("10.9.0.3");
    expect(store.files.get("10.9.0.2")).toBe("someone\r\neth0");
  });
  it("reports exhaustion with the range set", () => {
    const store = new MemStore();
    for (const id of ["a", "b", "c", "d", "e"]) alloc(store).get(id, "eth0", null);
    expect(() => alloc(store).get("f", "eth0", null)).toThrow("no IP addresses available in range set: 10.9.0.1-10.9.0.6");
  });
  it("releases as host-local: new key first, legacy only if none, both when released twice", () => {
    const store = new MemStore();
    store.files.set("10.9.0.2", "x\r\neth0");
    store.files.set("10.9.0.3", "x");
    releaseById(store, new LeaseView(store), "x", "eth0", 1);
    expect([...store.files.keys()]).toEqual(["10.9.0.3"]);
    releaseById(store, new LeaseView(store), "x", "eth0", 1);
    expect([...store.files.keys()]).toEqual([]);
    store.files.set("10.9.0.2", "x\r\neth0");
    store.files.set("10.9.0.3", "  x \n");
    releaseById(store, new LeaseView(store), "x", "eth0", 2);
    expect(store.files.size).toBe(0);
  });
  it("handles a sparse IPv6 /64 without allocating a dense bitmap", () => {
    const big = canonicalizeRangeSet([{ subnet: parseCIDR("fd00:1::/64")! }]);
    const store = new MemStore();
    const a = new Allocator(big, 0, store, new LeaseView(store));
    expect(formatIP(a.get("a", "eth0", null).address.ip)).toBe("fd00:1::2");
    store.last.set(0, "fd00:1::ffff:ffff:ffff:ffff");
    const b = new Allocator(big, 0, store, new LeaseView(store));
    expect(formatIP(b.get("b", "eth0", null).address.ip)).toBe("fd00:1::3"); // wrapped past the end and skipped ::1, ::2
  });
});

describe("reclaiming leases from before the boot", () => {
  const set = canonicalizeRangeSet([{ subnet: parseCIDR("10.9.0.0/29")! }]); // .2 - .6 usable
  const BOOT = 1_700_000_000_000;
  const full = () => {
    const store = new MemStore();
    for (const [i, t] of [BOOT + 5, BOOT - 300, BOOT + 9, BOOT - 900, BOOT + 1].entries()) {
      store.files.set(`10.9.0.${i + 2}`, `old${i}\r\neth0`);
      store.mtimes.set(`10.9.0.${i + 2}`, t);
    }
    return store;
  };
  const opts = (before: number | null) => ({ reclaimBefore: before, notes: [] as string[] });

  it("takes over the oldest pre-boot lease only when the set is full, and says so", () => {
    const store = full();
    const o = opts(BOOT);
    const got = new Allocator(set, 0, store, new LeaseView(store), o).get("new", "eth0", null);
    expect(formatIP(got.address.ip)).toBe("10.9.0.5");
    expect(store.files.get("10.9.0.5")).toBe("new\r\neth0");
    expect(store.last.get(0)).toBe("10.9.0.5");
    expect(o.notes).toHaveLength(1);
    expect(o.notes[0]).toContain("reclaimed 10.9.0.5 from old3/eth0");
  });
  it("uses a free address before any stale lease", () => {
    const store = full();
    store.files.delete("10.9.0.6");
    const got = new Allocator(set, 0, store, new LeaseView(store), opts(BOOT)).get("new", "eth0", null);
    expect(formatIP(got.address.ip)).toBe("10.9.0.6");
  });
  it("is off without a boot time (reclaimAfterReboot: false)", () => {
    const store = full();
    expect(() => new Allocator(set, 0, store, new LeaseView(store), opts(null)).get("new", "eth0", null)).toThrow(
      "no IP addresses available in range set",
    );
  });
  it("STATUS: a full set can serve only if it holds a stale lease", async () => {
    const { canServe } = await import("../../src/allocator/allocator.js");
    const store = full();
    expect(canServe(set, new LeaseView(store), store, BOOT)).toBe(true);
    expect(canServe(set, new LeaseView(store), store, BOOT - 1000)).toBe(false);
    expect(canServe(set, new LeaseView(store), store, null)).toBe(false);
    store.files.delete("10.9.0.2");
    expect(canServe(set, new LeaseView(store), store, null)).toBe(true);
  });
});
