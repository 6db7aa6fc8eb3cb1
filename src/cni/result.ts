// The ADD result, built in the current (1.x) shape and converted to the format of the config's cniVersion.
import { type Addr, type Cidr, formatCIDR, formatIP } from "../net/ip.js";

export interface Dns {
  nameservers?: string[];
  domain?: string;
  search?: string[];
  options?: string[];
}

export interface IpConfig {
  address: Cidr; // the leased address with its range's prefix
  gateway: Addr;
}

export interface Result {
  ips: IpConfig[];
  routes: { dst: Cidr; gw?: Addr }[];
  dns: Dns;
}

type Json = Record<string, unknown>;

function routeJson(r: { dst: Cidr; gw?: Addr }): Json {
  return r.gw ? { dst: formatCIDR(r.dst), gw: formatIP(r.gw) } : { dst: formatCIDR(r.dst) };
}

function dnsJson(d: Dns): Json {
  const out: Json = {};
  if (d.nameservers?.length) out.nameservers = d.nameservers;
  if (d.domain) out.domain = d.domain;
  if (d.search?.length) out.search = d.search;
  if (d.options?.length) out.options = d.options;
  return out;
}

/** Converts to the wire format of `version`; host-local (Debian) prints "dns": {} in every version, so do we. */
export function resultFor(result: Result, version: string): Json {
  const cniVersion = version === "" ? "0.1.0" : version;
  if (cniVersion === "0.1.0" || cniVersion === "0.2.0") return legacyResult(result, cniVersion);
  const withFamily = cniVersion.startsWith("0.");
  const out: Json = { cniVersion };
  if (result.ips.length)
    out.ips = result.ips.map((ip) => {
      const entry: Json = withFamily ? { version: ip.address.ip.v6 ? "6" : "4" } : {};
      entry.address = formatCIDR(ip.address);
      entry.gateway = formatIP(ip.gateway);
      return entry;
    });
  if (result.routes.length) out.routes = result.routes.map(routeJson);
  out.dns = dnsJson(result.dns);
  return out;
}

/** 0.1.0/0.2.0: the first address of each family, routes split by the family of their destination. */
function legacyResult(result: Result, cniVersion: string): Json {
  const family = (v6: boolean): Json | undefined => {
    const ip = result.ips.find((i) => i.address.ip.v6 === v6);
    if (!ip) return undefined;
    const entry: Json = { ip: formatCIDR(ip.address), gateway: formatIP(ip.gateway) };
    const routes = result.routes.filter((r) => r.dst.ip.v6 === v6);
    if (routes.length) entry.routes = routes.map(routeJson);
    return entry;
  };
  const out: Json = { cniVersion };
  const ip4 = family(false);
  const ip6 = family(true);
  if (ip4) out.ip4 = ip4;
  if (ip6) out.ip6 = ip6;
  out.dns = dnsJson(result.dns);
  return out;
}
