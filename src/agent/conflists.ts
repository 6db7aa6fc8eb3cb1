// The CNI configs of a conf dir whose IPAM is local-ipam, as the agent finds them on every pass (a runtime reads
// the directory the same way: .conf, .conflist, .json, not hidden).
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

interface FoundConfig {
  path: string;
  network: string;
  /** the ipam block has "cluster": a cluster network */
  cluster: boolean;
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
        out.push({ path, network: doc.name, cluster: ipam.cluster !== undefined });
    } catch {
      // unreadable or not JSON: not a config the runtime would load either
    }
  }
  return out;
}
