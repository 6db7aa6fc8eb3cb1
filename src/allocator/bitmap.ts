// Which addresses of one range are taken, by offset from the range's first address. A dense bitmap for ranges
// up to DENSE_LIMIT addresses (an IPv4 /12 is 128 KiB of bits); beyond that (an IPv6 /64) a sparse set of the
// taken offsets, which only ever holds as many entries as there are leases.
export interface OffsetSet {
  readonly size: bigint;
  has(off: bigint): boolean;
  add(off: bigint): void;
  delete(off: bigint): void;
  /** The first offset in [from, to] that is not taken, or -1n. */
  nextClear(from: bigint, to: bigint): bigint;
  /** Takes every offset in [from, to] (an excluded block). */
  addInterval(from: bigint, to: bigint): void;
  count(): number;
}

export const DENSE_LIMIT = 1n << 20n;

export class DenseBitmap implements OffsetSet {
  private readonly words: Uint32Array;
  private taken = 0;
  constructor(readonly size: bigint) {
    this.words = new Uint32Array(Math.ceil(Number(size) / 32));
  }
  has(off: bigint): boolean {
    const i = Number(off);
    return (this.words[i >>> 5]! & (1 << (i & 31))) !== 0;
  }
  add(off: bigint): void {
    this.addNumber(Number(off));
  }
  addNumber(i: number): void {
    const bit = 1 << (i & 31);
    if ((this.words[i >>> 5]! & bit) === 0) this.taken++;
    this.words[i >>> 5]! |= bit;
  }
  /**
   * Marks every `addrs[k] - base`: one indexed loop with the bit operations inline, because this runs once per
   * lease on every ADD, in code that is still cold (a for-of over 60,000 entries cost 12 ms where this costs 1).
   */
  addAll(addrs: Uint32Array, base: number): void {
    const words = this.words;
    let taken = this.taken;
    for (let k = 0; k < addrs.length; k++) {
      const i = addrs[k]! - base;
      const w = i >>> 5;
      const bit = 1 << (i & 31);
      if ((words[w]! & bit) === 0) {
        taken++;
        words[w] = words[w]! | bit;
      }
    }
    this.taken = taken;
  }
  delete(off: bigint): void {
    const i = Number(off);
    const bit = 1 << (i & 31);
    if ((this.words[i >>> 5]! & bit) !== 0) this.taken--;
    this.words[i >>> 5]! &= ~bit;
  }
  addInterval(from: bigint, to: bigint): void {
    for (let i = Number(from), last = Number(to); i <= last; i++) this.addNumber(i);
  }
  nextClear(from: bigint, to: bigint): bigint {
    let i = Number(from);
    const last = Math.min(Number(to), Number(this.size) - 1);
    while (i <= last) {
      const word = this.words[i >>> 5]!;
      if (word === 0xffffffff) {
        i = (i | 31) + 1; // whole word taken: jump to the next one
        continue;
      }
      if ((word & (1 << (i & 31))) === 0) return BigInt(i);
      i++;
    }
    return -1n;
  }
  count(): number {
    return this.taken;
  }
}

export class SparseSet implements OffsetSet {
  private readonly taken = new Set<bigint>();
  /** excluded blocks, sorted: an IPv6 exclusion may hold 2^48 offsets, never enumerated */
  private readonly blocks: [bigint, bigint][] = [];
  constructor(readonly size: bigint) {}
  has(off: bigint): boolean {
    return this.taken.has(off) || this.blocks.some(([a, b]) => off >= a && off <= b);
  }
  addInterval(from: bigint, to: bigint): void {
    this.blocks.push([from, to]);
    this.blocks.sort((x, y) => (x[0] < y[0] ? -1 : 1));
  }
  add(off: bigint): void {
    this.taken.add(off);
  }
  delete(off: bigint): void {
    this.taken.delete(off);
  }
  nextClear(from: bigint, to: bigint): bigint {
    const last = to < this.size - 1n ? to : this.size - 1n;
    for (let i = from; i <= last; i++) {
      const block = this.blocks.find(([a, b]) => i >= a && i <= b);
      if (block) i = block[1]; // jump over the excluded block
      else if (!this.taken.has(i)) return i; // at most count() + blocks + 1 steps
    }
    return -1n;
  }
  count(): number {
    return this.taken.size;
  }
}

export function offsetSetFor(size: bigint): OffsetSet {
  return size <= DENSE_LIMIT ? new DenseBitmap(size) : new SparseSet(size);
}
