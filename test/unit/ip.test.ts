import { describe, expect, it } from "vitest";
import { formatCIDR, formatIP, nextAddr, parseCIDR, parseIP } from "../../src/net/ip.js";

describe("parseIP follows Go's net.ParseIP", () => {
  it.each([
    ["10.0.0.1", "10.0.0.1"],
    ["0.0.0.0", "0.0.0.0"],
    ["255.255.255.255", "255.255.255.255"],
    ["::", "::"],
    ["::1", "::1"],
    ["2001:DB8::1", "2001:db8::1"],
    ["2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"],
    ["2001:db8:1:0:ffff:ffff:ffff:ffff", "2001:db8:1:0:ffff:ffff:ffff:ffff"],
    ["::ffff:10.1.2.3", "10.1.2.3"],
    ["::10.1.2.3", "::a01:203"],
    ["fd00:0:0:0:0:0:0:0", "fd00::"],
  ])("%s -> %s", (text, canonical) => {
    const ip = parseIP(text);
    expect(ip).not.toBeNull();
    expect(formatIP(ip!)).toBe(canonical);
  });

  it.each([
    "10.0.0.010",
    "10.0.0.256",
    "10.0.0",
    "10.0.0.1.2",
    "1e.0.0.1",
    "0x10.0.0.1",
    " 10.0.0.1",
    "10.0.0.1 ",
    "fe80::1%eth0",
    "2001:db8::12345",
    "1:2:3:4:5:6:7:8:9",
    "::ffff:10.0.0.01",
    "",
    "abc",
  ])("rejects %j", (text) => {
    expect(parseIP(text)).toBeNull();
  });

  it("folds v4-mapped IPv6 to IPv4", () => {
    expect(parseIP("::ffff:192.168.0.1")).toEqual({ v6: false, n: 0xc0a80001n });
  });
});

describe("parseCIDR follows Go's net.ParseCIDR", () => {
  it("keeps host bits and the mask width", () => {
    const c = parseCIDR("10.1.2.3/24")!;
    expect(formatCIDR(c)).toBe("10.1.2.3/24");
    expect(c.maskBits).toBe(32);
    expect(parseCIDR("::ffff:10.0.0.0/120")).toMatchObject({ prefix: 120, maskBits: 128, ip: { v6: false } });
  });
  it("allows leading zeros in the prefix, as Go's dtoi does", () => {
    expect(parseCIDR("10.0.0.0/024")?.prefix).toBe(24);
  });
  it.each(["10.0.0.0", "10.0.0.0/33", "10.0.0.0/-1", "10.0.0.0/+8", "10.0.0.0/", "::/129", "x/8", "10.0.0.0/8/8"])(
    "rejects %j",
    (text) => expect(parseCIDR(text)).toBeNull(),
  );
});

describe("nextAddr", () => {
  it("wraps at the end of the family", () => {
    expect(formatIP(nextAddr(parseIP("255.255.255.255")!))).toBe("0.0.0.0");
    expect(formatIP(nextAddr(parseIP("10.0.0.255")!))).toBe("10.0.1.0");
    expect(formatIP(nextAddr(parseIP("2001:db8::ffff")!))).toBe("2001:db8::1:0");
  });
});
