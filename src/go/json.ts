// Decoding JSON the way Go's encoding/json does it for host-local's structs, so that a config host-local rejects
// is rejected here with the same words, and one it accepts means the same thing:
// - keys match a field exactly, else case-insensitively (Go 1.19's folding, where "ſ" is an "s" and the Kelvin
//   sign a "k"); every occurrence of a key is decoded, in document order, into the same field;
// - an object decoded into a struct that already holds values merges into it (a repeated "ipam" block adds to the
//   first), and an array decoded into a slice reuses its elements, even stale ones between length and capacity;
// - null sets pointers, slices and IPs to nil and leaves strings, bools and plain structs as they were;
// - a value of the wrong type is skipped and remembered, and reported after the whole document (the first one
//   wins), while an error from a custom unmarshaller (a bad CIDR, a bad IP) aborts at once.
// JSON.parse keeps only the last of repeated keys, so a document that repeats a key (exactly or case-folded) is
// parsed here into GoObjects, which keep every entry in order; all other documents take JSON.parse's fast path.

export type Schema =
  | { t: "string" }
  | { t: "bool" }
  /** An encoding.TextUnmarshaler such as net.IP: a JSON string handed to `parse`, which may throw a HardError. */
  | { t: "text"; goType: string; parse: (s: string) => unknown }
  /** A json.Unmarshaler such as types.IPNet: gets the raw value (null too, when `onNull`), may throw. */
  | { t: "custom"; onNull: boolean; parse: (raw: unknown) => unknown }
  /** `ptr`: a pointer to the struct in Go, which null sets to nil (a plain struct ignores null). */
  | { t: "struct"; goType: string; name: string; ptr?: boolean; fields: Record<string, Schema> }
  | { t: "slice"; goType: string; elem: Schema };

export class HardError extends Error {}

/** Go's json.UnmarshalTypeError. */
export class TypeError_ extends Error {
  constructor(
    readonly value: string,
    readonly goType: string,
    public struct: string | null = null,
    public field = "",
  ) {
    super("");
  }
  get text(): string {
    return this.struct !== null || this.field
      ? `json: cannot unmarshal ${this.value} into Go struct field ${this.struct ?? ""}.${this.field} of type ${this.goType}`
      : `json: cannot unmarshal ${this.value} into Go value of type ${this.goType}`;
  }
}

/** A JSON object that repeats a key: every entry, in document order. */
class GoObject {
  constructor(readonly entries: [string, unknown][]) {}
  /** The value Go would end with for a key used as a map key (the last occurrence), exactly matched. */
  get(key: string): unknown {
    for (let i = this.entries.length - 1; i >= 0; i--) if (this.entries[i]![0] === key) return this.entries[i]![1];
    return undefined;
  }
}

function entriesOf(v: object): [string, unknown][] {
  return v instanceof GoObject ? v.entries : Object.entries(v);
}

/** The JSON kind as Go's errors name it: "string", "number", "bool", "array", "object". */
export function jsonKind(v: unknown): string {
  if (Array.isArray(v)) return "array";
  if (typeof v === "boolean") return "bool";
  return typeof v === "object" ? "object" : typeof v; // "string" | "number" | "object"
}

/**
 * Go 1.19's key matching for a field name made of ASCII (all of ours): ASCII letters fold, "ſ" (U+017F) matches
 * "s" and the Kelvin sign (U+212A) matches "k"; everything else must be equal.
 */
function goFoldEquals(field: string, key: string): boolean {
  if (field.length !== key.length) return false;
  for (let i = 0; i < field.length; i++) {
    const f = field.charCodeAt(i);
    const k = key.charCodeAt(i);
    if (f === k) continue;
    const lf = f | 0x20;
    if (lf >= 0x61 && lf <= 0x7a && (k | 0x20) === lf && k < 0x80) continue;
    if (lf === 0x73 && k === 0x17f) continue;
    if (lf === 0x6b && k === 0x212a) continue;
    return false;
  }
  return true;
}

