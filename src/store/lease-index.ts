// The lease index of one network: which addresses are leased, and a table from a 64-bit hash of each lease's owner
// to its address, so that "is this address used", "the next unused address after x" and "which addresses may this
// owner hold" are binary searches at 60,000 leases as at 50. Pure: the bytes come and go through network.ts.
//
// On disk it is two files: a base (sorted tables, written whole, read in place without parsing) and a journal of
// the changes made since, one appended line per invocation. An ADD or DEL therefore writes what changed, not the
// whole table; the journal is folded into a new base every COMPACT_AFTER lines. Both carry checksums; a damaged
// or foreign file is ignored, and the index is rebuilt from the lease files, which stay the truth.
import type { Addr } from "../net/ip.js";

/** Two 32-bit FNV-1a variants over the UTF-16 units of the owner key: 64 bits against collisions. */
function ownerHash(key: string): [number, number] {
  let h1 = 0x811c9dc5;
  let h2 = 0x050c5d1f;
  for (let i = 0; i < key.length; i++) {
    const c = key.charCodeAt(i);
    h1 = Math.imul(h1 ^ c, 0x01000193);
    h2 = Math.imul(h2 ^ c, 0x01000193) ^ (h2 >>> 15);
  }
  return [h1 >>> 0, h2 >>> 0];
}

const MASK32 = 0xffffffffn;
function v6Words(n: bigint): [number, number, number, number] {
  return [Number((n >> 96n) & MASK32), Number((n >> 64n) & MASK32), Number((n >> 32n) & MASK32), Number(n & MASK32)];
}
function wordsV6(w: Uint32Array, i: number): bigint {
  return (BigInt(w[i]!) << 96n) | (BigInt(w[i + 1]!) << 64n) | (BigInt(w[i + 2]!) << 32n) | BigInt(w[i + 3]!);
}

