import { describe, expect, it } from "vitest";
import { Allocator } from "../../src/allocator/allocator.js";
import { canServe, type PoolPolicy, poolCounts, reclaimable, unleased } from "../../src/allocator/pool.js";
import type { Store } from "../../src/allocator/store.js";
import { goTrim } from "../../src/go/strings.js";
import { Exclusions } from "../../src/net/exclusions.js";
import { type Addr, formatIP, nextAddr, parseCIDR, parseIP, sameAddr } from "../../src/net/ip.js";
import { canonicalizeRangeSet, type RangeSet, rangeContains, rangeSetContains } from "../../src/net/range.js";
import { LeaseIndex } from "../../src/store/lease-index.js";

const ip = (s: string): Addr => parseIP(s)!;

/** A Store in memory, for the pure allocator: lease files as a map, the index built from it on each question. */
class MemStore implements Store {
  files = new Map<string, string>();
  last = new Map<number, string>();
  /** names that exist on "disk" but that the index does not show: a writer behind its back */
  hidden = new Set<string>();
  mtimes = new Map<string, number>();
  statics = new Map<string, string>();
  released = new Map<string, number>();
  private facts(): LeaseIndex {
    const leases = [...this.files]
      .filter(([n]) => !this.hidden.has(n))
      .map(([n, o]) => ({ ip: ip(n), owner: goTrim(o) }));
    return LeaseIndex.fromLeases(leases);
  }
  nextUnused(from: Addr, to: Addr) {
    return this.facts().nextUnused(from, to);
  }
  countLeased(from: Addr, to: Addr) {
    return this.facts().countIn(from, to);
  }
  forEachLeased(from: Addr, to: Addr, fn: (n: bigint) => void) {
    this.facts().forEachIn(from, to, fn);
  }
  leaseWrittenMs(a: Addr) {
    const name = formatIP(a);
    return this.files.has(name) ? (this.mtimes.get(name) ?? Date.now()) : null;
  }
  isStatic(a: Addr) {
    const name = formatIP(a);
    return this.statics.get(name) !== undefined && this.statics.get(name) === goTrim(this.files.get(name) ?? "");
  }
  releasedAt(a: Addr) {
    return this.released.get(formatIP(a));
  }
  owned(key: string) {
    return [...this.files]
      .filter(([, o]) => goTrim(o) === key)
      .map(([n]) => n)
      .sort();
  }
  getByID(id: string, ifname: string) {
    return [...new Set([...this.owned(`${goTrim(id)}\r\n${ifname}`), ...this.owned(goTrim(id))])].sort().map(ip);
  }
  lastReservedIP(rangeId: number) {
    const t = this.last.get(rangeId);
    return t === undefined ? null : parseIP(t);
  }
  reserve(id: string, ifname: string, a: Addr, rangeId: number, requested: boolean) {
    const name = formatIP(a);
    if (this.files.has(name)) return false;
    this.files.set(name, `${goTrim(id)}\r\n${ifname}`);
    this.last.set(rangeId, name);
    if (requested) this.statics.set(name, `${goTrim(id)}\r\n${ifname}`);
    return true;
  }
  takeOver(a: Addr, id: string, ifname: string, rangeId: number) {
    const name = formatIP(a);
    const previous = goTrim(this.files.get(name) ?? "");
    this.files.set(name, `${goTrim(id)}\r\n${ifname}`);
    this.mtimes.set(name, Date.now());
    this.last.set(rangeId, name);
    return previous;
  }
  releaseByID(id: string, ifname: string) {
    let names = this.owned(`${goTrim(id)}\r\n${ifname}`);
    if (names.length === 0) names = this.owned(goTrim(id));
    for (const n of names) this.files.delete(n);
  }
}

const policy = (o: Partial<Omit<PoolPolicy, "reclaimBefore">> & { before?: number | null } = {}): PoolPolicy => ({
  reclaimBefore: () => o.before ?? null,
  reuseDelayMs: o.reuseDelayMs ?? 0,
  now: o.now ?? Date.now(),
});

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

