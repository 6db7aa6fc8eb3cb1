// Blocks of a cluster network: a range is handed out to nodes in aligned blocks of `blockSize` (a prefix length),
// and a node allocates only inside the blocks it owns. Pure: the blocks file's text, the block holding an address,
// a range set cut down to the owned blocks (everything else becomes excluded, so the allocator, its iteration order
// and every pool count stay as they are).
import { Exclusions, type Interval } from "../net/exclusions.js";
import { type Addr, broadcastOf, type Cidr, formatCIDR, networkOf, parseCIDR } from "../net/ip.js";
import type { Range, RangeSet } from "../net/range.js";

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
