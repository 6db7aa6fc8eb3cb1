// The CNI configs of a conf dir whose IPAM is local-ipam, as the agent finds them on every pass (a runtime reads
// the directory the same way: .conf, .conflist, .json, not hidden).
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { type IpamConfig, loadIpamConfig } from "../config/ipam.js";

interface FoundConfig {
  path: string;
  network: string;
  /** the ipam block has "cluster": a cluster network */
  cluster: boolean;
  /** the ipam block as JSON text: a change of it is a change of the network's config */
  ipam: string;
}

export function findConfigs(confDir: string, ipamType: string): FoundConfig[] {
  let names: string[];
  try {
    names = readdirSync(confDir).filter((n) => /\.(conf|conflist|json)$/.test(n) && !n.startsWith("."));
  } catch {
    return [];
  }
  const out: FoundConfig[] = [];
  for (const name of names.sort()) {
    const path = join(confDir, name);
    try {
      const doc = JSON.parse(readFileSync(path, "utf8")) as { name?: unknown; plugins?: unknown };
      const plugins = Array.isArray(doc.plugins) ? doc.plugins : [doc];
      const ipam = plugins
        .map((p) => (p as { ipam?: { type?: unknown; cluster?: unknown } } | null)?.ipam)
        .find((i) => i?.type === ipamType);
      if (ipam && typeof doc.name === "string")
        out.push({ path, network: doc.name, cluster: ipam.cluster !== undefined, ipam: JSON.stringify(ipam) });
    } catch {
      // unreadable or not JSON: not a config the runtime would load either
    }
  }
  return out;
}

/**
 * The ipam config of network `network` as the plugin would load it from the conflist at `path` (the plugin with
 * that ipam type, in the list's name and version); null when it does not load.
 */
export function ipamConfigOf(path: string, ipamType: string): IpamConfig | null {
  try {
    const doc = JSON.parse(readFileSync(path, "utf8")) as Record<string, unknown>;
    const plugins = Array.isArray(doc.plugins) ? (doc.plugins as Record<string, unknown>[]) : [doc];
    const plugin = plugins.find((p) => (p?.ipam as { type?: unknown } | undefined)?.type === ipamType);
    if (!plugin) return null;
    return loadIpamConfig({ ...plugin, cniVersion: doc.cniVersion, name: doc.name }, "");
  } catch {
    return null; // the plugin would refuse it too; the agent then learns the hard way
  }
}