describe("iteration order matches host-local's RangeIter", () => {
  const sets: [string, RangeSet][] = [
    ["one /28", canonicalizeRangeSet([{ subnet: parseCIDR("10.0.0.0/28")! }])],
    [
      "two ranges, explicit bounds, gateway inside the second",
      canonicalizeRangeSet([
        { subnet: parseCIDR("10.0.0.0/29")!, rangeStart: ip("10.0.0.3") },
        {
          subnet: parseCIDR("10.0.1.0/28")!,
          rangeStart: ip("10.0.1.4"),
          rangeEnd: ip("10.0.1.9"),
          gateway: ip("10.0.1.6"),
        },
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
    it(`${label}: every start point, with and without leased addresses`, () => {
      const all = referenceOrder(set, null);
      const starts: (Addr | null)[] = [null, ip("192.0.2.1"), ...all, ...set.map((r) => r.gateway)];
      const rnd = mulberry32(set.length * 7919);
      for (const last of starts) {
        const ref = referenceOrder(set, last);
        const store = new MemStore();
        const order = () =>
          [...unleased(set, store, last)].map(([ri, n]) => formatIP({ v6: set[ri]!.rangeStart.v6, n }));
        expect(order()).toEqual(ref.map(formatIP));
        // with random addresses leased, the order is the reference's without them
        const taken = new Set(all.filter(() => rnd() < 0.6).map(formatIP));
        for (const t of taken) store.files.set(t, "x\r\neth0");
        expect(order()).toEqual(ref.map(formatIP).filter((a) => !taken.has(a)));
      }
    });
  }
  it("skips excluded intervals in the same order, with a binary search, not a walk", () => {
    const [r] = canonicalizeRangeSet([{ subnet: parseCIDR("10.3.0.0/24")! }]);
    const excl = Exclusions.of(
      [
        { from: ip("10.3.0.10").n, to: ip("10.3.0.19").n },
        { from: ip("10.3.0.2").n, to: ip("10.3.0.2").n },
        { from: ip("10.3.0.20").n, to: ip("10.3.0.250").n },
      ],
      false,
    );
    const set = [{ ...r!, exclude: excl.clip(r!.rangeStart.n, r!.rangeEnd.n)! }];
    const got = [...unleased(set, new MemStore(), ip("10.3.0.5"))].map(([, n]) => formatIP({ v6: false, n }));
    expect(got).toEqual([
      "10.3.0.6",
      "10.3.0.7",
      "10.3.0.8",
      "10.3.0.9",
      "10.3.0.251",
      "10.3.0.252",
      "10.3.0.253",
      "10.3.0.254",
      "10.3.0.3",
      "10.3.0.4",
      "10.3.0.5",
    ]);
  });
});

describe("Allocator", () => {
  const set = canonicalizeRangeSet([{ subnet: parseCIDR("10.9.0.0/29")! }]); // .2 - .6 usable
  const get = (store: MemStore, id: string, want: Addr | null = null, ifname = "eth0") =>
    formatIP(new Allocator(set, 0, store, policy(), []).get(id, ifname, want).address.ip);

  it("hands out round-robin after last_reserved_ip", () => {
    const store = new MemStore();
    expect(get(store, "a")).toBe("10.9.0.2");
    expect(get(store, "b")).toBe("10.9.0.3");
    store.files.delete("10.9.0.2");
    expect(get(store, "c")).toBe("10.9.0.4");
    expect(store.files.get("10.9.0.4")).toBe("c\r\neth0");
    expect(store.last.get(0)).toBe("10.9.0.4");
  });
  it("refuses a duplicate (id, ifname), also against a legacy id-only lease", () => {
    const store = new MemStore();
    get(store, "a");
    expect(() => get(store, "a")).toThrow("10.9.0.2 has been allocated to a, duplicate allocation is not allowed");
    store.files.set("10.9.0.5", "legacy");
    expect(() => get(store, "legacy", null, "eth1")).toThrow("10.9.0.5 has been allocated to legacy");
    expect(get(store, "a", null, "eth1")).toBe("10.9.0.3");
  });
  it("gives a requested address, refuses the gateway and a taken one", () => {
    const store = new MemStore();
    expect(get(store, "a", ip("10.9.0.6"))).toBe("10.9.0.6");
    expect(store.statics.get("10.9.0.6")).toBe("a\r\neth0");
    expect(() => get(store, "b", ip("10.9.0.1"))).toThrow("requested ip 10.9.0.1 is subnet's gateway");
    expect(() => get(store, "b", ip("10.9.0.6"))).toThrow(
      "requested IP address 10.9.0.6 is not available in range set 10.9.0.1-10.9.0.6",
    );
  });
  it("trusts the exclusive create over the index: a name it did not see is skipped, not doubled", () => {
    const store = new MemStore();
    store.files.set("10.9.0.2", "someone\r\neth0");
    store.hidden.add("10.9.0.2");
    expect(get(store, "a")).toBe("10.9.0.3");
    expect(store.files.get("10.9.0.2")).toBe("someone\r\neth0");
  });
  it("reports exhaustion with the range set", () => {
    const store = new MemStore();
    for (const id of ["a", "b", "c", "d", "e"]) get(store, id);
    expect(() => get(store, "f")).toThrow("no IP addresses available in range set: 10.9.0.1-10.9.0.6");
  });
  it("handles a sparse IPv6 /64 without enumerating it", () => {
    const big = canonicalizeRangeSet([{ subnet: parseCIDR("fd00:1::/64")! }]);
    const store = new MemStore();
    expect(formatIP(new Allocator(big, 0, store, policy(), []).get("a", "eth0", null).address.ip)).toBe("fd00:1::2");
    store.last.set(0, "fd00:1::ffff:ffff:ffff:ffff");
    expect(formatIP(new Allocator(big, 0, store, policy(), []).get("b", "eth0", null).address.ip)).toBe("fd00:1::3");
  });
  it("passes over cooling addresses while another is free, then takes the one released longest ago", () => {
    const store = new MemStore();
    const p = policy({ reuseDelayMs: 60_000, now: 1_000_000 });
    const notes: string[] = [];
    const take = (id: string) => formatIP(new Allocator(set, 0, store, p, notes).get(id, "eth0", null).address.ip);
    for (const id of ["a", "b", "c", "d"]) take(id); // .2 .3 .4 .5
    store.files.delete("10.9.0.3");
    store.released.set("10.9.0.3", 990_000);
    store.files.delete("10.9.0.2");
    store.released.set("10.9.0.2", 995_000);
    expect(take("e")).toBe("10.9.0.6");
    expect(notes).toEqual([]);
    expect(take("f")).toBe("10.9.0.3"); // released 10 s ago, before .2
    expect(notes[0]).toMatch(/reusing 10\.9\.0\.3, released 10\.0s ago/);
  });
});

describe("reclaiming leases from before the boot", () => {
  const BOOT = 1_700_000_000_000;
  const set = canonicalizeRangeSet([{ subnet: parseCIDR("10.9.0.0/29")! }]); // .2 - .6 usable
  const full = () => {
    const store = new MemStore();
    for (const [i, t] of [BOOT + 5, BOOT - 300, BOOT + 9, BOOT - 900, BOOT + 1].entries()) {
      store.files.set(`10.9.0.${i + 2}`, `old${i}\r\neth0`);
      store.mtimes.set(`10.9.0.${i + 2}`, t);
    }
    return store;
  };
  const get = (store: MemStore, s: RangeSet, before: number | null, notes: string[] = []) =>
    formatIP(new Allocator(s, 0, store, policy({ before }), notes).get("new", "eth0", null).address.ip);

  it("takes over the oldest pre-boot lease only when the set is full, and says so", () => {
    const store = full();
    const notes: string[] = [];
    expect(get(store, set, BOOT, notes)).toBe("10.9.0.5");
    expect(store.files.get("10.9.0.5")).toBe("new\r\neth0");
    expect(store.last.get(0)).toBe("10.9.0.5");
    expect(notes).toHaveLength(1);
    expect(notes[0]).toContain("reclaimed 10.9.0.5 from old3/eth0");
  });
  it("uses a free address before any stale lease", () => {
    const store = full();
    store.files.delete("10.9.0.6");
    expect(get(store, set, BOOT)).toBe("10.9.0.6");
  });
  it("is off without a boot time (reclaimAfterReboot: false)", () => {
    expect(() => get(full(), set, null)).toThrow("no IP addresses available in range set");
  });
  it("never takes over an excluded address or one its owner asked for", () => {
    const [r] = set;
    const excluding = [{ ...r!, exclude: Exclusions.of([{ from: ip("10.9.0.5").n, to: ip("10.9.0.5").n }], false) }];
    const store = full();
    store.statics.set("10.9.0.3", "old1\r\neth0"); // the second oldest, made for a requested address
    // .5 (oldest) is excluded, .3 (next) is static: nothing else is from before the boot
    expect(() => get(store, excluding, BOOT)).toThrow("no IP addresses available in range set");
    store.statics.set("10.9.0.3", "someone-else\r\neth0"); // a stale mark for another owner protects nothing
    expect(get(store, excluding, BOOT)).toBe("10.9.0.3");
  });
  it("one count for everyone: STATUS, usage and metrics agree with what ADD would take over", () => {
    const store = full();
    const p = policy({ before: BOOT });
    expect(reclaimable(set, store, p).map((x) => formatIP(x.ip))).toEqual(["10.9.0.5", "10.9.0.3"]);
    expect(poolCounts(set, store, p)).toEqual({ total: 5n, used: 5, free: 0n, reclaimable: 2, cooling: 0 });
    expect(canServe(set, store, p)).toBe(true);
    expect(canServe(set, store, policy({ before: BOOT - 1000 }))).toBe(false);
    expect(canServe(set, store, policy())).toBe(false);
    store.files.delete("10.9.0.2");
    expect(canServe(set, store, policy())).toBe(true);
  });
});
