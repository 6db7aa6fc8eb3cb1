// Excluded addresses of one family: sorted, merged intervals, kept compact. An exclude list comes by the ten
// thousand (every address of a /14 reserved elsewhere), so IPv4 intervals live in one Uint32Array rather than as
// objects holding BigInts, and every question (is n excluded? how many are?) is a binary search or one pass.

/** [from, to] inclusive, as address values of one family. */
export interface Interval {
  from: bigint;
  to: bigint;
}

/** Intervals sorted by start and merged where they overlap or touch. */
function mergeIntervals(entries: readonly Interval[]): Interval[] {
  const sorted = entries.slice().sort((a, b) => (a.from < b.from ? -1 : a.from > b.from ? 1 : 0));
  const out: Interval[] = [];
  for (const e of sorted) {
    const last = out[out.length - 1];
    if (last && e.from <= last.to + 1n) {
      if (e.to > last.to) last.to = e.to;
    } else out.push({ from: e.from, to: e.to });
  }
  return out;
}

export class Exclusions {
  /** IPv4: from0, to0, from1, to1, ... as numbers; IPv6: the same as BigInts. */
  private readonly v4: Uint32Array | null;
  private readonly v6: readonly bigint[] | null;
  private covered: bigint | null = null;

  private constructor(v4: Uint32Array | null, v6: readonly bigint[] | null) {
    this.v4 = v4;
    this.v6 = v6;
  }

  /** From IPv4 bounds already sorted and merged (see v4Intervals). */
  static ofV4Bounds(bounds: Uint32Array): Exclusions {
    return new Exclusions(bounds, null);
  }

  /** From intervals in any order, overlapping or not. */
  static of(intervals: readonly Interval[], v6: boolean): Exclusions {
    const merged = mergeIntervals(intervals);
    if (v6)
      return new Exclusions(
        null,
        merged.flatMap((e) => [e.from, e.to]),
      );
    const bounds = new Uint32Array(merged.length * 2);
    merged.forEach((e, i) => {
      bounds[2 * i] = Number(e.from);
      bounds[2 * i + 1] = Number(e.to);
    });
    return new Exclusions(bounds, null);
  }

  get isV6(): boolean {
    return this.v6 !== null;
  }

  /** How many intervals. */
  get length(): number {
    return (this.v4 ?? this.v6!).length / 2;
  }

  from(i: number): bigint {
    return this.v4 ? BigInt(this.v4[2 * i]!) : this.v6![2 * i]!;
  }

  to(i: number): bigint {
    return this.v4 ? BigInt(this.v4[2 * i + 1]!) : this.v6![2 * i + 1]!;
  }

  /** Every interval, as objects (for messages and tests; the allocator asks find). */
  intervals(): Interval[] {
    return Array.from({ length: this.length }, (_, i) => ({ from: this.from(i), to: this.to(i) }));
  }

  /** The index of the interval holding n, or -1. */
  find(n: bigint): number {
    // the first interval ending at or after n, by binary search
    let lo = 0;
    let hi = this.length;
    if (this.v4) {
      if (n < 0n || n > 0xffffffffn) return -1;
      const x = Number(n);
      const b = this.v4;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (b[2 * mid + 1]! < x) lo = mid + 1;
        else hi = mid;
      }
      return lo < this.length && b[2 * lo]! <= x ? lo : -1;
    }
    const b = this.v6!;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (b[2 * mid + 1]! < n) lo = mid + 1;
      else hi = mid;
    }
    return lo < this.length && b[2 * lo]! <= n ? lo : -1;
  }

  /** How many addresses the intervals cover (IPv4 counted as numbers: 40,000 BigInt additions are slow). */
  get count(): bigint {
    if (this.covered === null) {
      if (this.v4) {
        let n = 0;
        const b = this.v4;
        for (let i = 0; i < b.length; i += 2) n += b[i + 1]! - b[i]! + 1;
        this.covered = BigInt(n);
      } else {
        let n = 0n;
        const b = this.v6!;
        for (let i = 0; i < b.length; i += 2) n += b[i + 1]! - b[i]! + 1n;
        this.covered = n;
      }
    }
    return this.covered;
  }

  /** The part inside [lo, hi]: two binary searches, and only the first and last interval cut; null when empty. */
  clip(lo: bigint, hi: bigint): Exclusions | null {
    let first = this.find(lo);
    if (first < 0) first = this.firstStartingAfter(lo);
    const end = this.firstStartingAfter(hi);
    if (first >= end) return null;
    if (this.v4) {
      const out = this.v4.slice(2 * first, 2 * end);
      out[0] = Math.max(out[0]!, Number(lo));
      out[out.length - 1] = Math.min(out[out.length - 1]!, Number(hi));
      return new Exclusions(out, null);
    }
    const out = this.v6!.slice(2 * first, 2 * end);
    if (out[0]! < lo) out[0] = lo;
    if (out[out.length - 1]! > hi) out[out.length - 1] = hi;
    return new Exclusions(null, out);
  }

  /** Both lists as one, merged (a range set's own exclusions and the ipam-wide ones). */
  union(other: Exclusions): Exclusions {
    if (other.length === 0) return this;
    if (this.length === 0) return other;
    if (!this.v4 || !other.v4) return Exclusions.of([...this.intervals(), ...other.intervals()], this.isV6);
    // two sorted IPv4 lists: one linear merge (80,000 exclusions and a node's blocks, on every cluster ADD)
    const a = this.v4;
    const b = other.v4;
    const out = new Uint32Array(a.length + b.length);
    let i = 0;
    let j = 0;
    let m = 0;
    while (i < a.length || j < b.length) {
      const fromA = j >= b.length || (i < a.length && a[i]! <= b[j]!);
      const from = fromA ? a[i]! : b[j]!;
      const to = fromA ? a[i + 1]! : b[j + 1]!;
      if (fromA) i += 2;
      else j += 2;
      if (m > 0 && from <= out[m - 1]! + 1) {
        if (to > out[m - 1]!) out[m - 1] = to;
      } else {
        out[m] = from;
        out[m + 1] = to;
        m += 2;
      }
    }
    return new Exclusions(out.slice(0, m), null);
  }

  /** The number of intervals starting after n. */
  private firstStartingAfter(n: bigint): number {
    let lo = 0;
    let hi = this.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.from(mid) <= n) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}

