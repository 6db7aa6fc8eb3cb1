// The few pieces of the protobuf wire format (https://protobuf.dev/programming-guides/encoding/) that the CRI
// messages in ./api.ts need: varints, length-delimited fields (strings, bytes, nested messages), repeated fields and
// maps, which protobuf encodes as a repeated nested message {1: key, 2: value} per entry. Proto3 semantics: scalars
// equal to their default (0, false, "") are not written; when a scalar field appears more than once the last one
// wins; occurrences of a nested message are merged, which for serialized bytes is plain concatenation.

/** Wire types. Groups (3, 4) are long deprecated and never used by the CRI. */
enum Wire {
  Varint = 0,
  Fixed64 = 1,
  Len = 2,
  Fixed32 = 5,
}

export class ProtoError extends Error {}

const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder("utf-8", { fatal: true });

/** Builds one message. Each method writes one field and returns the writer, so fields chain. */
export class Writer {
  private chunks: Uint8Array[] = [];
  private size = 0;

  private push(bytes: Uint8Array): void {
    this.chunks.push(bytes);
    this.size += bytes.length;
  }

  private varint(value: bigint): void {
    // int64/uint64 both travel as 64-bit two's complement; negative numbers take all 10 bytes.
    let v = BigInt.asUintN(64, value);
    const out: number[] = [];
    while (v >= 0x80n) {
      out.push(Number(v & 0x7fn) | 0x80);
      v >>= 7n;
    }
    out.push(Number(v));
    this.push(Uint8Array.from(out));
  }

  private tag(field: number, wire: Wire): void {
    this.varint(BigInt((field << 3) | wire));
  }

  /** int32, int64, uint32, uint64, enum: a varint. */
  int(field: number, value: number | bigint | undefined): this {
    if (value === undefined || value === 0 || value === 0n) return this;
    if (typeof value === "number" && !Number.isSafeInteger(value))
      throw new ProtoError(`field ${field}: ${value} is not an integer`);
    this.tag(field, Wire.Varint);
    this.varint(BigInt(value));
    return this;
  }

  bool(field: number, value: boolean | undefined): this {
    return value ? this.int(field, 1) : this;
  }

  bytes(field: number, value: Uint8Array | undefined): this {
    if (value === undefined || value.length === 0) return this;
    this.tag(field, Wire.Len);
    this.varint(BigInt(value.length));
    this.push(value);
    return this;
  }

  string(field: number, value: string | undefined): this {
    return value ? this.bytes(field, textEncoder.encode(value)) : this;
  }

  /**
   * A nested message, written even when empty as long as `build` is given a value: an empty message still
   * means "present" (a filter on state READY is the message {} with state 0).
   */
  message<T>(field: number, value: T | undefined, build: (w: Writer, v: T) => void): this {
    if (value === undefined) return this;
    const inner = new Writer();
    build(inner, value);
    const bytes = inner.finish();
    this.tag(field, Wire.Len);
    this.varint(BigInt(bytes.length));
    this.push(bytes);
    return this;
  }

  repeatedString(field: number, values: readonly string[] | undefined): this {
    // Each element is its own field occurrence; an empty string is still an element, so write it.
    for (const v of values ?? []) {
      const bytes = textEncoder.encode(v);
      this.tag(field, Wire.Len);
      this.varint(BigInt(bytes.length));
      this.push(bytes);
    }
    return this;
  }

  repeatedMessage<T>(field: number, values: readonly T[] | undefined, build: (w: Writer, v: T) => void): this {
    for (const v of values ?? []) this.message(field, v, build);
    return this;
  }

  /** map<string, string>: one entry message {1: key, 2: value} per pair, in key order (deterministic bytes). */
  map(field: number, entries: Readonly<Record<string, string>> | undefined): this {
    for (const key of Object.keys(entries ?? {}).sort()) {
      this.message(field, [key, entries![key]!] as const, (w, [k, v]) => w.string(1, k).string(2, v));
    }
    return this;
  }

  finish(): Uint8Array {
    const out = new Uint8Array(this.size);
    let off = 0;
    for (const c of this.chunks) {
      out.set(c, off);
      off += c.length;
    }
    return out;
  }
}

type FieldValue = bigint | Uint8Array;

