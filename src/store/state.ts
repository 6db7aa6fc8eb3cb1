// local-ipam's own small files in <dataDir>/.local-ipam/<network>/ beside the index: when addresses were
// released (for reuseDelay), which leases were asked for by address (never taken over after a reboot), and how
// often the index was rebuilt. Parsing and printing only; network.ts reads and writes them under the lock, the
// operator CLI reads them without it.
import { platform } from "../platform/index.js";
import { type Dir, readTextAt } from "./files.js";

/** Our state directory beside the networks, never inside one: host-local reads every file in a network dir. */
export const STATE_DIR = ".local-ipam";
export const RELEASED = "released";
export const STATIC = "static";
export const REBUILDS = "rebuilds";
export const INDEX = "index";
export const JOURNAL = "journal";
/** Cluster networks: the blocks this node owns (see cluster/blocks.ts). */
export const BLOCKS = "blocks";

const MAX_STATE_BYTES = 16 << 20;

/** A JSON object file of ours; empty when absent or damaged (these files are preferences, not promises). */
function readJsonMap(dir: Dir | null, name: string): Map<string, unknown> {
  if (!dir) return new Map();
  try {
    const parsed = JSON.parse(readTextAt(dir, name, MAX_STATE_BYTES) ?? "{}") as unknown;
    if (!parsed || typeof parsed !== "object" || Array.isArray(parsed)) return new Map();
    return new Map(Object.entries(parsed as Record<string, unknown>));
  } catch {
    return new Map();
  }
}

/** Release times (address -> ms since the epoch). */
export function readReleaseTimes(dir: Dir | null): Map<string, number> {
  const out = new Map<string, number>();
  for (const [k, v] of readJsonMap(dir, RELEASED)) if (typeof v === "number") out.set(k, v);
  return out;
}

/** Leases made for a requested address (address -> the owner they were made for). */
export function readStaticLeases(dir: Dir | null): Map<string, string> {
  const out = new Map<string, string>();
  for (const [k, v] of readJsonMap(dir, STATIC)) if (typeof v === "string") out.set(k, v);
  return out;
}

export function readCounter(dir: Dir | null, name: string): number {
  if (!dir) return 0;
  return Number(readTextAt(dir, name, 64) ?? "0") || 0;
}

export function encodeMap(map: Map<string, unknown>): Uint8Array {
  return platform().utf8Encode(JSON.stringify(Object.fromEntries(map)));
}