/** The key as it collides under folding: ASCII lower case, ſ -> s, Kelvin -> k. */
function foldKey(key: string): string {
  let out = "";
  for (let i = 0; i < key.length; i++) {
    const c = key.charCodeAt(i);
    if (c >= 0x41 && c <= 0x5a) out += String.fromCharCode(c | 0x20);
    else if (c === 0x17f) out += "s";
    else if (c === 0x212a) out += "k";
    else out += key[i];
  }
  return out;
}

const CAP = Symbol("go slice capacity");
type GoSlice = unknown[] & { [CAP]?: unknown[] };

class Decoder {
  private saved: TypeError_ | null = null;
  private fieldStack: string[] = [];
  private struct: string | null = null;

  run(value: unknown, schema: Schema): unknown {
    const out = this.value(value, schema, undefined);
    if (this.saved) throw this.saved;
    return out;
  }

  private withContext(err: TypeError_): TypeError_ {
    if (this.struct !== null || this.fieldStack.length > 0) {
      err.struct = this.struct;
      err.field = this.fieldStack.join(".");
    }
    return err;
  }

  /** A value of the wrong type: remembered (the first one is reported), the field keeps what it had. */
  private mismatch(value: unknown, goType: string, prev: unknown): unknown {
    if (!this.saved) this.saved = this.withContext(new TypeError_(jsonKind(value), goType));
    return prev;
  }

  private value(v: unknown, s: Schema, prev: unknown): unknown {
    if (s.t === "custom") {
      if (v === null && !s.onNull) return undefined;
      try {
        return s.parse(v);
      } catch (e) {
        if (e instanceof TypeError_) throw this.withContext(e);
        throw e;
      }
    }
    if (v === null) {
      // pointers, slices and net.IP become nil; strings, bools and plain structs ignore null
      if (s.t === "string" || s.t === "bool" || (s.t === "struct" && !s.ptr)) return prev;
      return undefined;
    }
    switch (s.t) {
      case "string":
        return typeof v === "string" ? v : this.mismatch(v, "string", prev);
      case "bool":
        return typeof v === "boolean" ? v : this.mismatch(v, "bool", prev);
      case "text":
        return typeof v === "string" ? s.parse(v) : this.mismatch(v, s.goType, prev);
      case "slice":
        return Array.isArray(v) ? this.slice(v, s.elem, prev as GoSlice | undefined) : this.mismatch(v, s.goType, prev);
      case "struct": {
        if (typeof v !== "object" || Array.isArray(v)) return this.mismatch(v, s.goType, prev);
        const out: Record<string, unknown> = { ...((prev as Record<string, unknown> | undefined) ?? {}) };
        const names = Object.keys(s.fields);
        for (const [key, item] of entriesOf(v)) {
          const name = names.find((n) => n === key) ?? names.find((n) => goFoldEquals(n, key));
          if (name === undefined) continue;
          const [stack, struct] = [this.fieldStack.length, this.struct];
          this.fieldStack.push(name);
          this.struct = s.name;
          const decoded = this.value(item, s.fields[name]!, out[name]);
          this.fieldStack.length = stack;
          this.struct = struct;
          if (decoded === undefined) delete out[name];
          else out[name] = decoded;
        }
        return out;
      }
    }
  }

  /**
   * decode.go's array(): elements decode into what the slice already holds, up to its capacity (so a repeated key
   * merges into the first occurrence's elements, stale ones included); growing past the capacity copies only the
   * elements within the length, to a capacity of 4, then 1.5 times.
   */
  private slice(items: unknown[], elem: Schema, prev: GoSlice | undefined): GoSlice {
    if (!prev && elem.t === "string") {
      // a list of strings decoded for the first time (80,000 exclude entries): no call per element
      let all = true;
      for (let i = 0; i < items.length && all; i++) all = typeof items[i] === "string";
      if (all) {
        const out: GoSlice = items.slice();
        out[CAP] = out;
        return out;
      }
    }
    let backing: unknown[] = prev ? (prev[CAP] ?? prev.slice()) : [];
    let len = prev ? prev.length : 0;
    let i = 0;
    for (const item of items) {
      if (i >= backing.length) {
        const grown = new Array<unknown>(Math.max(4, backing.length + (backing.length >> 1))).fill(undefined);
        for (let k = 0; k < len; k++) grown[k] = backing[k];
        backing = grown;
      }
      if (i >= len) len = i + 1;
      backing[i] = this.value(item, elem, backing[i]);
      i++;
    }
    const out: GoSlice = backing.slice(0, i);
    out[CAP] = backing;
    return out;
  }
}

