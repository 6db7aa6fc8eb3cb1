// The wall-clock time of the current boot: a lease file last written before it belongs to a network namespace
// that did not survive the reboot.
import { readTextAt } from "./files.js";

/** btime from /proc/stat, in ms since the epoch, or null when it cannot be read. */
export function bootTimeMs(): number | null {
  const stat = readTextAt(null, "/proc/stat", 1 << 20);
  const m = stat && /^btime (\d+)$/m.exec(stat);
  return m ? Number(m[1]) * 1000 : null;
}
