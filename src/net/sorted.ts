// Sorted arrays of address numbers.

/** The first index of sorted `xs` whose value is at least `x` (xs.length when none is). */
export function firstAtLeast(xs: readonly bigint[], x: bigint): number {
  let lo = 0;
  let hi = xs.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (xs[mid]! < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
