// Blocks of a cluster network: a range is handed out to nodes in aligned blocks of `blockSize` (a prefix length),
// and a node allocates only inside the blocks it owns. Pure: the blocks file's text, the block holding an address,
// a range set cut down to the owned blocks (everything else becomes excluded, so the allocator, its iteration order
// and every pool count stay as they are).
import { Exclusions, type Interval } from "../net/exclusions.js";
import { type Addr, broadcastOf, type Cidr, formatCIDR, networkOf, parseCIDR } from "../net/ip.js";
import type { Range, RangeSet } from "../net/range.js";
import { firstAtLeast } from "../net/sorted.js";

/** An owned block: range set `set`, the aligned CIDR `cidr`. */
export interface Block {
  set: number;
  cidr: Cidr;
}

const HEADER =
  "# local-ipam blocks: owned by this node in etcd; written by local-ipam-agent through `local-ipam blocks`";

export function formatBlocksFile(blocks: readonly Block[]): string {
  const lines = blocks.map((b) => `${b.set} ${formatCIDR(b.cidr)}`).sort();
  return `${[HEADER, ...lines].join("\n")}\n`;
}

/** The blocks a file lists; a line that is not "<set> <cidr>" is ignored (the file is written whole, by us). */
export function parseBlocksFile(text: string): Block[] {
  const out: Block[] = [];
  for (const line of text.split("\n")) {
    const m = /^(\d{1,4}) (\S+)$/.exec(line);
    const cidr = m && parseCIDR(m[2]!);
    if (m && cidr && networkOf(cidr.ip, cidr.prefix).n === cidr.ip.n) out.push({ set: Number(m[1]), cidr });
  }
  return out;
}

/** "<set>:<cidr>", as the agent and `local-ipam blocks` name a block. */
export const blockName = (b: Block) => `${b.set}:${formatCIDR(b.cidr)}`;

export function parseBlockName(text: string): Block | null {
  const m = /^(\d{1,4}):(\S+)$/.exec(text);
  const cidr = m && parseCIDR(m[2]!);
  return m && cidr && networkOf(cidr.ip, cidr.prefix).n === cidr.ip.n ? { set: Number(m[1]), cidr } : null;
}

/** The block of range `r` that holds `ip` (aligned to r.blockSize inside its subnet). */
export function blockOf(r: Range, ip: Addr): Cidr {
  const size = r.blockSize ?? (ip.v6 ? 128 : 32);
  return { ip: networkOf(ip, size), prefix: size, maskBits: ip.v6 ? 128 : 32 };
}

/** The part of `block` inside range `r`, as an interval; null when they do not meet. */
export function blockInRange(r: Range, block: Cidr): Interval | null {
  if (block.ip.v6 !== r.rangeStart.v6) return null;
  const from = block.ip.n > r.rangeStart.n ? block.ip.n : r.rangeStart.n;
  const last = broadcastOf(block.ip, block.prefix).n;
  const to = last < r.rangeEnd.n ? last : r.rangeEnd.n;
  return from <= to ? { from, to } : null;
}

/** The range of `set` a block belongs to (blocks are aligned inside one subnet), or -1. */
export function rangeOfBlock(set: RangeSet, block: Cidr): number {
  return set.findIndex((r) => r.blockSize === block.prefix && blockInRange(r, block) !== null);
}

/**
 * `set` as this node may allocate from it: every address outside `owned` is added to the exclusions. The
 * allocator then walks the set in host-local's order as always, skipping what is not ours by binary search.
 * A block of another size than the range's (left from an older config) gives it nothing.
 */
export function restrictToBlocks(set: RangeSet, owned: readonly Cidr[]): RangeSet {
  return set.map((r) => {
    const mine = owned
      .filter((b) => b.prefix === r.blockSize)
      .map((b) => blockInRange(r, b))
      .filter((iv): iv is Interval => iv !== null);
    mine.sort((a, b) => (a.from < b.from ? -1 : a.from > b.from ? 1 : 0));
    // the complement of `mine` in [rangeStart, rangeEnd]
    const out: Interval[] = [];
    let next = r.rangeStart.n;
    for (const iv of mine) {
      if (iv.from > next) out.push({ from: next, to: iv.from - 1n });
      if (iv.to + 1n > next) next = iv.to + 1n;
    }
    if (next <= r.rangeEnd.n) out.push({ from: next, to: r.rangeEnd.n });
    if (out.length === 0) return r;
    const notMine = Exclusions.of(out, r.rangeStart.v6);
    return { ...r, exclude: r.exclude ? r.exclude.union(notMine) : notMine };
  });
}

/**
 * How many addresses of `block` the allocator could hand out in range set `set`: the parts of it inside ranges
 * of its size, less their exclusions and gateways (two binary searches a range). 0 for a block of another size.
 */
