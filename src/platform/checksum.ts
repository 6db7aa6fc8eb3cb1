// The index file's checksum, as the native module computes it (native/module.c checksum32): four FNV-1a lanes
// over 32-bit little-endian words, the bytes after the last 16 into the first lane, the lanes and the length
// combined with MurmurHash3's finalizer. This one serves the Node platform and the test that the two agree.
export function checksum32(buf: Uint8Array, off: number, len: number): number {
  const prime = 0x01000193;
  let h0 = 0x811c9dc5;
  let h1 = 0x050c5d1f;
  let h2 = 0x1b873593;
  let h3 = 0xcc9e2d51;
  const word = (i: number) => buf[i]! | (buf[i + 1]! << 8) | (buf[i + 2]! << 16) | (buf[i + 3]! << 24);
  let i = off;
  const end = off + len;
  for (; i + 16 <= end; i += 16) {
    h0 = Math.imul(h0 ^ word(i), prime);
    h1 = Math.imul(h1 ^ word(i + 4), prime);
    h2 = Math.imul(h2 ^ word(i + 8), prime);
    h3 = Math.imul(h3 ^ word(i + 12), prime);
  }
  for (; i < end; i++) h0 = Math.imul(h0 ^ buf[i]!, prime);
  const rotl = (x: number, r: number) => (x << r) | (x >>> (32 - r));
  let h = h0 ^ rotl(h1, 8) ^ rotl(h2, 16) ^ rotl(h3, 24) ^ len;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}