/**
 * A plain IPv4 address ("10.0.0.5") or CIDR without host bits ("10.0.0.64/27") as [from, to], or null for
 * anything else: IPv6, a wrong entry (parsed again the slow way to say what is wrong), or not a string. Octets
 * as Go's ParseIP takes them (no leading zeros); the mask as Go's ParseCIDR (1 to 8 digits, leading zeros allowed).
 */
export function plainV4Interval(entry: unknown): [number, number] | null {
  if (typeof entry !== "string") return null;
  let n = 0;
  let part = 0;
  let digits = 0;
  let dots = 0;
  let i = 0;
  for (; i < entry.length; i++) {
    const c = entry.charCodeAt(i);
    if (c === 47) break; // "/"
    if (c === 46) {
      if (digits === 0 || dots === 3) return null;
      n = n * 256 + part;
      part = 0;
      digits = 0;
      dots++;
      continue;
    }
    if (c < 48 || c > 57 || (digits === 1 && part === 0)) return null;
    part = part * 10 + (c - 48);
    if (++digits > 3 || part > 255) return null;
  }
  if (dots !== 3 || digits === 0) return null;
  n = n * 256 + part;
  if (i === entry.length) return [n, n];
  const maskDigits = entry.length - i - 1;
  if (maskDigits < 1 || maskDigits > 8) return null;
  let prefix = 0;
  for (i++; i < entry.length; i++) {
    const c = entry.charCodeAt(i);
    if (c < 48 || c > 57) return null;
    prefix = prefix * 10 + (c - 48);
  }
  if (prefix > 32) return null;
  const size = 2 ** (32 - prefix);
  return n % size === 0 ? [n, n + size - 1] : null;
}

const POSITIONS = 2 ** 21;

/**
 * The plain IPv4 entries of `list` (see plainV4Interval) as sorted, merged bounds, and the indices of every
 * other entry. The platform's v4Intervals computes the same in native code; this is its reference.
 */
export function v4IntervalsOf(list: readonly unknown[]): { bounds: Uint32Array; skipped: number[] } {
  const froms: number[] = [];
  const tos: number[] = [];
  const skipped: number[] = [];
  for (let i = 0; i < list.length; i++) {
    const iv = plainV4Interval(list[i]);
    if (iv) {
      froms.push(iv[0]);
      tos.push(iv[1]);
    } else skipped.push(i);
  }
  // in order of start: a start and its position pack into one exact double (2^32 * 2^21 < 2^53), which a typed
  // array sorts natively; past 2^21 entries, a comparator
  let order: ArrayLike<number>;
  if (froms.length < POSITIONS) {
    const packed = new Float64Array(froms.length);
    for (let k = 0; k < froms.length; k++) packed[k] = froms[k]! * POSITIONS + k;
    order = packed.sort().map((x) => x % POSITIONS);
  } else {
    order = Array.from(froms.keys()).sort((a, b) => froms[a]! - froms[b]!);
  }
  const out: number[] = [];
  for (let k = 0; k < order.length; k++) {
    const from = froms[order[k]!]!;
    const to = tos[order[k]!]!;
    const last = out.length - 1;
    if (last > 0 && from <= out[last]! + 1) {
      if (to > out[last]!) out[last] = to;
    } else out.push(from, to);
  }
  return { bounds: Uint32Array.from(out), skipped };
}
