// Addresses as Go's net package sees them: the same strict parsing (dotted quad without leading zeros, IPv6
// without zones, v4-mapped IPv6 folded to IPv4) and the same text form, so that lease file names and messages
// match host-local's byte for byte. Values are bigints; IPv4 and IPv6 are told apart by `v6`.
import type * as IpaddrModule from "ipaddr.js";

// ipaddr.js parses and prints IPv6; it is loaded on first use, because evaluating it costs ~1.4 ms of start-up
// and most clusters' ADD never sees an IPv6 address. IPv4 is a dotted quad and is done here.
let ipaddrModule: typeof IpaddrModule | undefined;
function ipaddr(): typeof IpaddrModule {
  ipaddrModule ??= require("ipaddr.js") as typeof IpaddrModule;
  return ipaddrModule;
}

export interface Addr {
  readonly v6: boolean;
  readonly n: bigint;
}

/** A parsed CIDR before canonicalisation: `ip` keeps its host bits (as CNI's types.ParseCIDR does). */
export interface Cidr {
  readonly ip: Addr;
  readonly prefix: number;
  /** The mask's own width: 128 for "::ffff:10.0.0.0/120" even though the address folds to IPv4. */
  readonly maskBits: 32 | 128;
}

export function bitsOf(a: Addr): 32 | 128 {
  return a.v6 ? 128 : 32;
}

/**
 * A dotted quad as Go reads it (four decimal parts, no leading zeros, each at most 255), as a number; -1 when it
 * is not one. A loop over the characters, no regular expression: the index rebuild parses every lease name.
 */
export function parseV4Number(s: string): number {
  let n = 0;
  let part = 0;
  let digits = 0;
  let dots = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 46) {
      if (digits === 0 || dots === 3) return -1;
      n = n * 256 + part;
      part = 0;
      digits = 0;
      dots++;
      continue;
    }
    if (c < 48 || c > 57 || (digits === 1 && part === 0)) return -1; // not a digit, or a leading zero
    part = part * 10 + (c - 48);
    if (++digits > 3 || part > 255) return -1;
  }
  return dots === 3 && digits > 0 ? n * 256 + part : -1;
}

function parseV4(s: string): Addr | null {
  const n = parseV4Number(s);
  return n < 0 ? null : { v6: false, n: BigInt(n) };
}

function parseV6(s: string): Addr | null {
  if (s.includes("%") || !ipaddr().IPv6.isValid(s)) return null;
  const lastColon = s.lastIndexOf(":");
  const tail = s.slice(lastColon + 1);
  if (tail.includes(".")) {
    // an embedded dotted quad becomes two hex groups: ipaddr.js would read "::1.2.3.4" as v4-mapped, Go does not
    const v4 = parseV4(tail);
    if (v4 === null) return null;
    const n4 = Number(v4.n);
    s = `${s.slice(0, lastColon + 1)}${(n4 >>> 16).toString(16)}:${(n4 & 0xffff).toString(16)}`;
  }
  let n = 0n;
  for (const b of ipaddr().IPv6.parse(s).toByteArray()) n = (n << 8n) | BigInt(b);
  if (n >> 32n === 0xffffn) return { v6: false, n: n & 0xffffffffn }; // ::ffff:a.b.c.d is IPv4 to Go
  return { v6: true, n };
}

/** Go's net.ParseIP: null where Go returns nil. */
export function parseIP(s: string): Addr | null {
  if (s.includes(":")) return parseV6(s);
  return parseV4(s);
}

/** Go's net.ParseCIDR; null where Go returns a ParseError ("invalid CIDR address: <s>"). */
export function parseCIDR(s: string): Cidr | null {
  const slash = s.indexOf("/");
  if (slash < 0) return null;
  const addr = s.slice(0, slash);
  const mask = s.slice(slash + 1);
  let maskBits: 32 | 128 = 32;
  let ip = addr.includes(":") ? null : parseV4(addr);
  if (ip === null) {
    maskBits = 128;
    ip = addr.includes(":") ? parseV6(addr) : null;
  }
  if (ip === null || !/^[0-9]{1,8}$/.test(mask)) return null; // Go's dtoi: digits only, leading zeros allowed
  const prefix = Number(mask);
  if (prefix > maskBits) return null;
  return { ip, prefix, maskBits };
}

export function formatIP(a: Addr): string {
  if (!a.v6) {
    const n = Number(a.n);
    return `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
  }
  const parts = new Array<number>(8);
  let n = a.n;
  for (let i = 7; i >= 0; i--) {
    parts[i] = Number(n & 0xffffn);
    n >>= 16n;
  }
  return new (ipaddr().IPv6)(parts).toRFC5952String();
}

/** Go's IPNet.String(): the address as stored (host bits kept) and the prefix length. */
export function formatCIDR(c: Cidr): string {
  const prefix = !c.ip.v6 && c.maskBits === 128 ? Math.max(0, c.prefix - 96) : c.prefix;
  return `${formatIP(c.ip)}/${prefix}`;
}

export function sameAddr(a: Addr | null | undefined, b: Addr | null | undefined): boolean {
  return !!a && !!b && a.v6 === b.v6 && a.n === b.n;
}

export function compareAddr(a: Addr, b: Addr): number {
  return a.n < b.n ? -1 : a.n > b.n ? 1 : 0;
}

export function nextAddr(a: Addr): Addr {
  const max = (1n << BigInt(bitsOf(a))) - 1n;
  return { v6: a.v6, n: a.n === max ? 0n : a.n + 1n };
}

function hostMask(prefix: number, bits: number): bigint {
  return (1n << BigInt(bits - prefix)) - 1n;
}

export function networkOf(a: Addr, prefix: number): Addr {
  return { v6: a.v6, n: a.n & ~hostMask(prefix, bitsOf(a)) };
}

export function broadcastOf(a: Addr, prefix: number): Addr {
  return { v6: a.v6, n: a.n | hostMask(prefix, bitsOf(a)) };
}

export function inSubnet(a: Addr, net: Addr, prefix: number): boolean {
  return a.v6 === net.v6 && networkOf(a, prefix).n === networkOf(net, prefix).n;
}
