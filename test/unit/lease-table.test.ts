import { describe, expect, it } from "vitest";
import { LeaseTable } from "../../src/allocator/lease-table.js";
import { type Addr, formatIP, parseIP } from "../../src/net/ip.js";

const ip = (s: string): Addr => parseIP(s)!;
const leases = [
  { ip: ip("10.0.0.9"), owner: "a\r\neth0" },
  { ip: ip("10.0.0.2"), owner: "b\r\neth0" },
  { ip: ip("10.0.1.7"), owner: "a\r\neth0" },
  { ip: ip("fd00::5"), owner: "a\r\neth0" },
  { ip: ip("fd00::1:0"), owner: null },
  { ip: ip("10.0.0.3"), owner: "legacy" },
];
const joined = (pieces: Uint8Array[]) => Buffer.concat(pieces);
const inRange = (t: LeaseTable, a: string, b: string) => {
  const out: string[] = [];
  t.forEachIn(ip(a), ip(b), (n) => out.push(formatIP({ v6: ip(a).v6, n })));
  return out;
};

describe("LeaseTable", () => {
  it("answers used-address, range and owner questions", () => {
    const t = LeaseTable.fromScan(leases);
    expect(t.size).toBe(6);
    expect(t.has(ip("10.0.0.9"))).toBe(true);
    expect(t.has(ip("10.0.0.8"))).toBe(false);
    expect(inRange(t, "10.0.0.0", "10.0.0.255")).toEqual(["10.0.0.2", "10.0.0.3", "10.0.0.9"]);
    expect(inRange(t, "fd00::", "fd00::ffff:ffff")).toEqual(["fd00::5", "fd00::1:0"]);
    expect(t.candidatesFor("a\r\neth0").map(formatIP).sort()).toEqual(["10.0.0.9", "10.0.1.7", "fd00::5"]);
    expect(t.candidatesFor("legacy").map(formatIP)).toEqual(["10.0.0.3"]);
    expect(t.candidatesFor("nobody")).toEqual([]);
  });
  it("keeps its order through adds and removes", () => {
    const t = LeaseTable.fromScan(leases);
    t.add(ip("10.0.0.5"), "c\r\neth0");
    t.remove(ip("10.0.0.9"), "a\r\neth0");
    t.add(ip("fd00::3"), "c\r\neth0");
    expect(inRange(t, "10.0.0.0", "10.0.0.255")).toEqual(["10.0.0.2", "10.0.0.3", "10.0.0.5"]);
    expect(t.candidatesFor("c\r\neth0").map(formatIP).sort()).toEqual(["10.0.0.5", "fd00::3"]);
    expect(t.candidatesFor("a\r\neth0").map(formatIP).sort()).toEqual(["10.0.1.7", "fd00::5"]);
  });
  it("round-trips through the index encoding with its stamp", () => {
    const t = LeaseTable.fromScan(leases);
    const d = LeaseTable.decode(joined(t.encode("1:2:3")))!;
    expect(d.stamp).toBe("1:2:3");
    expect(inRange(d.table, "0.0.0.0", "255.255.255.255")).toEqual(inRange(t, "0.0.0.0", "255.255.255.255"));
    expect(d.table.candidatesFor("a\r\neth0").map(formatIP).sort()).toEqual(["10.0.0.9", "10.0.1.7", "fd00::5"]);
  });
  it("refuses truncated, corrupted, foreign-version and garbage indexes", () => {
    const good = joined(LeaseTable.fromScan(leases).encode("s"));
    expect(LeaseTable.decode(good.subarray(0, good.length - 1))).toBeNull();
    const flipped = Buffer.from(good);
    flipped[flipped.length - 2]! ^= 0x40;
    expect(LeaseTable.decode(flipped)).toBeNull();
    expect(LeaseTable.decode(Buffer.from(good.toString("latin1").replace("index 1", "index 9"), "latin1"))).toBeNull();
    expect(LeaseTable.decode(Buffer.from("garbage"))).toBeNull();
    expect(LeaseTable.decode(Buffer.alloc(0))).toBeNull();
  });
  it("scales: 60,000 leases in a /16 stay binary searches", () => {
    const many = Array.from({ length: 60000 }, (_, i) => ({ ip: { v6: false, n: 0x0a000000n + BigInt(i + 2) }, owner: `c${i}\r\neth0` }));
    const t = LeaseTable.decode(joined(LeaseTable.fromScan(many).encode("s")))!.table;
    expect(t.size).toBe(60000);
    expect(t.candidatesFor("c59999\r\neth0").map(formatIP)).toEqual(["10.0.234.97"]);
    let n = 0;
    t.forEachIn(ip("10.0.0.0"), ip("10.0.255.255"), () => n++);
    expect(n).toBe(60000);
  });
});
