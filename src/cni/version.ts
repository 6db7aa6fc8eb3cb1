// CNI spec versions: what we accept, and the comparison libcni's version package does.
export const SUPPORTED_VERSIONS = ["0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"] as const;
export const CURRENT_VERSION = "1.1.0";

/** Parses "major.minor.micro" like CNI's version.ParseVersion (missing parts are 0); null when malformed. */
export function parseVersion(v: string): [number, number, number] | null {
  const parts = v.split(".");
  if (v === "" || parts.length > 3) return null;
  const nums = parts.map((p) => (/^[0-9]+$/.test(p) ? Number(p) : NaN));
  if (nums.some((x) => Number.isNaN(x))) return null;
  return [nums[0] ?? 0, nums[1] ?? 0, nums[2] ?? 0];
}

/** version.GreaterThanOrEqualTo; false when either side does not parse (as host-local's callers treat an error). */
export function versionAtLeast(v: string, min: string): boolean {
  const a = parseVersion(v);
  const b = parseVersion(min);
  if (!a || !b) return false;
  for (let i = 0; i < 3; i++) if (a[i]! !== b[i]!) return a[i]! > b[i]!;
  return true;
}

export function isSupported(v: string): boolean {
  return (SUPPORTED_VERSIONS as readonly string[]).includes(v);
}
