// Read-only looks at a data dir for the operator CLI: which networks exist, and their leases with owners and
// ages. Reading needs no lock (a lease file appears whole or not at all); changing does (see NetworkStore).
import { lstatSync, readdirSync } from "node:fs";
import { goTrim, leaseAddr } from "../allocator/store.js";
import type { Addr } from "../net/ip.js";
import { STATE_DIR, join, readCounter, readReleaseTimes, readSmallFile } from "./disk.js";

export interface LeaseInfo {
  name: string;
  ip: Addr;
  /** container ID ("" when unreadable) */
  containerId: string;
  /** interface name, or "" for a legacy id-only lease */
  ifname: string;
  /** the trimmed owner text, or null when the lease is not a readable regular file */
  owner: string | null;
  mtimeMs: number;
}

/** Network directories under `dataDir` (our own state directory excepted), sorted. */
export function listNetworks(dataDir: string): string[] {
  try {
    return readdirSync(dataDir, { withFileTypes: true })
      .filter((d) => d.isDirectory() && d.name !== STATE_DIR && !d.name.startsWith("."))
      .map((d) => d.name)
      .sort();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw e;
  }
}

/** The leases of one network; an empty list when the network directory does not exist. */
export function readLeases(dataDir: string, network: string): LeaseInfo[] {
  const dir = join(dataDir, network);
  let names: string[];
  try {
    names = readdirSync(dir).sort();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw e;
  }
  const out: LeaseInfo[] = [];
  for (const name of names) {
    const ip = leaseAddr(name);
    if (!ip) continue;
    const content = readSmallFile(join(dir, name), 64 * 1024);
    const owner = content === null ? null : goTrim(content);
    const [containerId = "", ifname = ""] = owner === null ? [] : owner.split("\r\n");
    let mtimeMs = 0;
    try {
      mtimeMs = lstatSync(join(dir, name)).mtimeMs;
    } catch {
      continue; // gone since the listing
    }
    out.push({ name, ip, containerId, ifname, owner, mtimeMs });
  }
  return out;
}

/** How often local-ipam had to rebuild this network's index from the lease files. */
export function indexRebuilds(dataDir: string, network: string): number {
  return readCounter(join(dataDir, STATE_DIR, network, "rebuilds"));
}

/** When addresses were released (for the reuse delay), as local-ipam keeps it; empty when unknown. */
export function readReleases(dataDir: string, network: string): Map<string, number> {
  return readReleaseTimes(join(dataDir, STATE_DIR, network, "released"));
}

/** A file named on the command line (a conflist), as text; null when it cannot be read. */
export function readTextFile(path: string): string | null {
  return readSmallFile(path, 16 << 20);
}
