import { describe, expect, it } from "vitest";
import { excludedUntil } from "../../src/allocator/pool.js";
import { parseDuration } from "../../src/config/duration.js";
import { loadIpamConfig } from "../../src/config/ipam.js";
import type { CniError } from "../../src/errors.js";
import { parseIP } from "../../src/net/ip.js";
import { allocatableCount, formatRange } from "../../src/net/range.js";

const load = (ipam: object, extra: object = {}) =>
  loadIpamConfig(JSON.parse(JSON.stringify({ cniVersion: "1.0.0", name: "n", ...extra, ipam })), "");
const err = (f: () => unknown) => {
  try {
    f();
  } catch (e) {
    return { code: (e as CniError).code, msg: (e as CniError).msg };
  }
  throw new Error("no error");
};

describe("reuseDelay durations (Go's time.ParseDuration)", () => {
  it.each([
    ["0", 0],
    ["0s", 0],
    ["30s", 30000],
    ["5m", 300000],
    ["1h30m", 5400000],
    ["1.5s", 1500],
    ["250ms", 250],
    ["1m0.5s", 60500],
  ])("%s", (text, ms) => expect(parseDuration(text)).toBe(ms));
  it.each(["", "5", "-1s", "1d", "s", "1 m", "1s2"])("rejects %j", (text) => expect(parseDuration(text)).toBeNull());
});

describe("exclude", () => {
  it("applies range-level and ipam-level entries, clipped and merged, to the ranges of their family", () => {
    const c = load(
      {
        ranges: [[{ subnet: "10.0.0.0/24", exclude: ["10.0.0.0/28", "10.0.0.20"] }], [{ subnet: "fd00::/120" }]],
        exclude: ["10.0.0.16/30", "fd00::/124", "192.168.0.0/16"],
      },
      { runtimeConfig: { ipRanges: [[{ subnet: "10.9.0.0/29" }]] } },
    );
    const [rt, v4, v6] = c.rangeSets.map((s) => s[0]!);
    expect(rt!.exclude).toBeUndefined();
    expect(v4!.exclude!.intervals().map((e) => [Number(e.from & 255n), Number(e.to & 255n)])).toEqual([[1, 20]]);
    expect(allocatableCount(v4!)).toBe(254n - 20n); // .1-.20 out (the gateway .1 among them)
    expect(allocatableCount(v6!)).toBe(255n - 15n); // ::1-::f out
    expect(formatRange(v6!)).toBe("fd00::1-fd00::ff");
  });
  it.each([
    [
      { ranges: [[{ subnet: "10.0.0.0/24", exclude: ["10.0.0.300"] }]] },
      'invalid range set 0 exclude entry "10.0.0.300": not an IP address or CIDR',
    ],
    [
      { ranges: [[{ subnet: "10.0.0.0/24", exclude: ["10.0.0.5/24"] }]] },
      'invalid range set 0 exclude entry "10.0.0.5/24": Network has host bits set. For a subnet mask of length 24 the network address is 10.0.0.0',
    ],
    [
      { ranges: [[{ subnet: "10.0.0.0/24", exclude: ["::ffff:10.0.0.0/120"] }]] },
      'invalid range set 0 exclude entry "::ffff:10.0.0.0/120": IPNet IP and Mask version mismatch',
    ],
    [
      { subnet: "10.0.0.0/30", exclude: ["10.0.0.2"] },
      "invalid range set 0: every address of range 10.0.0.1-10.0.0.2 is excluded",
    ],
    [{ subnet: "10.0.0.0/24", reuseDelay: "soon" }, 'invalid ipam.reuseDelay: time: invalid duration "soon"'],
  ])("%j -> %s", (ipam, msg) => {
    expect(err(() => load(ipam))).toEqual({ code: 7, msg });
  });
  it("names the ipam-level entry", () => {
    expect(err(() => load({ subnet: "10.0.0.0/24", exclude: ["nope"] })).msg).toBe(
      'invalid ipam exclude entry "nope": not an IP address or CIDR',
    );
  });
  it("skips an excluded IPv6 block without enumerating it", () => {
    const c = load({ ranges: [[{ subnet: "fd00::/64", exclude: ["fd00::/80"] }]] });
    const [r] = c.rangeSets[0]!;
    expect(r!.exclude!.intervals()).toEqual([{ from: parseIP("fd00::1")!.n, to: parseIP("fd00::ffff:ffff:ffff")!.n }]);
    expect(excludedUntil(r!, parseIP("fd00::1234")!.n)).toBe(parseIP("fd00::ffff:ffff:ffff")!.n);
    expect(excludedUntil(r!, parseIP("fd00::1:0:0:0")!.n)).toBeNull();
  });
  it("80,000 entries are parsed, merged and clipped in O(n log n)", () => {
    const exclude = Array.from(
      { length: 80000 },
      (_, i) => `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`,
    ).filter((_, i) => i % 2 === 0);
    const c = load({ subnet: "10.0.0.0/8", exclude: [...exclude, "10.0.0.0/30"] });
    const [r] = c.rangeSets[0]!;
    expect(r!.exclude!.length).toBe(40000 - 2); // .0/30 merges .0, .2 and (touching) .4
    expect(allocatableCount(r!)).toBe((1n << 24n) - 2n - 40001n);
  });
});
