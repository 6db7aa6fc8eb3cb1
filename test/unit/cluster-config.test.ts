// Cluster networks in-process: the config keys (ipam.cluster, blockSize), the blocks file, and a range set cut
// down to the owned blocks, against a model that lists every address.

import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { unleased } from "../../src/allocator/pool.js";
import {
  blockAt,
  blockCount,
  blockOf,
  formatBlocksFile,
  freeBlocks,
  nthBlock,
  parseBlockName,
  parseBlocksFile,
  restrictToBlocks,
} from "../../src/cluster/blocks.js";
import { loadIpamConfig } from "../../src/config/ipam.js";
import { CniError } from "../../src/errors.js";
import { broadcastOf, type Cidr, formatCIDR, formatIP, networkOf, parseCIDR, parseIP } from "../../src/net/ip.js";
import { allocatableCount } from "../../src/net/range.js";

const load = (ipam: object) =>
  loadIpamConfig({ cniVersion: "1.0.0", name: "cn", ipam: { type: "local-ipam", ...ipam } }, "");
const err = (f: () => unknown) => {
  try {
    f();
  } catch (e) {
    if (e instanceof CniError) return { code: e.code, msg: e.msg };
    throw e;
  }
  return null;
};
const cidr = (s: string): Cidr => parseCIDR(s)!;

describe("cluster config", () => {
  it("ipam.cluster makes a network cluster-wide; blockSize defaults to /26 and /122", () => {
    const c = load({ cluster: {}, ranges: [[{ subnet: "10.128.0.0/16" }], [{ subnet: "fd00:128::/64" }]] });
    expect(c.cluster).toEqual({ agentSocket: "/run/local-ipam/agent.sock", claimTimeoutMs: 10000 });
    expect(c.rangeSets.map((s) => s[0]!.blockSize)).toEqual([26, 122]);
    const small = load({ cluster: { agentSocket: "/tmp/a.sock" }, subnet: "10.9.0.0/28", blockSize: 32 });
    expect(small.rangeSets[0]![0]!.blockSize).toBe(32);
    // a subnet smaller than the default block: one block, the subnet itself
    expect(load({ cluster: {}, subnet: "10.9.0.0/29" }).rangeSets[0]![0]!.blockSize).toBe(29);
    expect(load({ subnet: "10.9.0.0/24" }).cluster).toBeNull();
  });
  it.each([
    [{ cluster: "yes", subnet: "10.0.0.0/24" }, "invalid ipam.cluster: must be an object"],
    [
      { cluster: { agentSocket: "relative.sock" }, subnet: "10.0.0.0/24" },
      'invalid ipam.cluster: agentSocket "relative.sock" must be an absolute path',
    ],
    [
      { cluster: {}, subnet: "10.0.0.0/24", blockSize: 23 },
      "invalid range set 0: blockSize 23 must be a prefix length from 24 to 32",
    ],
    [
      { cluster: {}, subnet: "10.0.0.0/24", blockSize: "26" },
      'invalid range set 0: blockSize "26" must be a prefix length from 24 to 32',
    ],
    [
      { cluster: {}, subnet: "10.0.0.0/24", blockSize: 26.5 },
      "invalid range set 0: blockSize 26.5 must be a prefix length from 24 to 32",
    ],
    [{ subnet: "10.0.0.0/24", blockSize: 26 }, "invalid range set 0: blockSize is for cluster networks (ipam.cluster)"],
    [
      { cluster: { claimTimeout: "3m" }, subnet: "10.0.0.0/24" },
      'invalid ipam.cluster: claimTimeout "3m" must be a duration such as "10s", at most 2m',
    ],
    // one block grid per address space: overlapping subnets in two sets, or with two block sizes, are refused
    [
      {
        cluster: {},
        ranges: [
          [
            { subnet: "10.0.0.0/24", rangeEnd: "10.0.0.100", blockSize: 26 },
            { subnet: "10.0.0.0/24", rangeStart: "10.0.0.101", blockSize: 28 },
          ],
        ],
      },
      "invalid ipam.ranges: in a cluster network, ranges whose subnets overlap (10.0.0.0/24, 10.0.0.0/24) must be in one range set, with one blockSize",
    ],
    [
      // the defaults alone differ: /26 for the /24, the /29 itself
      { cluster: {}, ranges: [[{ subnet: "10.0.0.0/24", rangeEnd: "10.0.0.200" }, { subnet: "10.0.0.248/29" }]] },
      "invalid ipam.ranges: in a cluster network, ranges whose subnets overlap (10.0.0.0/24, 10.0.0.248/29) must be in one range set, with one blockSize",
    ],
    [
      {
        cluster: {},
        ranges: [
          [{ subnet: "10.0.0.0/24", rangeEnd: "10.0.0.100" }],
          [{ subnet: "10.0.0.0/24", rangeStart: "10.0.0.101" }],
        ],
      },
      "invalid ipam.ranges: in a cluster network, ranges whose subnets overlap (10.0.0.0/24, 10.0.0.0/24) must be in one range set, with one blockSize",
    ],
  ])("%j -> %s", (ipam, msg) => {
    expect(err(() => load(ipam))).toEqual({ code: 7, msg });
  });
});

