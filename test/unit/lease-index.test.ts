import { describe, expect, it } from "vitest";
import { type Addr, formatIP, parseIP } from "../../src/net/ip.js";
import { checksum32 } from "../../src/platform/checksum.js";
import { LeaseIndex } from "../../src/store/lease-index.js";

const ip = (s: string): Addr => parseIP(s)!;
const leases = [
  { ip: ip("10.0.0.9"), owner: "a\r\neth0" },
  { ip: ip("10.0.0.2"), owner: "b\r\neth0" },
  { ip: ip("10.0.1.7"), owner: "a\r\neth0" },
  { ip: ip("fd00::5"), owner: "a\r\neth0" },
  { ip: ip("fd00::1:0"), owner: null },
  { ip: ip("10.0.0.3"), owner: "legacy" },
];
const hashBytes = (b: Uint8Array) => checksum32(b, 0, b.length);
const hashText = (s: string) => hashBytes(Buffer.from(s, "utf8"));
const encodeText = (s: string) => new Uint8Array(Buffer.from(s, "utf8"));
const joined = (pieces: Uint8Array[]) => new Uint8Array(Buffer.concat(pieces));
const inRange = (t: LeaseIndex, a: string, b: string) => {
  const out: string[] = [];
  t.forEachIn(ip(a), ip(b), (n) => out.push(formatIP({ v6: ip(a).v6, n })));
  return out.sort();
};
const base = (t: LeaseIndex, stamp = "1:2:3", id = "base1") => joined(t.encodeBase(id, stamp, hashBytes, encodeText));

describe("the index checksum", () => {
  it.each([
    ["", 0xb1c4577d],
    ["a", 0x3a9cbfc0],
    ["abc", 0x5211b0cf],
    ["Hello, world!", 0xac349754],
    ["0123456789abcdef0", 0xba2d77da],
  ])("%j (the native module's smoke test checks the same values)", (text, want) => expect(hashText(text)).toBe(want));
  it("changes with any single flipped bit of a 4 KiB block", () => {
    const block = new Uint8Array(4096).map((_, i) => (i * 7) & 255);
    const base = hashBytes(block);
    for (let bit = 0; bit < block.length * 8; bit += 13) {
      block[bit >> 3]! ^= 1 << (bit & 7);
      expect(hashBytes(block)).not.toBe(base);
      block[bit >> 3]! ^= 1 << (bit & 7);
    }
  });
});