/** First record index in `w` (records of `width` words) whose first `prefix` words are >= key. */
function lowerBound(w: Uint32Array, width: number, key: ArrayLike<number>, prefix: number): number {
  let lo = 0;
  let hi = w.length / width;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (compareAt(w, mid * width, key, prefix) < 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
function compareAt(w: Uint32Array, base: number, key: ArrayLike<number>, prefix: number): number {
  for (let k = 0; k < prefix; k++) {
    const a = w[base + k]!;
    const b = key[k]!;
    if (a !== b) return a < b ? -1 : 1;
  }
  return 0;
}

/** A Uint32Array that grows: rows are appended word by word, without an array per row. */
class Words {
  a = new Uint32Array(1024);
  n = 0;
  push(w: number): void {
    if (this.n === this.a.length) {
      const bigger = new Uint32Array(this.a.length * 2);
      bigger.set(this.a);
      this.a = bigger;
    }
    this.a[this.n++] = w;
  }
  get words(): Uint32Array {
    return this.a.subarray(0, this.n);
  }
}

const RADIX = 2 ** 21; // row positions below this pack with a 32-bit word into one exact double (2^53)

/**
 * Rows of `width` words sorted lexicographically and without repeats, with native typed-array sorts only: one
 * stable pass per word from the last (the key word times 2^21 plus the row's current position, in a Float64Array,
 * sorted numerically). A comparator written in JavaScript is what made a rebuild at 60,000 leases slow.
 */
function sortRows(words: Uint32Array, width: number): Uint32Array {
  const n = words.length / width;
  if (n < 2) return words;
  if (width === 1) return dedup(words.slice().sort(), 1);
  if (n >= RADIX) return sortRowsSlowly(words, width);
  let order = new Int32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  const keys = new Float64Array(n);
  for (let k = width - 1; k >= 0; k--) {
    for (let i = 0; i < n; i++) keys[i] = words[order[i]! * width + k]! * RADIX + i;
    keys.sort();
    const next = new Int32Array(n);
    for (let i = 0; i < n; i++) next[i] = order[keys[i]! % RADIX]!;
    order = next;
  }
  const out = new Uint32Array(words.length);
  for (let i = 0; i < n; i++) out.set(words.subarray(order[i]! * width, order[i]! * width + width), i * width);
  return dedup(out, width);
}

function sortRowsSlowly(words: Uint32Array, width: number): Uint32Array {
  const rows: number[][] = [];
  for (let i = 0; i < words.length; i += width) rows.push(Array.from(words.subarray(i, i + width)));
  rows.sort((a, b) => {
    for (let k = 0; k < width; k++) if (a[k] !== b[k]) return a[k]! < b[k]! ? -1 : 1;
    return 0;
  });
  const out = new Uint32Array(words.length);
  rows.forEach((r, i) => {
    out.set(r, i * width);
  });
  return dedup(out, width);
}

/** Drops rows equal to the one before (the rows are sorted). */
function dedup(sorted: Uint32Array, width: number): Uint32Array {
  let n = 0;
  for (let i = 0; i < sorted.length; i += width) {
    if (n > 0 && compareAt(sorted, (n - 1) * width, sorted.subarray(i, i + width), width) === 0) continue;
    if (n * width !== i) sorted.copyWithin(n * width, i, i + width);
    n++;
  }
  return sorted.subarray(0, n * width);
}

/**
 * The sorted rows of `base` that `gone` does not drop (it is asked with the row's word `at`), merged with the
 * sorted rows `added`, repeats dropped. Runs of kept rows are copied natively.
 */
function mergeRows(
  base: Uint32Array,
  width: number,
  at: number,
  gone: (t: Uint32Array, i: number) => boolean,
  added: Uint32Array,
): Uint32Array {
  const out = new Uint32Array(base.length + added.length);
  let o = 0;
  let runStart = 0;
  let j = 0; // next added row
  const flush = (end: number) => {
    out.set(base.subarray(runStart, end), o);
    o += end - runStart;
  };
  for (let i = 0; i < base.length; i += width) {
    while (j < added.length && compareAt(base, i, added.subarray(j, j + width), width) > 0) {
      flush(i);
      runStart = i;
      out.set(added.subarray(j, j + width), o);
      o += width;
      j += width;
    }
    if (gone(base, i + at)) {
      flush(i);
      runStart = i + width;
    }
  }
  flush(base.length);
  out.set(added.subarray(j), o);
  o += added.length - j;
  return dedup(out.subarray(0, o), width);
}

/** Collects leases for a new index, row by row, then sorts each table once. */
export class LeaseIndexBuilder {
  private readonly v4 = new Words();
  private readonly v6 = new Words();
  private readonly o4 = new Words();
  private readonly o6 = new Words();

  add(ip: Addr, owner: string | null): void {
    const h = owner === null ? null : ownerHash(owner);
    if (!ip.v6) {
      const n = Number(ip.n);
      this.v4.push(n);
      if (h) {
        this.o4.push(h[0]);
        this.o4.push(h[1]);
        this.o4.push(n);
      }
      return;
    }
    const w = v6Words(ip.n);
    for (const x of w) this.v6.push(x);
    if (h) {
      this.o6.push(h[0]);
      this.o6.push(h[1]);
      for (const x of w) this.o6.push(x);
    }
  }

  build(): LeaseIndex {
    return LeaseIndex.fromTables(
      sortRows(this.v4.words, 1),
      sortRows(this.v6.words, 4),
      sortRows(this.o4.words, 3),
      sortRows(this.o6.words, 6),
    );
  }
}

interface IndexedLease {
  ip: Addr;
  /** The trimmed owner text, or null when the lease could not be read (not a regular file). */
  owner: string | null;
}

type Hash = [number, number];

export class LeaseIndex {
  // the base: sorted flat tables of u32 words
  private constructor(
    private v4: Uint32Array, // [addr]
    private v6: Uint32Array, // [a0, a1, a2, a3]
    private owners4: Uint32Array, // [h1, h2, addr]
    private owners6: Uint32Array, // [h1, h2, a0, a1, a2, a3]
  ) {}
  // changes since the base, from the journal and from this invocation; a removed base row stays removed even when
  // the address is leased again (to someone else, who is then in `added`)
  private added4 = new Map<number, Hash | null>();
  private removed4 = new Set<number>();
  private added6 = new Map<bigint, Hash | null>();
  private removed6 = new Set<bigint>();
  /** journal lines applied on load, and the ops of this invocation not yet written */
  journalLines = 0;
  private pending: string[] = [];

  static fromLeases(leases: Iterable<IndexedLease>): LeaseIndex {
    const b = new LeaseIndexBuilder();
    for (const { ip, owner } of leases) b.add(ip, owner);
    return b.build();
  }

  /** From sorted tables without repeats (LeaseIndexBuilder makes them). */
  static fromTables(v4: Uint32Array, v6: Uint32Array, owners4: Uint32Array, owners6: Uint32Array): LeaseIndex {
    return new LeaseIndex(v4, v6, owners4, owners6);
  }

  private baseHas4(n: number): boolean {
    const i = lowerBound(this.v4, 1, [n], 1);
    return i < this.v4.length && this.v4[i] === n;
  }
  private baseHas6(n: bigint): boolean {
    const w = v6Words(n);
    const i = lowerBound(this.v6, 4, w, 4) * 4;
    return i < this.v6.length && compareAt(this.v6, i, w, 4) === 0;
  }

  has(ip: Addr): boolean {
    if (!ip.v6) {
      const n = Number(ip.n);
      return this.added4.has(n) || (!this.removed4.has(n) && this.baseHas4(n));
    }
    return this.added6.has(ip.n) || (!this.removed6.has(ip.n) && this.baseHas6(ip.n));
  }

  /** The first address in [from, to] (one family) that is not leased, or null: a walk over leased runs only. */
  nextUnused(from: Addr, to: Addr): bigint | null {
    if (!from.v6) {
      const w = this.v4;
      const end = Number(to.n);
      let x = Number(from.n);
      let i = lowerBound(w, 1, [x], 1);
      while (x <= end) {
        while (i < w.length && w[i]! < x) i++;
        const inBase = i < w.length && w[i] === x && !this.removed4.has(x);
        if (!inBase && !this.added4.has(x)) return BigInt(x);
        x++;
      }
      return null;
    }
    const w = this.v6;
    let x = from.n;
    let i = lowerBound(w, 4, v6Words(x), 4) * 4;
    while (x <= to.n) {
      while (i < w.length && wordsV6(w, i) < x) i += 4;
      const inBase = i < w.length && wordsV6(w, i) === x && !this.removed6.has(x);
      if (!inBase && !this.added6.has(x)) return x;
      x++;
    }
    return null;
  }

  /** Calls `fn` with every leased address in [from, to] (one family): base rows ascending, then recent changes. */
  forEachIn(from: Addr, to: Addr, fn: (n: bigint) => void): void {
    if (!from.v6) {
      const w = this.v4;
      const start = Number(from.n);
      const end = Number(to.n);
      for (let i = lowerBound(w, 1, [start], 1); i < w.length && w[i]! <= end; i++)
        if (!this.removed4.has(w[i]!)) fn(BigInt(w[i]!));
      for (const n of this.added4.keys()) if (n >= start && n <= end) fn(BigInt(n));
      return;
    }
    const w = this.v6;
    for (let i = lowerBound(w, 4, v6Words(from.n), 4) * 4; i < w.length; i += 4) {
      const n = wordsV6(w, i);
      if (n > to.n) break;
      if (!this.removed6.has(n)) fn(n);
    }
    for (const n of this.added6.keys()) if (n >= from.n && n <= to.n) fn(n);
  }

  /** How many addresses in [from, to] (one family) are leased: two binary searches and the recent changes. */
  countIn(from: Addr, to: Addr): number {
    if (from.n > to.n) return 0;
    let count: number;
    if (!from.v6) {
      const start = Number(from.n);
      const end = Number(to.n);
      count = lowerBound(this.v4, 1, [end + 1], 1) - lowerBound(this.v4, 1, [start], 1);
      if (end === 0xffffffff) count = this.v4.length - lowerBound(this.v4, 1, [start], 1);
      for (const n of this.removed4) if (n >= start && n <= end && this.baseHas4(n)) count--;
      for (const n of this.added4.keys()) if (n >= start && n <= end) count++;
      return count;
    }
    const lo = lowerBound(this.v6, 4, v6Words(from.n), 4);
    const hi = to.n === (1n << 128n) - 1n ? this.v6.length / 4 : lowerBound(this.v6, 4, v6Words(to.n + 1n), 4);
    count = hi - lo;
    for (const n of this.removed6) if (n >= from.n && n <= to.n && this.baseHas6(n)) count--;
    for (const n of this.added6.keys()) if (n >= from.n && n <= to.n) count++;
    return count;
  }

  /** Addresses whose lease owner hashes like `owner`: to be verified against the lease files. */
  candidatesFor(owner: string): Addr[] {
    const h = ownerHash(owner);
    const out: Addr[] = [];
    const o4 = this.owners4;
    for (let i = lowerBound(o4, 3, h, 2); i * 3 < o4.length && compareAt(o4, i * 3, h, 2) === 0; i++) {
      const n = o4[i * 3 + 2]!;
      if (!this.removed4.has(n)) out.push({ v6: false, n: BigInt(n) });
    }
    const o6 = this.owners6;
    for (let i = lowerBound(o6, 6, h, 2); i * 6 < o6.length && compareAt(o6, i * 6, h, 2) === 0; i++) {
      const n = wordsV6(o6, i * 6 + 2);
      if (!this.removed6.has(n)) out.push({ v6: true, n });
    }
    for (const [n, hh] of this.added4)
      if (hh && hh[0] === h[0] && hh[1] === h[1]) out.push({ v6: false, n: BigInt(n) });
    for (const [n, hh] of this.added6) if (hh && hh[0] === h[0] && hh[1] === h[1]) out.push({ v6: true, n });
    return out;
  }

  get size(): number {
    let n = this.v4.length + this.v6.length / 4 + this.added4.size + this.added6.size;
    for (const x of this.removed4) if (this.baseHas4(x)) n--;
    for (const x of this.removed6) if (this.baseHas6(x)) n--;
    return n;
  }

  add(ip: Addr, owner: string | null): void {
    this.apply(ip, owner === null ? null : ownerHash(owner));
    this.pending.push(opText("+", ip, owner === null ? null : ownerHash(owner)));
  }

  remove(ip: Addr): void {
    this.apply(ip, undefined);
    this.pending.push(opText("-", ip, null));
  }

  /** `hash` undefined: removal; null: a lease whose owner is unknown. */
  private apply(ip: Addr, hash: Hash | null | undefined): void {
    if (!ip.v6) {
      const n = Number(ip.n);
      this.added4.delete(n);
      if (this.baseHas4(n)) this.removed4.add(n);
      if (hash !== undefined) this.added4.set(n, hash);
      return;
    }
    this.added6.delete(ip.n);
    if (this.baseHas6(ip.n)) this.removed6.add(ip.n);
    if (hash !== undefined) this.added6.set(ip.n, hash);
  }

  get hasPending(): boolean {
    return this.pending.length > 0;
  }

  /**
   * A copy with the changes folded into the base tables (for writing a new base). The base is sorted and the
   * changes are few: surviving rows are kept in order and the added ones, sorted on their own, merged in; a
   * linear pass, where sorting everything again would cost a second at 60,000 leases.
   */
  compacted(): LeaseIndex {
    if (this.added4.size + this.removed4.size + this.added6.size + this.removed6.size === 0) return this;
    const v4 = new Words();
    const v6 = new Words();
    const o4 = new Words();
    const o6 = new Words();
    for (const [n, h] of this.added4) {
      v4.push(n);
      if (h) for (const x of [h[0], h[1], n]) o4.push(x);
    }
    for (const [n, h] of this.added6) {
      const w = v6Words(n);
      for (const x of w) v6.push(x);
      if (h) for (const x of [h[0], h[1], ...w]) o6.push(x);
    }
    const gone4 = (t: Uint32Array, i: number) => this.removed4.has(t[i]!);
    const gone6 = (t: Uint32Array, i: number) => this.removed6.has(wordsV6(t, i));
    return new LeaseIndex(
      mergeRows(this.v4, 1, 0, gone4, sortRows(v4.words, 1)),
      mergeRows(this.v6, 4, 0, gone6, sortRows(v6.words, 4)),
      mergeRows(this.owners4, 3, 2, gone4, sortRows(o4.words, 3)),
      mergeRows(this.owners6, 6, 2, gone6, sortRows(o6.words, 6)),
    );
  }

  // --- the base file: magic, a JSON header line, then the four tables as little-endian u32 words ---
  // (x86-64 and arm64 Linux are both little-endian, so the tables are viewed in place as Uint32Array)

  static readonly MAGIC = "local-ipam index 2\n";

  /** The base as pieces to write in order: header (padded so that the tables start 4-byte aligned), tables. */
  encodeBase(
    id: string,
    stamp: string,
    hash: (b: Uint8Array) => number,
    encode: (s: string) => Uint8Array,
  ): Uint8Array[] {
    const tables = [this.v4, this.v6, this.owners4, this.owners6];
    const bytes = tables.map((t) => new Uint8Array(t.buffer, t.byteOffset, t.byteLength));
    const body = new Uint8Array(bytes.reduce((n, b) => n + b.length, 0));
    let off = 0;
    for (const b of bytes) {
      body.set(b, off);
      off += b.length;
    }
    let header = `${LeaseIndex.MAGIC}${JSON.stringify({ id, stamp, counts: tables.map((t) => t.length), sum: hash(body) })}`;
    header += `${" ".repeat(3 - (header.length % 4))}\n`;
    return [encode(header), body];
  }

  /** The base, its id and stamp; null for anything that is not a whole base of this version. */
  static decodeBase(
    buf: Uint8Array,
    hash: (b: Uint8Array) => number,
  ): { index: LeaseIndex; id: string; stamp: string } | null {
    const magic = LeaseIndex.MAGIC;
    if (buf.length < magic.length) return null;
    for (let i = 0; i < magic.length; i++) if (buf[i] !== magic.charCodeAt(i)) return null;
    const nl = buf.indexOf(10, magic.length);
    if (nl < 0 || nl > 4096) return null;
    let header: { id?: unknown; stamp?: unknown; counts?: unknown; sum?: unknown };
    try {
      header = JSON.parse(String.fromCharCode(...buf.subarray(magic.length, nl)));
    } catch {
      return null;
    }
    const counts = header.counts;
    if (typeof header.id !== "string" || typeof header.stamp !== "string" || typeof header.sum !== "number")
      return null;
    if (!Array.isArray(counts) || counts.length !== 4 || !counts.every((c) => Number.isInteger(c) && c >= 0))
      return null;
    const [c4, c6, co4, co6] = counts as number[];
    if (c6! % 4 || co4! % 3 || co6! % 6) return null;
    const total = c4! + c6! + co4! + co6!;
    const bodyStart = nl + 1;
    if (buf.length !== bodyStart + total * 4) return null;
    const bodyBytes = buf.subarray(bodyStart);
    if (hash(bodyBytes) !== header.sum) return null;
    const aligned = (buf.byteOffset + bodyStart) % 4 === 0;
    const body = aligned
      ? new Uint32Array(buf.buffer, buf.byteOffset + bodyStart, total)
      : new Uint32Array(bodyBytes.slice().buffer);
    let off = 0;
    const take = (n: number) => body.subarray(off, (off += n));
    const index = new LeaseIndex(take(c4!), take(c6!), take(co4!), take(co6!));
    return { index, id: header.id, stamp: header.stamp };
  }

  // --- the journal: one line per invocation that changed something ---
  // "<base id> <stamp after the change> <op>,<op>,... <checksum>\n", op = +4:<hex addr>:<h1>:<h2> | -6:<hex addr> ...

  /** The journal line for this invocation's changes ("=" for none: only the directory's stamp moved). */
  journalLine(baseId: string, stamp: string, hash: (s: string) => number): string {
    const body = `${baseId} ${stamp} ${this.pending.length > 0 ? this.pending.join(",") : "="}`;
    return `${body} ${hash(body).toString(16)}\n`;
  }

  clearPending(): void {
    this.pending = [];
  }

  /**
   * Applies the journal's lines written against base `baseId`. Returns the stamp of the last good line (null when
   * there is none) and whether every line was good: a torn or foreign line ends the replay.
   */
  replay(text: string, baseId: string, hash: (s: string) => number): { stamp: string | null; clean: boolean } {
    let stamp: string | null = null;
    const lines = text.split("\n");
    if (lines[lines.length - 1] === "") lines.pop();
    for (const line of lines) {
      const cut = line.lastIndexOf(" ");
      const body = line.slice(0, cut);
      if (cut < 0 || hash(body).toString(16) !== line.slice(cut + 1)) return { stamp, clean: false };
      const [id, lineStamp, ops] = body.split(" ");
      if (id !== baseId || lineStamp === undefined || ops === undefined) return { stamp, clean: false };
      for (const op of ops === "=" ? [] : ops.split(",")) {
        const parsed = parseOp(op);
        if (!parsed) return { stamp, clean: false };
        this.apply(parsed.ip, parsed.hash);
      }
      stamp = lineStamp;
      this.journalLines++;
    }
    return { stamp, clean: true };
  }
}

function opText(sign: "+" | "-", ip: Addr, hash: Hash | null): string {
  const addr = `${ip.v6 ? 6 : 4}:${ip.n.toString(16)}`;
  if (sign === "-") return `-${addr}`;
  return hash ? `+${addr}:${hash[0].toString(16)}:${hash[1].toString(16)}` : `+${addr}:-`;
}

function parseOp(op: string): { ip: Addr; hash: Hash | null | undefined } | null {
  const parts = op.split(":");
  const sign = parts[0]?.[0];
  const family = parts[0]?.slice(1);
  if ((sign !== "+" && sign !== "-") || (family !== "4" && family !== "6") || !/^[0-9a-f]{1,32}$/.test(parts[1] ?? ""))
    return null;
  const n = BigInt(`0x${parts[1]}`);
  const ip = { v6: family === "6", n };
  if (sign === "-") return parts.length === 2 ? { ip, hash: undefined } : null;
  if (parts.length === 3 && parts[2] === "-") return { ip, hash: null };
  if (parts.length !== 4 || !/^[0-9a-f]{1,8}$/.test(parts[2]!) || !/^[0-9a-f]{1,8}$/.test(parts[3]!)) return null;
  return { ip, hash: [Number.parseInt(parts[2]!, 16), Number.parseInt(parts[3]!, 16)] };
}
