import { describe, expect, it } from "vitest";
import { type Addr, parseCIDR, parseIP } from "../../src/net/ip.js";
import {
  canonicalizeRange,
  canonicalizeRangeSet,
  formatRange,
  formatRangeSet,
  RangeError_,
  type RawRange,
  rangeContains,
} from "../../src/net/range.js";

const ip = (s: string): Addr => parseIP(s)!;
const raw = (subnet: string, more: Record<string, string> = {}): RawRange => ({
  subnet: parseCIDR(subnet)!,
  ...Object.fromEntries(Object.entries(more).map(([k, v]) => [k, ip(v)])),
});
const message = (f: () => unknown): string => {
  try {
    f();
  } catch (e) {
    if (e instanceof RangeError_) return e.message;
    throw e;
  }
  return "no error";
};

describe("canonicalizeRange (host-local range.go)", () => {
  it("defaults an IPv4 range to .1 - .254 with gateway .1", () => {
    const r = canonicalizeRange(raw("10.1.2.0/24"));
    expect(formatRange(r)).toBe("10.1.2.1-10.1.2.254");
    expect(r.gateway).toEqual(ip("10.1.2.1"));
  });
  it("defaults an IPv6 range to ::1 - the last address", () => {
    expect(formatRange(canonicalizeRange(raw("2001:db8::/120")))).toBe("2001:db8::1-2001:db8::ff");
  });
  it("allows /30 and /126 but not /31, /32, /127", () => {
    expect(formatRange(canonicalizeRange(raw("10.0.0.0/30")))).toBe("10.0.0.1-10.0.0.2");
    expect(canonicalizeRange(raw("fd00::/126"))).toBeTruthy();
    expect(message(() => canonicalizeRange(raw("10.0.0.0/31")))).toBe("Network 10.0.0.0/31 too small to allocate from");
    expect(message(() => canonicalizeRange(raw("10.0.0.1/32")))).toBe("Network 10.0.0.1/32 too small to allocate from");
    expect(message(() => canonicalizeRange(raw("fd00::/127")))).toBe("Network fd00::/127 too small to allocate from");
  });
  it("reports host bits with the network address", () => {
    expect(message(() => canonicalizeRange(raw("10.1.2.3/24")))).toBe(
      "Network has host bits set. For a subnet mask of length 24 the network address is 10.1.2.0",
    );
  });
  it("reports a v4-mapped subnet with an IPv6 mask as a version mismatch", () => {
    expect(message(() => canonicalizeRange(raw("::ffff:10.0.0.0/120")))).toBe("IPNet IP and Mask version mismatch");
  });
  it("checks rangeStart and rangeEnd against the subnet and each other", () => {
    expect(message(() => canonicalizeRange(raw("10.0.0.0/24", { rangeStart: "10.0.1.5" })))).toBe(
      "RangeStart 10.0.1.5 not in network 10.0.0.0/24",
    );
    expect(message(() => canonicalizeRange(raw("10.0.0.0/24", { rangeEnd: "10.0.1.5" })))).toBe(
      "RangeEnd 10.0.1.5 not in network 10.0.0.0/24",
    );
    expect(
      message(() => canonicalizeRange(raw("10.0.0.0/24", { rangeStart: "10.0.0.50", rangeEnd: "10.0.0.40" }))),
    ).toBe("RangeStart 10.0.0.50 not in network 10.0.0.0/24");
    expect(message(() => canonicalizeRange(raw("10.0.0.0/24", { rangeEnd: "10.0.0.0" })))).toBe(
      "RangeEnd 10.0.0.0 not in network 10.0.0.0/24",
    );
  });
  it("never checks the gateway against the subnet", () => {
    expect(canonicalizeRange(raw("10.0.0.0/24", { gateway: "192.168.0.1" })).gateway).toEqual(ip("192.168.0.1"));
  });
  it("fails a range without subnet as host-local does", () => {
    expect(message(() => canonicalizeRange({}))).toBe("IP <nil> not v4 nor v6");
  });
  it("contains only addresses of the same family between start and end", () => {
    const r = canonicalizeRange(raw("10.0.0.0/24", { rangeStart: "10.0.0.10", rangeEnd: "10.0.0.20" }));
    expect(rangeContains(r, ip("10.0.0.10"))).toBe(true);
    expect(rangeContains(r, ip("10.0.0.20"))).toBe(true);
    expect(rangeContains(r, ip("10.0.0.9"))).toBe(false);
    expect(rangeContains(r, ip("10.0.0.21"))).toBe(false);
    expect(rangeContains(r, ip("::a00:f"))).toBe(false);
  });
});

describe("canonicalizeRangeSet (host-local range_set.go)", () => {
  it("rejects an empty set, mixed families and overlaps", () => {
    expect(message(() => canonicalizeRangeSet([]))).toBe("empty range set");
    expect(message(() => canonicalizeRangeSet([raw("10.0.0.0/24"), raw("fd00::/64")]))).toBe("mixed address families");
    expect(message(() => canonicalizeRangeSet([raw("10.0.0.0/24"), raw("10.0.0.0/25")]))).toBe(
      "subnets 10.0.0.1-10.0.0.254 and 10.0.0.1-10.0.0.126 overlap",
    );
  });
  it("prints a set as its ranges joined by commas", () => {
    const set = canonicalizeRangeSet([raw("10.0.0.0/24"), raw("10.0.1.0/24", { rangeStart: "10.0.1.100" })]);
    expect(formatRangeSet(set)).toBe("10.0.0.1-10.0.0.254,10.0.1.100-10.0.1.254");
  });
});
