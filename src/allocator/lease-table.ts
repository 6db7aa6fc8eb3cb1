// The leases of one network as a compact table: the used addresses, sorted, and an owner-hash -> address table,
// so that "is this address used", "which addresses does this owner hold" and "which addresses of this range are
// used" are binary searches, at 60,000 leases as at 50. Serialised whole to the index file. Pure: no file system.
import type { Addr } from "../net/ip.js";

/** Two 32-bit FNV-1a variants over the UTF-16 units of the owner key: 64 bits against collisions. */
export function ownerHash(key: string): [number, number] {
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

/** A sorted table of fixed-width records of u32 words, compared word by word. */
class Records {
  constructor(
    public words: Uint32Array,
    readonly width: number,
  ) {}
  get length(): number {
    return this.words.length / this.width;
  }
  /** First record index whose first `prefix` words are >= key's. */
  lowerBound(key: ArrayLike<number>, prefix = this.width): number {
    let lo = 0;
    let hi = this.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.compare(mid, key, prefix) < 0) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
  compare(i: number, key: ArrayLike<number>, prefix: number): number {
    const base = i * this.width;
    for (let k = 0; k < prefix; k++) {
      const a = this.words[base + k]!;
      const b = key[k]!;
      if (a !== b) return a < b ? -1 : 1;
    }
    return 0;
  }
  has(key: ArrayLike<number>): boolean {
    const i = this.lowerBound(key);
    return i < this.length && this.compare(i, key, this.width) === 0;
  }
  insert(key: ArrayLike<number>): void {
    if (this.has(key)) return;
    const i = this.lowerBound(key) * this.width;
    const next = new Uint32Array(this.words.length + this.width);
    next.set(this.words.subarray(0, i));
    next.set(key as ArrayLike<number>, i);
    next.set(this.words.subarray(i), i + this.width);
    this.words = next;
  }
  remove(key: ArrayLike<number>): void {
    const i = this.lowerBound(key);
    if (i >= this.length || this.compare(i, key, this.width) !== 0) return;
    const at = i * this.width;
    const next = new Uint32Array(this.words.length - this.width);
    next.set(this.words.subarray(0, at));
    next.set(this.words.subarray(at + this.width), at);
    this.words = next;
  }
  static fromUnsorted(rows: number[][], width: number): Records {
    rows.sort((a, b) => {
      for (let k = 0; k < width; k++) if (a[k] !== b[k]) return a[k]! < b[k]! ? -1 : 1;
      return 0;
    });
    const words = new Uint32Array(rows.length * width);
    let last: number[] | null = null;
    let n = 0;
    for (const r of rows) {
      if (last && r.every((x, k) => x === last![k])) continue; // no duplicates
      words.set(r, n * width);
      n++;
      last = r;
    }
    return new Records(words.slice(0, n * width), width);
  }
}

export interface ScannedLease {
  ip: Addr;
  /** The trimmed owner text, or null when the lease could not be read (not a regular file). */
  owner: string | null;
}

export class LeaseTable {
  private constructor(
    private v4: Records, // [addr]
    private v6: Records, // [a0, a1, a2, a3]
    private owners4: Records, // [h1, h2, addr]
    private owners6: Records, // [h1, h2, a0, a1, a2, a3]
  ) {}

  static fromScan(leases: Iterable<ScannedLease>): LeaseTable {
    const v4: number[][] = [];
    const v6: number[][] = [];
    const o4: number[][] = [];
    const o6: number[][] = [];
    for (const { ip, owner } of leases) {
      const addr = ip.v6 ? v6Words(ip.n) : [Number(ip.n)];
      (ip.v6 ? v6 : v4).push(addr);
      if (owner !== null) (ip.v6 ? o6 : o4).push([...ownerHash(owner), ...addr]);
    }
    return new LeaseTable(
      Records.fromUnsorted(v4, 1),
      Records.fromUnsorted(v6, 4),
      Records.fromUnsorted(o4, 3),
      Records.fromUnsorted(o6, 6),
    );
  }

  get size(): number {
    return this.v4.length + this.v6.length;
  }

  has(ip: Addr): boolean {
    return ip.v6 ? this.v6.has(v6Words(ip.n)) : this.v4.has([Number(ip.n)]);
  }

  /** The used IPv4 addresses in [start, end] as numbers: the hot path of marking a bitmap, no BigInt each. */
  v4In(start: number, end: number): Uint32Array {
    const w = this.v4.words;
    const from = this.v4.lowerBound([start]);
    let to = from;
    while (to < w.length && w[to]! <= end) to++;
    return w.subarray(from, to);
  }

  /** Calls `fn` with every used address in [start, end] (same family), in ascending order. */
  forEachIn(start: Addr, end: Addr, fn: (n: bigint) => void): void {
    if (!start.v6) {
      const w = this.v4.words;
      const last = Number(end.n);
      for (let i = this.v4.lowerBound([Number(start.n)]); i < w.length && w[i]! <= last; i++) fn(BigInt(w[i]!));
      return;
    }
    const w = this.v6.words;
    for (let i = this.v6.lowerBound(v6Words(start.n)) * 4; i < w.length; i += 4) {
      const n = wordsV6(w, i);
      if (n > end.n) break;
      fn(n);
    }
  }

  /** Addresses whose lease owner hashes like `owner` (to be verified against the lease file). */
  candidatesFor(owner: string): Addr[] {
    const h = ownerHash(owner);
    const out: Addr[] = [];
    for (let i = this.owners4.lowerBound(h, 2); i < this.owners4.length && this.owners4.compare(i, h, 2) === 0; i++)
      out.push({ v6: false, n: BigInt(this.owners4.words[i * 3 + 2]!) });
    for (let i = this.owners6.lowerBound(h, 2); i < this.owners6.length && this.owners6.compare(i, h, 2) === 0; i++)
      out.push({ v6: true, n: wordsV6(this.owners6.words, i * 6 + 2) });
    return out;
  }

  add(ip: Addr, owner: string): void {
    const addr = ip.v6 ? v6Words(ip.n) : [Number(ip.n)];
    (ip.v6 ? this.v6 : this.v4).insert(addr);
    (ip.v6 ? this.owners6 : this.owners4).insert([...ownerHash(owner), ...addr]);
  }

  remove(ip: Addr, owner: string | null): void {
    const addr = ip.v6 ? v6Words(ip.n) : [Number(ip.n)];
    (ip.v6 ? this.v6 : this.v4).remove(addr);
    if (owner !== null) (ip.v6 ? this.owners6 : this.owners4).remove([...ownerHash(owner), ...addr]);
  }

  // --- the index file: magic, a JSON header line, then the four tables as little-endian u32 words ---

  static readonly MAGIC = "local-ipam index 1\n";

  /**
   * The index file as pieces to write in order (no copy of the tables): the magic line, a JSON header padded so
   * that the tables start 4-byte aligned (to be viewed in place when read back), then the four tables.
   */
  encode(stamp: string): Uint8Array[] {
    const tables = [this.v4, this.v6, this.owners4, this.owners6].map((r) => r.words);
    const bytes = tables.map((t) => new Uint8Array(t.buffer, t.byteOffset, t.byteLength));
    let header = `${LeaseTable.MAGIC}${JSON.stringify({ stamp, counts: tables.map((t) => t.length), checksums: bytes.map(checksum) })}`;
    header += " ".repeat(3 - (header.length % 4)) + "\n";
    return [Buffer.from(header, "latin1"), ...bytes];
  }

  /** The table and its stamp, or null for anything that is not a whole index of this version. */
  static decode(buf: Uint8Array): { table: LeaseTable; stamp: string } | null {
    const magic = Buffer.from(LeaseTable.MAGIC);
    if (buf.length < magic.length || !Buffer.from(buf.buffer, buf.byteOffset, magic.length).equals(magic)) return null;
    const nl = buf.indexOf(10, magic.length);
    if (nl < 0) return null;
    let header: { stamp?: unknown; counts?: unknown; checksums?: unknown };
    try {
      header = JSON.parse(Buffer.from(buf.buffer, buf.byteOffset + magic.length, nl - magic.length).toString("latin1"));
    } catch {
      return null;
    }
    const counts = header.counts;
    if (typeof header.stamp !== "string" || !Array.isArray(counts) || counts.length !== 4) return null;
    if (!counts.every((c) => Number.isInteger(c) && c >= 0)) return null;
    const [c4, c6, co4, co6] = counts as number[];
    if (c6! % 4 || co4! % 3 || co6! % 6) return null;
    const total = c4! + c6! + co4! + co6!;
    const bodyStart = nl + 1;
    if (buf.length !== bodyStart + total * 4 || !Array.isArray(header.checksums)) return null;
    // view the tables in place when the body is aligned (it is, as we write it), else copy once
    const aligned = (buf.byteOffset + bodyStart) % 4 === 0;
    const body = aligned
      ? new Uint32Array(buf.buffer, buf.byteOffset + bodyStart, total)
      : new Uint32Array(new Uint8Array(buf.subarray(bodyStart)).buffer);
    let off = 0;
    const tables: Records[] = [];
    for (const [k, [n, width]] of ([[c4, 1], [c6, 4], [co4, 3], [co6, 6]] as const).entries()) {
      const words = body.subarray(off, (off += n!));
      if (checksum(new Uint8Array(words.buffer, words.byteOffset, words.byteLength)) !== header.checksums[k]) return null;
      tables.push(new Records(words, width));
    }
    return { table: new LeaseTable(tables[0]!, tables[1]!, tables[2]!, tables[3]!), stamp: header.stamp };
  }
}

/**
 * A checksum of the body, computed natively: Bun's wyhash in the compiled binary, SHA-1 under Node (tests). A
 * loop in JavaScript over 60,000 leases' words costs milliseconds of cold, interpreted code on every call.
 */
function checksum(bytes: Uint8Array): string {
  const bun = (globalThis as { Bun?: { hash: (data: Uint8Array) => number | bigint } }).Bun;
  if (bun) return `wy:${bun.hash(bytes).toString(16)}`;
  const { createHash } = require("node:crypto") as typeof import("node:crypto");
  return `sha1:${createHash("sha1").update(bytes).digest("hex")}`;
}
