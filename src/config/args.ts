// CNI_ARGS ("K=V;K=V") as CNI's types.LoadArgs reads it into host-local's IPAMEnvArgs: pairs in order, the last
// of a repeated key wins (an empty IP= after IP=x leaves no address), a value that does not parse fails at once,
// and unknown keys fail at the end unless IgnoreUnknown is true by then.
import { type CniError, E } from "../errors.js";
import { type Addr, parseCIDR, parseIP } from "../net/ip.js";

interface EnvArgs {
  /** The address asked for with IP=, or undefined (an empty IP= asks for nothing). */
  ip?: Addr;
}

/** pkg/ip.IP's text form: an address, optionally with a prefix that is then ignored (the host address is kept). */
export function parseRequestedIP(s: string): Addr | null {
  if (s.includes("/")) return parseCIDR(s)?.ip ?? null;
  return parseIP(s);
}

export function parseEnvArgs(args: string): EnvArgs {
  const out: EnvArgs = {};
  if (args === "") return out;
  const unknown: string[] = [];
  let ignoreUnknown = false;
  for (const pair of args.split(";")) {
    const kv = pair.split("=");
    if (kv.length !== 2) throw E.argsInvalidPair(pair);
    const [key, value] = kv as [string, string];
    const bad = (inner: CniError) => E.argsBadValue(pair, inner);
    switch (key) {
      case "IP": {
        if (value === "") {
          delete out.ip; // ip.IP.UnmarshalText("") zeroes the field
          break;
        }
        const ip = parseRequestedIP(value);
        if (!ip) throw bad(E.badIpText(value));
        out.ip = ip;
        break;
      }
      case "IgnoreUnknown": {
        const v = value.toLowerCase();
        if (v === "1" || v === "true") ignoreUnknown = true;
        else if (v === "0" || v === "false") ignoreUnknown = false;
        else throw bad(E.badBool(v));
        break;
      }
      case "CommonArgs": // Go finds the embedded struct by this name and cannot unmarshal text into it
        throw E.argsNotUnmarshalable(key, "*types.CommonArgs");
      default:
        unknown.push(pair);
    }
  }
  if (unknown.length > 0 && !ignoreUnknown) throw E.argsUnknown(unknown);
  return out;
}