/** Decodes an already parsed JSON value; throws TypeError_ or HardError with Go's message in `.text`/`.message`. */
export function goDecode(value: unknown, schema: Schema): unknown {
  return new Decoder().run(value, schema);
}

export function goErrorText(e: unknown): string {
  if (e instanceof TypeError_) return e.text;
  if (e instanceof HardError) return e.message;
  throw e;
}

/**
 * json.Marshal / MarshalIndent output: JSON.stringify's, with the characters Go escapes for HTML safety
 * (<, >, &, U+2028, U+2029) written as \u escapes, as host-local's output has them.
 */
export function goMarshal(value: unknown, indent = ""): string {
  return JSON.stringify(value, null, indent || undefined).replace(
    /[<>&\u2028\u2029]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
}

const MAX_DEPTH = 10000; // Go's scanner limit

/**
 * JSON.parse with Go's syntax error messages ("invalid character 'x' looking for beginning of value") and Go's
 * nesting limit; a document that repeats a key (exactly or case-folded) comes back with GoObjects for its objects.
 * The nesting is checked before any recursive parser sees the text.
 */
export function parseJsonGo(text: string): unknown {
  const shape = shapeOf(text);
  if (shape === null) throw new HardError(goSyntaxError(text) ?? "invalid JSON");
  // Go reports whichever comes first in the text: a syntax error before the deep part, or the depth
  if (shape.tooDeep)
    throw new HardError(goSyntaxError(text) ?? `invalid character ${quoteChar(shape.tooDeep)} exceeded max depth`);
  let parsed: unknown;
  try {
    parsed = shape.repeatsKey ? new SlowParser(text).document() : JSON.parse(text);
  } catch {
    throw new HardError(goSyntaxError(text) ?? "invalid JSON");
  }
  return parsed;
}

const STRUCTURE = /["{}[\]:]/g;

/**
 * One pass over the text that only stops at structure (strings are skipped with indexOf): how deep it nests and
 * whether an object repeats a key. Null when the text is not JSON enough to tell (the caller reports Go's error).
 */
function shapeOf(text: string): { tooDeep: string | null; repeatsKey: boolean } | null {
  const keys: (Set<string> | null)[] = [];
  let repeatsKey = false;
  let lastStart = 0; // the last string's contents, as offsets: only a key (a string before ":") is cut out
  let lastEnd = 0;
  STRUCTURE.lastIndex = 0;
  for (;;) {
    const m = STRUCTURE.exec(text);
    if (!m) break;
    const c = m[0];
    const at = m.index;
    if (c === '"') {
      let start = at;
      let end: number;
      for (;;) {
        end = stringEnd(text, start);
        if (end < 0) return null;
        // a run of strings in an array ("a","b",...: 80,000 exclude entries) is walked with indexOf alone
        if (keys[keys.length - 1] !== null || text.charCodeAt(end + 1) !== 44 || text.charCodeAt(end + 2) !== 34) break;
        start = end + 2;
      }
      lastStart = start + 1;
      lastEnd = end;
      STRUCTURE.lastIndex = end + 1;
    } else if (c === "{" || c === "[") {
      keys.push(c === "{" ? new Set() : null);
      if (keys.length > MAX_DEPTH) return { tooDeep: c, repeatsKey };
    } else if (c === "}" || c === "]") keys.pop();
    else {
      // ":" ends a key; escapes only matter when a key could collide, so compare them decoded
      const set = keys[keys.length - 1];
      if (!set) continue;
      let key = text.slice(lastStart, lastEnd);
      if (key.includes("\\")) {
        try {
          key = JSON.parse(`"${key}"`) as string;
        } catch {
          return null;
        }
      }
      const folded = foldKey(key);
      if (set.has(folded)) repeatsKey = true;
      set.add(folded);
    }
  }
  return { tooDeep: null, repeatsKey };
}

/** The index of the quote that closes the string opening at `open`, or -1. */
function stringEnd(text: string, open: number): number {
  let end = text.indexOf('"', open + 1);
  while (end > 0) {
    let slashes = 0;
    while (text.charCodeAt(end - 1 - slashes) === 92) slashes++;
    if (slashes % 2 === 0) return end;
    end = text.indexOf('"', end + 1);
  }
  return -1;
}

/** A plain recursive-descent JSON parser for the rare document that repeats keys: objects become GoObjects. */
class SlowParser {
  private i = 0;
  constructor(private readonly s: string) {}

  document(): unknown {
    const v = this.value();
    this.ws();
    if (this.i !== this.s.length) throw new Error("trailing data");
    return v;
  }

  private ws(): void {
    const s = this.s;
    while (this.i < s.length && (s[this.i] === " " || s[this.i] === "\t" || s[this.i] === "\n" || s[this.i] === "\r"))
      this.i++;
  }

  private value(): unknown {
    this.ws();
    const c = this.s[this.i];
    if (c === "{") {
      this.i++;
      const entries: [string, unknown][] = [];
      this.ws();
      if (this.s[this.i] === "}") {
        this.i++;
        return new GoObject(entries);
      }
      for (;;) {
        this.ws();
        const key = this.string();
        this.ws();
        if (this.s[this.i++] !== ":") throw new Error("expected ':'");
        entries.push([key, this.value()]);
        this.ws();
        const next = this.s[this.i++];
        if (next === "}") return new GoObject(entries);
        if (next !== ",") throw new Error("expected ',' or '}'");
      }
    }
    if (c === "[") {
      this.i++;
      const items: unknown[] = [];
      this.ws();
      if (this.s[this.i] === "]") {
        this.i++;
        return items;
      }
      for (;;) {
        items.push(this.value());
        this.ws();
        const next = this.s[this.i++];
        if (next === "]") return items;
        if (next !== ",") throw new Error("expected ',' or ']'");
      }
    }
    if (c === '"') return this.string();
    const m = /^(?:-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?|true|false|null)/.exec(
      this.s.slice(this.i, this.i + 400),
    );
    if (!m) throw new Error("unexpected character");
    this.i += m[0].length;
    return JSON.parse(m[0]);
  }

  private string(): string {
    if (this.s[this.i] !== '"') throw new Error("expected string");
    let end = this.s.indexOf('"', this.i + 1);
    while (end > 0) {
      let slashes = 0;
      while (this.s.charCodeAt(end - 1 - slashes) === 92) slashes++;
      if (slashes % 2 === 0) break;
      end = this.s.indexOf('"', end + 1);
    }
    if (end < 0) throw new Error("unterminated string");
    const raw = this.s.slice(this.i, end + 1);
    this.i = end + 1;
    return JSON.parse(raw) as string;
  }
}

/** Go's quoteChar: strconv.Quote of one character, in single quotes. */
function quoteChar(c: string): string {
  if (c === "'") return "'\\''";
  if (c === '"') return "'\"'";
  const named: Record<string, string> = {
    "\x07": "\\a",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\v": "\\v",
    "\\": "\\\\",
  };
  if (named[c]) return `'${named[c]}'`;
  const code = c.charCodeAt(0);
  if (code < 0x20 || code === 0x7f) return `'\\x${code.toString(16).padStart(2, "0")}'`;
  return `'${c}'`;
}

/** Scans like Go's encoding/json scanner and returns its first complaint, or null if the text is valid. */
export function goSyntaxError(s: string): string | null {
  let i = 0;
  const stack: ("{" | "[")[] = [];
  const bad = (ctx: string) => `invalid character ${quoteChar(s[i]!)} ${ctx}`;
  const ws = () => {
    while (i < s.length && (s[i] === " " || s[i] === "\t" || s[i] === "\n" || s[i] === "\r")) i++;
  };
  const end = "unexpected end of JSON input";
  const str = (): string | null => {
    i++; // opening quote
    while (i < s.length) {
      const c = s[i]!;
      if (c === '"') {
        i++;
        return null;
      }
      if (c < " ") return bad("in string literal");
      if (c === "\\") {
        i++;
        if (i >= s.length) return end;
        const e = s[i]!;
        if (e === "u") {
          for (let k = 0; k < 4; k++) {
            i++;
            if (i >= s.length) return end;
            if (!/[0-9a-fA-F]/.test(s[i]!)) return bad("in \\u hexadecimal character escape");
          }
        } else if (!'"\\/bfnrt'.includes(e)) return bad("in string escape code");
      }
      i++;
    }
    return end;
  };
  const num = (): string | null => {
    if (s[i] === "-") {
      i++;
      if (i >= s.length) return end;
      if (!/[0-9]/.test(s[i]!)) return bad("in numeric literal");
    }
    if (s[i] === "0") i++;
    else while (i < s.length && /[0-9]/.test(s[i]!)) i++;
    if (s[i] === ".") {
      i++;
      if (i >= s.length) return end;
      if (!/[0-9]/.test(s[i]!)) return bad("after decimal point in numeric literal");
      while (i < s.length && /[0-9]/.test(s[i]!)) i++;
    }
    if (s[i] === "e" || s[i] === "E") {
      i++;
      if (s[i] === "+" || s[i] === "-") i++;
      if (i >= s.length) return end;
      if (!/[0-9]/.test(s[i]!)) return bad("in exponent of numeric literal");
      while (i < s.length && /[0-9]/.test(s[i]!)) i++;
    }
    return null;
  };
  const literal = (word: string): string | null => {
    for (let k = 1; k < word.length; k++) {
      i++;
      if (i >= s.length) return end;
      if (s[i] !== word[k]) return bad(`in literal ${word} (expecting ${quoteChar(word[k]!)})`);
    }
    i++;
    return null;
  };
  // value := scalar | '{' ... | '[' ...; driven by an explicit stack so that deep nesting cannot overflow
  const value = (): string | null => {
    ws();
    if (i >= s.length) return end;
    const c = s[i]!;
    if (c === "{" || c === "[") {
      if (stack.length >= MAX_DEPTH) return bad("exceeded max depth");
      stack.push(c);
      i++;
      return null;
    }
    if (c === '"') return str();
    if (c === "-" || (c >= "0" && c <= "9")) return num();
    if (c === "t") return literal("true");
    if (c === "f") return literal("false");
    if (c === "n") return literal("null");
    return bad("looking for beginning of value");
  };
  const key = (): string | null => {
    ws();
    if (i >= s.length) return end;
    if (s[i] !== '"') return bad("looking for beginning of object key string");
    const e = str();
    if (e) return e;
    ws();
    if (i >= s.length) return end;
    if (s[i] !== ":") return bad("after object key");
    i++;
    return null;
  };
  let err = value();
  if (err) return err;
  let justOpened = stack.length > 0;
  while (stack.length > 0) {
    const top = stack[stack.length - 1]!;
    ws();
    if (i >= s.length) return end;
    if (justOpened) {
      justOpened = false;
      if ((top === "{" && s[i] === "}") || (top === "[" && s[i] === "]")) {
        i++;
        stack.pop();
        continue;
      }
      if (top === "{" && (err = key())) return err;
    } else if (s[i] === ",") {
      i++;
      if (top === "{" && (err = key())) return err;
    } else if ((top === "{" && s[i] === "}") || (top === "[" && s[i] === "]")) {
      i++;
      stack.pop();
      continue;
    } else {
      return bad(top === "{" ? "after object key:value pair" : "after array element");
    }
    const depth = stack.length;
    if ((err = value())) return err;
    justOpened = stack.length > depth;
  }
  ws();
  if (i < s.length) return bad("after top-level value");
  return null;
}