describe("cluster config, what a runtime may not change", () => {
  it("runtimeConfig.ipRanges on a cluster network is refused; on a node-local one it is as ever", () => {
    const conf = (cluster: object | undefined) => ({
      cniVersion: "1.0.0",
      name: "cn",
      runtimeConfig: { ipRanges: [[{ subnet: "10.1.0.0/24" }]] },
      ipam: { type: "local-ipam", cluster, ranges: [[{ subnet: "10.0.0.0/24" }]] },
    });
    expect(err(() => loadIpamConfig(conf({}), ""))).toEqual({
      code: 7,
      msg: "invalid runtimeConfig.ipRanges: a cluster network's ranges are the cluster's, the same on every node; a runtime cannot replace them",
    });
    expect(loadIpamConfig(conf(undefined), "").rangeSets).toHaveLength(2);
  });
  it("overlapping subnets with one block size in one set are fine (one grid)", () => {
    const c = load({
      cluster: {},
      ranges: [
        [
          { subnet: "10.0.0.0/24", rangeEnd: "10.0.0.100" },
          { subnet: "10.0.0.0/24", rangeStart: "10.0.0.101" },
        ],
      ],
    });
    expect(c.rangeSets[0]!.map((r) => r.blockSize)).toEqual([26, 26]);
  });
});

describe("blocks", () => {
  it("a block of another size than its range's (an older config's) gives the node nothing", () => {
    const [set] = load({ cluster: {}, subnet: "10.0.0.0/24", blockSize: 26 }).rangeSets;
    expect(allocatableCount(restrictToBlocks(set!, [cidr("10.0.0.0/24")])[0]!)).toBe(0n);
    expect(allocatableCount(restrictToBlocks(set!, [cidr("10.0.0.64/28")])[0]!)).toBe(0n);
    expect(allocatableCount(restrictToBlocks(set!, [cidr("10.0.0.64/26")])[0]!)).toBe(64n);
  });

  it("the file round-trips; lines that are not blocks are ignored", () => {
    const blocks = [
      { set: 1, cidr: cidr("fd00::40/122") },
      { set: 0, cidr: cidr("10.128.0.64/26") },
    ];
    const text = formatBlocksFile(blocks);
    expect(text.split("\n").slice(1)).toEqual(["0 10.128.0.64/26", "1 fd00::40/122", ""]);
    const parsed = parseBlocksFile(`${text}junk\n0 10.128.0.65/26\n0 nope\n`);
    expect(parsed.map((b) => `${b.set} ${formatCIDR(b.cidr)}`)).toEqual(["0 10.128.0.64/26", "1 fd00::40/122"]);
    expect(parseBlockName("0:10.128.0.64/26")).toEqual({ set: 0, cidr: cidr("10.128.0.64/26") });
    expect(parseBlockName("0:10.128.0.65/26")).toBeNull();
  });
  it("numbers the aligned blocks a range meets, a range that starts mid-block included", () => {
    const [r] = load({ cluster: {}, subnet: "10.128.0.0/24", rangeStart: "10.128.0.10", blockSize: 26 }).rangeSets[0]!;
    expect(blockCount(r!)).toBe(4n);
    expect([0n, 1n, 3n].map((k) => formatCIDR(blockAt(r!, k)))).toEqual([
      "10.128.0.0/26",
      "10.128.0.64/26",
      "10.128.0.192/26",
    ]);
    expect(formatCIDR(blockOf(r!, parseIP("10.128.0.130")!))).toBe("10.128.0.128/26");
    const [v6] = load({ cluster: {}, subnet: "fd00::/64" }).rangeSets[0]!;
    expect(blockCount(v6!)).toBe(1n << 58n);
  });
  it("a set cut down to its blocks hands out exactly the owned, allocatable addresses, in host-local's order", () => {
    const [set] = load({
      cluster: {},
      ranges: [[{ subnet: "10.128.0.0/24", blockSize: 28, exclude: ["10.128.0.20/31"] }]],
    }).rangeSets;
    const owned = [cidr("10.128.0.16/28"), cidr("10.128.0.0/28"), cidr("10.128.0.240/28")];
    const mine = restrictToBlocks(set!, owned);
    const got = [
      ...unleased(mine, { nextUnused: (from: { n: bigint }) => from.n } as never, parseIP("10.128.0.17")),
    ].map(([, n]) => formatIP({ v6: false, n }));
    // the model: every owned address but the gateway (.1), the exclusions and the broadcast, walked from .18 on
    const model: string[] = [];
    for (let n = 0; n < 256; n++) {
      const inOwned = n < 32 || n >= 240;
      if (inOwned && n !== 0 && n !== 1 && n !== 20 && n !== 21 && n !== 255) model.push(`10.128.0.${n}`);
    }
    const start = model.indexOf("10.128.0.18");
    expect(got).toEqual([...model.slice(start), ...model.slice(0, start)]);
    expect(allocatableCount(mine[0]!)).toBe(BigInt(model.length));
    expect(allocatableCount(restrictToBlocks(set!, [])[0]!)).toBe(0n);
  });
});

