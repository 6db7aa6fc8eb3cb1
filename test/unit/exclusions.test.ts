// Exclusions and the exclude-list parser: the fast IPv4 path must agree with the general parser on every entry
// it takes, and the compact intervals must answer as a plain set of addresses would.
import { describe, expect, it } from "vitest";
import { Exclusions, plainV4Interval, v4IntervalsOf } from "../../src/net/exclusions.js";
import { broadcastOf, networkOf, parseCIDR, parseIP } from "../../src/net/ip.js";

/** A deterministic generator (xorshift32), so a failure names a seed that reproduces it. */
function rng(seed: number): (n: number) => number {
  let x = seed || 1;
  return (n) => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) % n;
  };
}

const quad = (n: number) => [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join(".");
const shown = (b: Uint32Array) =>
  Array.from({ length: b.length / 2 }, (_, i) => `${quad(b[2 * i]!)}-${quad(b[2 * i + 1]!)}`);

/** What the general parser (the one that names a bad entry) makes of an IPv4 entry, or null. */
function generalV4(entry: string): [number, number] | null {
  if (entry.includes("/")) {
    const c = parseCIDR(entry);
    if (!c || c.ip.v6 || c.maskBits !== 32) return null;
    const net = networkOf(c.ip, c.prefix);
    return net.n === c.ip.n ? [Number(net.n), Number(broadcastOf(net, c.prefix).n)] : null;
  }
  const ip = parseIP(entry);
  return ip && !ip.v6 ? [Number(ip.n), Number(ip.n)] : null;
}

/** Strings near the IPv4 syntax: mutations of valid entries. */
function entryNear(r: (n: number) => number): string {
  const base = `${r(4) === 0 ? r(300) : 10}.${r(3)}.${r(2)}.${r(256)}`;
  const withMask = r(3) === 0 ? `${base}/${r(5) === 0 ? `0${r(40)}` : 24 + r(10)}` : base;
  const chars = [...withMask];
  switch (r(8)) {
    case 0:
      chars.splice(r(chars.length), 1);
      break;
    case 1:
      chars.splice(r(chars.length + 1), 0, ".0/: x-+\u0661"[r(10)]!);
      break;
    case 2:
      chars[r(chars.length)] = "0";
      break;
  }
  return chars.join("");
}

describe("plain IPv4 entries", () => {
  it("are exactly the IPv4 entries the general parser accepts, with the same interval", () => {
    const r = rng(7);
    let taken = 0;
    for (let i = 0; i < 20000; i++) {
      const e = entryNear(r);
      const fast = plainV4Interval(e);
      const general = generalV4(e);
      if (fast) taken++;
      expect([e, fast], `entry ${JSON.stringify(e)}`).toEqual([e, general]);
    }
    expect(taken).toBeGreaterThan(5000); // the generator does make valid ones
  });
  it.each([
    ["10.0.0.01", null], // Go's ParseIP: no leading zeros
    ["10.0.0.0/00000024", [167772160, 167772415]], // Go's ParseCIDR: up to 8 mask digits, leading zeros allowed
    ["10.0.0.0/000000024", null],
    ["0.0.0.0/0", [0, 2 ** 32 - 1]],
    ["255.255.255.255", [2 ** 32 - 1, 2 ** 32 - 1]],
    [" 10.0.0.1", null],
    [null, null],
  ])("%j -> %j", (entry, want) => {
    expect(plainV4Interval(entry)).toEqual(want);
  });
});

describe("v4IntervalsOf (the reference of the native v4Intervals: native/smoke.js has the same cases)", () => {
  it.each([
    [[], [], []],
    [["10.0.0.5"], ["10.0.0.5-10.0.0.5"], []],
    [
      ["10.0.0.9", "10.0.0.0/29", "10.0.0.8", "10.0.0.4/30", "10.0.0.11"],
      ["10.0.0.0-10.0.0.9", "10.0.0.11-10.0.0.11"],
      [],
    ],
    [["10.0.0.0/24", "10.0.0.7", "10.0.0.128/25"], ["10.0.0.0-10.0.0.255"], []],
    [["255.255.255.255", "0.0.0.0/0", "255.255.255.255/32"], ["0.0.0.0-255.255.255.255"], []],
    [["255.255.255.255", "255.255.255.254"], ["255.255.255.254-255.255.255.255"], []],
    [["10.0.0.1", "fd00::1", null, "10.0.0.5/24", 42, "10.0.0.2"], ["10.0.0.1-10.0.0.2"], [1, 2, 3, 4]],
  ])("%j", (list, intervals, skipped) => {
    const got = v4IntervalsOf(list);
    expect([shown(got.bounds), got.skipped]).toEqual([intervals, skipped]);
  });
  it("matches a set of addresses on random lists", () => {
    for (let seed = 1; seed <= 200; seed++) {
      const r = rng(seed);
      const list = Array.from({ length: r(40) }, () => {
        const n = (10 << 24) + r(512);
        const prefix = 32 - r(6);
        return r(4) === 0 ? `${quad(n - (n % 2 ** (32 - prefix)))}/${prefix}` : quad(n);
      });
      const want = new Set<number>();
      for (const e of list) {
        const [from, to] = plainV4Interval(e)!;
        for (let n = from; n <= to; n++) want.add(n);
      }
      const { bounds } = v4IntervalsOf(list);
      const got = new Set<number>();
      for (let i = 0; i < bounds.length; i += 2) {
        if (i > 0) expect(bounds[i]!, `seed ${seed}: sorted, merged`).toBeGreaterThan(bounds[i - 1]! + 1);
        for (let n = bounds[i]!; n <= bounds[i + 1]!; n++) got.add(n);
      }
      expect([...got].sort(), `seed ${seed}`).toEqual([...want].sort());
    }
  });
});

describe("Exclusions", () => {
  const ex = Exclusions.of(
    [
      { from: 10n, to: 19n },
      { from: 30n, to: 30n },
      { from: 25n, to: 29n },
      { from: 50n, to: 60n },
    ],
    false,
  );
  it("merges, finds and counts", () => {
    expect(ex.intervals()).toEqual([
      { from: 10n, to: 19n },
      { from: 25n, to: 30n },
      { from: 50n, to: 60n },
    ]);
    expect([9n, 10n, 19n, 20n, 25n, 30n, 31n, 60n, 61n].map((n) => ex.find(n))).toEqual([
      -1, 0, 0, -1, 1, 1, -1, 2, -1,
    ]);
    expect(ex.count).toBe(10n + 6n + 11n);
  });
  it("clips to a range, cutting only the ends", () => {
    expect(ex.clip(15n, 55n)!.intervals()).toEqual([
      { from: 15n, to: 19n },
      { from: 25n, to: 30n },
      { from: 50n, to: 55n },
    ]);
    expect(ex.clip(20n, 24n)).toBeNull();
    expect(ex.clip(0n, 9n)).toBeNull();
    expect(ex.clip(61n, 100n)).toBeNull();
    expect(ex.clip(30n, 30n)!.intervals()).toEqual([{ from: 30n, to: 30n }]);
  });
  it("IPv6 intervals stay BigInts", () => {
    const big = 1n << 100n;
    const v6 = Exclusions.of([{ from: big, to: big + (1n << 64n) }], true);
    expect(v6.find(big + 5n)).toBe(0);
    expect(v6.count).toBe((1n << 64n) + 1n);
    expect(v6.clip(big + 1n, big + 2n)!.intervals()).toEqual([{ from: big + 1n, to: big + 2n }]);
  });
  it("an IPv4 address outside 32 bits is never excluded", () => {
    expect(Exclusions.of([{ from: 0n, to: 0xffffffffn }], false).find(1n << 32n)).toBe(-1);
  });
});

describe("Exclusions.union", () => {
  it("merges two IPv4 lists linearly as the general merge would, on random lists", () => {
    for (let seed = 1; seed <= 100; seed++) {
      const r = rng(seed);
      const list = () =>
        Array.from({ length: r(20) }, () => {
          const from = BigInt(r(300));
          return { from, to: from + BigInt(r(5)) };
        });
      const a = list();
      const b = list();
      const got = Exclusions.of(a, false).union(Exclusions.of(b, false)).intervals();
      expect(got, `seed ${seed}`).toEqual(Exclusions.of([...a, ...b], false).intervals());
    }
  });
  it("handles the top of the IPv4 space", () => {
    const top = Exclusions.of([{ from: 0xfffffffen, to: 0xffffffffn }], false);
    const below = Exclusions.of([{ from: 0xfffffff0n, to: 0xfffffffdn }], false);
    expect(top.union(below).intervals()).toEqual([{ from: 0xfffffff0n, to: 0xffffffffn }]);
  });
});