describe("LeaseIndex", () => {
  it("answers leased-address, range, count and owner questions", () => {
    const t = LeaseIndex.fromLeases(leases);
    expect(t.size).toBe(6);
    expect(t.has(ip("10.0.0.9"))).toBe(true);
    expect(t.has(ip("10.0.0.8"))).toBe(false);
    expect(inRange(t, "10.0.0.0", "10.0.0.255")).toEqual(["10.0.0.2", "10.0.0.3", "10.0.0.9"]);
    expect(t.countIn(ip("10.0.0.0"), ip("10.0.0.255"))).toBe(3);
    expect(t.countIn(ip("0.0.0.0"), ip("255.255.255.255"))).toBe(4);
    expect(t.countIn(ip("fd00::"), ip("fd00::ffff:ffff"))).toBe(2);
    expect(t.candidatesFor("a\r\neth0").map(formatIP).sort()).toEqual(["10.0.0.9", "10.0.1.7", "fd00::5"]);
    expect(t.candidatesFor("legacy").map(formatIP)).toEqual(["10.0.0.3"]);
    expect(t.candidatesFor("nobody")).toEqual([]);
  });
  it("finds the next unused address by walking leased runs only", () => {
    const t = LeaseIndex.fromLeases(
      ["10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.9"].map((s) => ({ ip: ip(s), owner: "x" })),
    );
    expect(t.nextUnused(ip("10.0.0.2"), ip("10.0.0.255"))).toBe(ip("10.0.0.5").n);
    expect(t.nextUnused(ip("10.0.0.9"), ip("10.0.0.9"))).toBeNull();
    expect(t.nextUnused(ip("10.0.0.0"), ip("10.0.0.1"))).toBe(ip("10.0.0.0").n);
    t.remove(ip("10.0.0.3"));
    expect(t.nextUnused(ip("10.0.0.2"), ip("10.0.0.255"))).toBe(ip("10.0.0.3").n);
    t.add(ip("10.0.0.3"), "y");
    t.add(ip("10.0.0.5"), "y");
    expect(t.nextUnused(ip("10.0.0.2"), ip("10.0.0.255"))).toBe(ip("10.0.0.6").n);
    const v6 = LeaseIndex.fromLeases([{ ip: ip("fd00::ffff:ffff:ffff:fffe"), owner: "x" }]);
    expect(v6.nextUnused(ip("fd00::ffff:ffff:ffff:fffe"), ip("fd00::ffff:ffff:ffff:ffff"))).toBe(
      ip("fd00::ffff:ffff:ffff:ffff").n,
    );
  });
  it("keeps base rows removed when an address is leased again to someone else", () => {
    const t = LeaseIndex.fromLeases(leases);
    t.add(ip("10.0.0.5"), "c\r\neth0");
    t.remove(ip("10.0.0.9"));
    t.add(ip("fd00::3"), "c\r\neth0");
    t.remove(ip("10.0.0.2"));
    t.add(ip("10.0.0.2"), "d\r\neth0");
    expect(inRange(t, "10.0.0.0", "10.0.0.255")).toEqual(["10.0.0.2", "10.0.0.3", "10.0.0.5"]);
    expect(t.candidatesFor("c\r\neth0").map(formatIP).sort()).toEqual(["10.0.0.5", "fd00::3"]);
    expect(t.candidatesFor("b\r\neth0")).toEqual([]);
    expect(t.candidatesFor("d\r\neth0").map(formatIP)).toEqual(["10.0.0.2"]);
    expect(t.countIn(ip("10.0.0.0"), ip("10.0.0.255"))).toBe(3);
    const folded = t.compacted();
    expect(inRange(folded, "0.0.0.0", "255.255.255.255")).toEqual(inRange(t, "0.0.0.0", "255.255.255.255"));
    expect(folded.candidatesFor("d\r\neth0").map(formatIP)).toEqual(["10.0.0.2"]);
  });
  it("round-trips its base with id and stamp, and refuses truncated, corrupted, foreign and garbage bases", () => {
    const good = base(LeaseIndex.fromLeases(leases));
    const d = LeaseIndex.decodeBase(good, hashBytes)!;
    expect([d.id, d.stamp]).toEqual(["base1", "1:2:3"]);
    expect(inRange(d.index, "0.0.0.0", "255.255.255.255")).toEqual(
      inRange(LeaseIndex.fromLeases(leases), "0.0.0.0", "255.255.255.255"),
    );
    expect(d.index.candidatesFor("a\r\neth0").map(formatIP).sort()).toEqual(["10.0.0.9", "10.0.1.7", "fd00::5"]);
    expect(LeaseIndex.decodeBase(good.subarray(0, good.length - 1), hashBytes)).toBeNull();
    const flipped = good.slice();
    flipped[flipped.length - 2]! ^= 0x40;
    expect(LeaseIndex.decodeBase(flipped, hashBytes)).toBeNull();
    expect(
      LeaseIndex.decodeBase(encodeText(Buffer.from(good).toString("latin1").replace("index 2", "index 9")), hashBytes),
    ).toBeNull();
    expect(LeaseIndex.decodeBase(encodeText("garbage"), hashBytes)).toBeNull();
    expect(LeaseIndex.decodeBase(new Uint8Array(0), hashBytes)).toBeNull();
  });
  it("replays its journal onto the base, and stops at a torn or foreign line", () => {
    const written = LeaseIndex.fromLeases(leases);
    written.add(ip("10.0.0.5"), "c\r\neth0");
    written.remove(ip("10.0.0.9"));
    const line1 = written.journalLine("base1", "s1", hashText);
    written.clearPending();
    written.remove(ip("fd00::5"));
    const line2 = written.journalLine("base1", "s2", hashText);
    const emptyLine = LeaseIndex.fromLeases([]).journalLine("base1", "s3", hashText);
    expect(emptyLine).toMatch(/^base1 s3 = [0-9a-f]+\n$/);

    const replayed = LeaseIndex.decodeBase(base(LeaseIndex.fromLeases(leases)), hashBytes)!.index;
    expect(replayed.replay(line1 + line2 + emptyLine, "base1", hashText)).toEqual({ stamp: "s3", clean: true });
    expect(replayed.journalLines).toBe(3);
    expect(inRange(replayed, "0.0.0.0", "255.255.255.255")).toEqual(["10.0.0.2", "10.0.0.3", "10.0.0.5", "10.0.1.7"]);
    expect(replayed.candidatesFor("a\r\neth0").map(formatIP)).toEqual(["10.0.1.7"]);

    const torn = LeaseIndex.decodeBase(base(LeaseIndex.fromLeases(leases)), hashBytes)!.index;
    expect(torn.replay(line1 + line2.slice(0, 20), "base1", hashText)).toEqual({ stamp: "s1", clean: false });
    expect(torn.has(ip("fd00::5"))).toBe(true); // the torn line's change is not applied
    const foreign = LeaseIndex.decodeBase(base(LeaseIndex.fromLeases(leases)), hashBytes)!.index;
    expect(foreign.replay(line1, "another-base", hashText)).toEqual({ stamp: null, clean: false });
    expect(foreign.has(ip("10.0.0.5"))).toBe(false);
  });
  it("scales: 60,000 leases in a /16 stay binary searches", () => {
    const many = Array.from({ length: 60000 }, (_, i) => ({
      ip: { v6: false, n: 0x0a000000n + BigInt(i + 2) },
      owner: `c${i}\r\neth0`,
    }));
    const t = LeaseIndex.decodeBase(base(LeaseIndex.fromLeases(many)), hashBytes)!.index;
    expect(t.size).toBe(60000);
    expect(t.candidatesFor("c59999\r\neth0").map(formatIP)).toEqual(["10.0.234.97"]);
    expect(t.countIn(ip("10.0.0.0"), ip("10.0.255.255"))).toBe(60000);
    expect(t.nextUnused(ip("10.0.0.2"), ip("10.0.255.254"))).toBe(ip("10.0.234.98").n);
  });
});