describe("freeBlocks: the free blocks of a crowded pool, found between the taken ones", () => {
  const set = (ranges: object[]) => load({ cluster: {}, ranges: [ranges] }).rangeSets[0]!;
  /** the model: every block number in order from `start`, round again, minus what is taken or useless */
  const model = (s: ReturnType<typeof set>, taken: Set<string>, useless: Set<string>, start: number, max: number) => {
    const counts = s.map((r) => blockCount(r));
    const total = Number(counts.reduce((a, b) => a + b, 0n));
    const out: string[] = [];
    for (let i = 0; i < total && out.length < max; i++) {
      const c = formatCIDR(nthBlock(s, counts, BigInt((start + i) % total)));
      if (!taken.has(c) && !useless.has(c) && !out.includes(c)) out.push(c);
    }
    return out;
  };

  it("equals walking every block, for random pools, taken sets and starts (two ranges sharing a subnet too)", () => {
    const shapes = [
      set([{ subnet: "10.1.0.0/24", blockSize: 28 }]),
      set([
        { subnet: "10.1.0.0/24", rangeEnd: "10.1.0.100", blockSize: 28 },
        { subnet: "10.1.0.0/24", rangeStart: "10.1.0.101", blockSize: 28 },
        { subnet: "10.2.0.0/26", blockSize: 29 },
      ]),
      set([{ subnet: "fd00::/120", blockSize: 126 }]),
    ];
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: shapes.length - 1 }),
        fc.array(fc.nat(), { maxLength: 80 }),
        fc.array(fc.nat(), { maxLength: 5 }),
        fc.nat(),
        fc.integer({ min: 1, max: 70 }),
        (which, takenAt, uselessAt, startAt, max) => {
          const s = shapes[which]!;
          const counts = s.map((r) => blockCount(r));
          const total = Number(counts.reduce((a, b) => a + b, 0n));
          const name = (k: number) => formatCIDR(nthBlock(s, counts, BigInt(k % total)));
          const taken = new Set(takenAt.map(name));
          const useless = new Set(uselessAt.map(name));
          const start = startAt % total;
          const got = freeBlocks(s, counts, new Map([...taken].map((t) => [t, 1])), useless, BigInt(start), max);
          expect(got).toEqual(model(s, taken, useless, start, max));
        },
      ),
      { seed: 20261125, numRuns: 300 },
    );
  });

  it("a key of another size (an older blockSize) covers every block it meets", () => {
    const shapes = [
      set([{ subnet: "10.1.0.0/24", blockSize: 28 }]),
      set([
        { subnet: "10.1.0.0/24", rangeEnd: "10.1.0.100", blockSize: 28 },
        { subnet: "10.1.0.0/24", rangeStart: "10.1.0.101", blockSize: 28 },
      ]),
    ];
    const overlaps = (a: string, b: string) => {
      const x = cidr(a);
      const y = cidr(b);
      const xl = broadcastOf(x.ip, x.prefix).n;
      const yl = broadcastOf(y.ip, y.prefix).n;
      return x.ip.n <= yl && y.ip.n <= xl;
    };
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: shapes.length - 1 }),
        fc.array(fc.tuple(fc.integer({ min: 0, max: 255 }), fc.integer({ min: 24, max: 32 })), { maxLength: 12 }),
        fc.nat(),
        fc.integer({ min: 1, max: 20 }),
        (which, keys, startAt, max) => {
          const s = shapes[which]!;
          const counts = s.map((r) => blockCount(r));
          const total = Number(counts.reduce((a, b) => a + b, 0n));
          const taken = new Set(
            keys.map(([host, prefix]) =>
              formatCIDR({ ...cidr(`10.1.0.${host}/${prefix}`), ip: networkOf(parseIP(`10.1.0.${host}`)!, prefix) }),
            ),
          );
          const start = startAt % total;
          const want: string[] = [];
          for (let i = 0; i < total && want.length < max; i++) {
            const c = formatCIDR(nthBlock(s, counts, BigInt((start + i) % total)));
            if (![...taken].some((t) => overlaps(c, t)) && !want.includes(c)) want.push(c);
          }
          const got = freeBlocks(s, counts, new Map([...taken].map((t) => [t, 1])), new Set(), BigInt(start), max);
          expect(got).toEqual(want);
        },
      ),
      { seed: 20261125, numRuns: 300 },
    );
  });

  it("a /8 of one-address blocks with 150,000 taken in a row: finds the next free one, not a false 'full'", () => {
    const s = set([{ subnet: "10.0.0.0/8", blockSize: 32 }]);
    const counts = s.map((r) => blockCount(r));
    const taken = new Map<string, unknown>();
    for (let k = 0n; k < 150_000n; k++) taken.set(formatCIDR(nthBlock(s, counts, k)), 1);
    const got = freeBlocks(s, counts, taken, new Set(), 0n, 2);
    expect(got).toEqual([formatCIDR(nthBlock(s, counts, 150_000n)), formatCIDR(nthBlock(s, counts, 150_001n))]);
    expect(got[0]).toBe("10.2.73.241/32");
  });
});
