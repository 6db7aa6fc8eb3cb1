// Which platform this process runs on: the entry point sets it once (main.ts: the native module; the tests:
// node:fs), and everything else asks here. Nothing below the entry point imports an implementation directly.
import type { Platform } from "./types.js";

let current: Platform | undefined;

export function setPlatform(p: Platform): void {
  current = p;
}

export function platform(): Platform {
  if (!current) throw new Error("no platform set: the entry point must call setPlatform first");
  return current;
}