export function allocatableInBlock(set: RangeSet, block: Cidr): bigint {
  let n = 0n;
  for (const r of set) {
    if (r.blockSize !== block.prefix) continue;
    const iv = blockInRange(r, block);
    if (!iv) continue;
    const excluded = r.exclude?.clip(iv.from, iv.to)?.count ?? 0n;
    const gwInside = r.gateway.v6 === r.rangeStart.v6 && r.gateway.n >= iv.from && r.gateway.n <= iv.to;
    const gw = gwInside && (r.exclude?.find(r.gateway.n) ?? -1) < 0 ? 1n : 0n;
    n += iv.to - iv.from + 1n - excluded - gw;
  }
  return n;
}

/** How many aligned blocks range `r` meets (a BigInt: an IPv6 range holds 2^58 blocks of /122). */
export function blockCount(r: Range): bigint {
  const size = BigInt((r.rangeStart.v6 ? 128 : 32) - (r.blockSize ?? 0));
  const first = r.rangeStart.n >> size;
  const last = r.rangeEnd.n >> size;
  return last - first + 1n;
}

/** The k-th aligned block range `r` meets, counting from its start. */
export function blockAt(r: Range, k: bigint): Cidr {
  const bits = r.rangeStart.v6 ? 128 : 32;
  const size = BigInt(bits - r.blockSize!);
  const n = ((r.rangeStart.n >> size) + k) << size;
  return { ip: { v6: r.rangeStart.v6, n }, prefix: r.blockSize!, maskBits: bits as 32 | 128 };
}

/** Block number `k` of a range set, counting the blocks of each range (`counts`, their blockCounts) in turn. */
export function nthBlock(ranges: readonly Range[], counts: readonly bigint[], k: bigint): Cidr {
  let j = 0;
  while (k >= counts[j]!) k -= counts[j++]!;
  return blockAt(ranges[j]!, k);
}

/**
 * Up to `max` blocks of a range set (its ranges and their blockCounts) that no key in `taken` overlaps (whatever
 * its size: a key left from an older blockSize covers the blocks it meets) and that are not `useless`, from block
 * number `start` on and round again from 0, in order: found in the gaps between the taken runs, so the cost grows
 * with the keys taken, not with the size of the pool (a /8 of one-address blocks is 16 million).
 */
export function freeBlocks(
  ranges: readonly Range[],
  counts: readonly bigint[],
  taken: ReadonlyMap<string, unknown>,
  useless: ReadonlySet<string>,
  start: bigint,
  max: number,
): string[] {
  // block numbers 0 .. total-1, counting range by range; each taken key becomes the run of numbers it meets
  const offsets: bigint[] = [];
  let total = 0n;
  for (const c of counts) {
    offsets.push(total);
    total += c;
  }
  const runs: { lo: bigint; hi: bigint }[] = [];
  for (const text of [...taken.keys(), ...useless]) {
    const c = parseCIDR(text);
    if (!c) continue;
    const last = broadcastOf(c.ip, c.prefix).n;
    ranges.forEach((r, j) => {
      if (c.ip.v6 !== r.rangeStart.v6 || r.blockSize === undefined) return;
      // the blocks of this range the key meets (a block partly outside the range counts whole)
      const shift = BigInt((c.ip.v6 ? 128 : 32) - r.blockSize);
      const first = r.rangeStart.n >> shift;
      const lo = (c.ip.n >> shift) - first;
      const hi = (last >> shift) - first;
      const clippedLo = lo > 0n ? lo : 0n;
      const clippedHi = hi < counts[j]! - 1n ? hi : counts[j]! - 1n;
      if (clippedLo <= clippedHi) runs.push({ lo: offsets[j]! + clippedLo, hi: offsets[j]! + clippedHi });
    });
  }
  runs.sort((a, b) => (a.lo < b.lo ? -1 : a.lo > b.lo ? 1 : 0));
  const merged: { lo: bigint; hi: bigint }[] = [];
  for (const run of runs) {
    const prev = merged[merged.length - 1];
    if (prev && run.lo <= prev.hi + 1n) {
      if (run.hi > prev.hi) prev.hi = run.hi;
    } else merged.push({ ...run });
  }
  const los = merged.map((m) => m.lo);
  const out: string[] = [];
  const collect = (from: bigint, to: bigint) => {
    let k = from;
    // the run that may hold k: the last one starting at or before it
    let i = firstAtLeast(los, k + 1n) - 1;
    while (k < to && out.length < max) {
      if (i >= 0 && i < merged.length && merged[i]!.lo <= k && k <= merged[i]!.hi) {
        k = merged[i]!.hi + 1n;
        i++;
        continue;
      }
      if (i < 0 || (i < merged.length && merged[i]!.hi < k)) {
        i++;
        continue;
      }
      // k is free, and so is every number up to the next run
      const next = i < merged.length && merged[i]!.lo < to ? merged[i]!.lo : to;
      for (; k < next && out.length < max; k++) {
        const c = formatCIDR(nthBlock(ranges, counts, k));
        if (!taken.has(c) && !useless.has(c) && !out.includes(c)) out.push(c);
      }
    }
  };
  collect(start, total);
  collect(0n, start);
  return out;
}