describe("folding changes into a new base", () => {
  it("keeps every table sorted and equal to an index built from scratch, over random changes", () => {
    let seed = 11;
    const random = () => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed / 0x7fffffff;
    };
    const live = new Map<string, { ip: Addr; owner: string }>();
    const pick = () => {
      const v6 = random() < 0.3;
      const n = v6
        ? 0xfd000000000000000000000000000000n + BigInt(Math.floor(random() * 500))
        : BigInt(0x0a000000 + Math.floor(random() * 500));
      return { v6, n };
    };
    for (let i = 0; i < 300; i++) {
      const ip = pick();
      live.set(formatIP(ip), { ip, owner: `c${i}\r\neth0` });
    }
    let index = LeaseIndex.fromLeases(live.values());
    for (let round = 0; round < 20; round++) {
      for (let k = 0; k < 40; k++) {
        const ip = pick();
        const key = formatIP(ip);
        if (live.has(key) && random() < 0.6) {
          index.remove(ip);
          live.delete(key);
        } else {
          const owner = `r${round}-${k}\r\neth0`;
          index.add(ip, owner);
          live.set(key, { ip, owner });
        }
      }
      index = index.compacted();
      const fresh = LeaseIndex.fromLeases(live.values());
      expect(inRange(index, "0.0.0.0", "255.255.255.255")).toEqual(inRange(fresh, "0.0.0.0", "255.255.255.255"));
      expect(inRange(index, "::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")).toEqual(
        inRange(fresh, "::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"),
      );
      for (const { ip, owner } of live.values())
        expect(index.candidatesFor(owner).map(formatIP)).toEqual([formatIP(ip)]);
      expect(base(index)).toEqual(base(fresh));
    }
  });
});
