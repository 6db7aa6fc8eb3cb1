// Decoding JSON the way Go's encoding/json does it for host-local's structs, so that a config host-local rejects
// is rejected here with the same words: keys match case-insensitively, null leaves a field unset, a value of the
// wrong type is remembered and reported after the whole document (the first one wins), while an error from a
// custom unmarshaller (a bad CIDR, a bad IP) aborts at once and wins over remembered ones.

export type Schema =
  | { t: "string" }
  | { t: "bool" }
  | { t: "any" }
  /** An encoding.TextUnmarshaler such as net.IP: a JSON string handed to `parse`, which may throw a HardError. */
  | { t: "text"; goType: string; parse: (s: string) => unknown }
  /** A json.Unmarshaler such as types.IPNet: gets the raw value (null too, when `onNull`), may throw. */
  | { t: "custom"; onNull: boolean; parse: (raw: unknown) => unknown }
  | { t: "struct"; goType: string; name: string; fields: Record<string, Schema> }
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

/** The JSON kind as Go's errors name it: "string", "number", "bool", "array", "object". */
export function jsonKind(v: unknown): string {
  if (Array.isArray(v)) return "array";
  if (typeof v === "boolean") return "bool";
  return typeof v === "object" ? "object" : typeof v; // "string" | "number" | "object"
}

class Decoder {
  private saved: TypeError_ | null = null;
  private fieldStack: string[] = [];
  private struct: string | null = null;

  run(value: unknown, schema: Schema): unknown {
    const out = this.value(value, schema);
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

  private mismatch(value: unknown, goType: string): undefined {
    if (!this.saved) this.saved = this.withContext(new TypeError_(jsonKind(value), goType));
    return undefined;
  }

  private value(v: unknown, s: Schema): unknown {
    if (s.t === "custom") {
      if (v === null && !s.onNull) return undefined;
      try {
        return s.parse(v);
      } catch (e) {
        if (e instanceof TypeError_) throw this.withContext(e);
        throw e;
      }
    }
    if (v === null) return undefined;
    switch (s.t) {
      case "any":
        return v;
      case "string":
        return typeof v === "string" ? v : this.mismatch(v, "string");
      case "bool":
        return typeof v === "boolean" ? v : this.mismatch(v, "bool");
      case "text":
        return typeof v === "string" ? s.parse(v) : this.mismatch(v, s.goType);
      case "slice":
        if (!Array.isArray(v)) return this.mismatch(v, s.goType);
        return v.map((item) => this.value(item, s.elem));
      case "struct": {
        if (typeof v !== "object" || Array.isArray(v)) return this.mismatch(v, s.goType);
        const out: Record<string, unknown> = {};
        const names = Object.keys(s.fields);
        for (const [key, item] of Object.entries(v as Record<string, unknown>)) {
          const name = names.find((n) => n === key) ?? names.find((n) => n.toLowerCase() === key.toLowerCase());
          if (name === undefined) continue;
          const [stack, struct] = [this.fieldStack.length, this.struct];
          this.fieldStack.push(name);
          this.struct = s.name;
          const decoded = this.value(item, s.fields[name]!);
          this.fieldStack.length = stack;
          this.struct = struct;
          if (decoded !== undefined) out[name] = decoded;
        }
        return out;
      }
    }
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

const MAX_DEPTH = 10000; // Go's scanner limit

/** The bracket that first nests deeper than Go's limit, or null; strings skipped, linear, allocation-free. */
function tooDeep(text: string): string | null {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 92) i++; // backslash: skip the escaped character
      else if (c === 34) inString = false;
    } else if (c === 34) inString = true;
    else if (c === 91 || c === 123) {
      if (++depth > MAX_DEPTH) return text[i]!;
    } else if (c === 93 || c === 125) depth--;
  }
  return null;
}

/**
 * JSON.parse with Go's syntax error messages ("invalid character 'x' looking for beginning of value") and Go's
 * nesting limit, which also keeps the recursive decoder below far from any stack limit.
 */
export function parseJsonGo(text: string): unknown {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new HardError(goSyntaxError(text) ?? "invalid JSON");
  }
  const bracket = tooDeep(text);
  if (bracket) throw new HardError(`invalid character ${quoteChar(bracket)} exceeded max depth`);
  return parsed;
}

/** Go's quoteChar: strconv.Quote of one character, in single quotes. */
function quoteChar(c: string): string {
  if (c === "'") return "'\\''";
  if (c === '"') return "'\"'";
  const named: Record<string, string> = { "\x07": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v", "\\": "\\\\" };
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