/** A decoded message: every field number with its occurrences in wire order. Unknown fields are kept and ignored. */
export class Message {
  private constructor(private readonly fields: Map<number, { wire: Wire; value: FieldValue }[]>) {}

  static decode(buf: Uint8Array): Message {
    const fields = new Map<number, { wire: Wire; value: FieldValue }[]>();
    let pos = 0;
    const varint = (): bigint => {
      let result = 0n;
      for (let shift = 0n; shift < 70n; shift += 7n) {
        if (pos >= buf.length) throw new ProtoError("truncated varint");
        const b = buf[pos++]!;
        result |= BigInt(b & 0x7f) << shift;
        if (b < 0x80) return BigInt.asUintN(64, result);
      }
      throw new ProtoError("varint longer than 10 bytes");
    };
    const take = (n: number): Uint8Array => {
      if (n < 0 || pos + n > buf.length) throw new ProtoError("truncated field");
      const out = buf.subarray(pos, pos + n);
      pos += n;
      return out;
    };
    while (pos < buf.length) {
      const key = varint();
      const field = Number(key >> 3n);
      const wire = Number(key & 7n) as Wire;
      if (field === 0) throw new ProtoError("field number 0");
      let value: FieldValue;
      switch (wire) {
        case Wire.Varint:
          value = varint();
          break;
        case Wire.Fixed64:
          value = take(8);
          break;
        case Wire.Len:
          value = take(Number(varint()));
          break;
        case Wire.Fixed32:
          value = take(4);
          break;
        default:
          throw new ProtoError(`unsupported wire type ${wire} (field ${field})`);
      }
      const list = fields.get(field);
      if (list) list.push({ wire, value });
      else fields.set(field, [{ wire, value }]);
    }
    return new Message(fields);
  }

  private all(field: number, wire: Wire): FieldValue[] {
    const list = this.fields.get(field) ?? [];
    for (const f of list)
      if (f.wire !== wire) throw new ProtoError(`field ${field}: wire type ${f.wire}, expected ${wire}`);
    return list.map((f) => f.value);
  }

  private last(field: number, wire: Wire): FieldValue | undefined {
    const all = this.all(field, wire);
    return all[all.length - 1];
  }

  has(field: number): boolean {
    return this.fields.has(field);
  }

  /** uint32 / int32 / enum as a number (int32 negatives arrive sign-extended to 64 bits). */
  int(field: number): number {
    const v = this.last(field, Wire.Varint) as bigint | undefined;
    return v === undefined ? 0 : Number(BigInt.asIntN(64, v));
  }

  /** int64 as a bigint: nanosecond timestamps do not fit in a double. */
  int64(field: number): bigint {
    const v = this.last(field, Wire.Varint) as bigint | undefined;
    return v === undefined ? 0n : BigInt.asIntN(64, v);
  }

  bool(field: number): boolean {
    const v = this.last(field, Wire.Varint) as bigint | undefined;
    return v !== undefined && v !== 0n;
  }

  string(field: number): string {
    const v = this.last(field, Wire.Len) as Uint8Array | undefined;
    return v === undefined ? "" : utf8(v, field);
  }

  repeatedString(field: number): string[] {
    return (this.all(field, Wire.Len) as Uint8Array[]).map((b) => utf8(b, field));
  }

  /** A nested message, or undefined when absent. Several occurrences merge (their bytes concatenate). */
  message(field: number): Message | undefined {
    const parts = this.all(field, Wire.Len) as Uint8Array[];
    if (parts.length === 0) return undefined;
    return Message.decode(parts.length === 1 ? parts[0]! : concat(parts));
  }

  repeatedMessage(field: number): Message[] {
    return (this.all(field, Wire.Len) as Uint8Array[]).map((b) => Message.decode(b));
  }

  /** map<string, string>; a later entry for the same key wins, as in protobuf. */
  map(field: number): Record<string, string> {
    const out: Record<string, string> = {};
    for (const entry of this.repeatedMessage(field)) out[entry.string(1)] = entry.string(2);
    return out;
  }
}

function utf8(bytes: Uint8Array, field: number): string {
  try {
    return textDecoder.decode(bytes);
  } catch {
    throw new ProtoError(`field ${field}: invalid UTF-8 in a string`);
  }
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}
