// The process's standard streams on the platform seam: stdin read whole (bounded), output written whole.
import { CniError, E, ERRNO, errnoText } from "../errors.js";
import { platform } from "../platform/index.js";
import { SysError } from "../platform/types.js";

/** A config is kilobytes; anything near this is an attack or an accident. */
const MAX_STDIN = 16 << 20;

/** Reads fd 0 to its end; more than MAX_STDIN bytes is refused without reading the rest. */
export function readStdin(): string {
  const p = platform();
  let buf = new Uint8Array(64 << 10);
  let len = 0;
  for (;;) {
    if (len === buf.length) {
      if (buf.length > MAX_STDIN) throw E.stdinTooLarge(MAX_STDIN);
      const bigger = new Uint8Array(Math.min(buf.length * 4, MAX_STDIN + 1));
      bigger.set(buf);
      buf = bigger;
    }
    let n: number;
    try {
      n = p.read(0, buf, len, buf.length - len);
    } catch (e) {
      const errno = e instanceof SysError ? e.errno : 0;
      if (errno === ERRNO.EAGAIN || errno === ERRNO.EINTR) {
        p.sleepMs(1); // a non-blocking stdin with nothing yet: the writer is still writing
        continue;
      }
      if (errno === 9 /* EBADF: no stdin at all */) break;
      if (e instanceof CniError) throw e;
      throw E.stdinRead(e instanceof SysError ? `read /dev/stdin: ${errnoText(e.errno)}` : String(e));
    }
    if (n === 0) break;
    len += n;
    if (len > MAX_STDIN) throw E.stdinTooLarge(MAX_STDIN);
  }
  return p.utf8Decode(buf, 0, len);
}

/** Writes all of `text` to `fd`, waiting out a full non-blocking pipe; a reader that went away is not an error. */
export function writeAll(fd: number, text: string): void {
  const p = platform();
  const bytes = p.utf8Encode(text);
  let off = 0;
  while (off < bytes.length) {
    try {
      off += p.write(fd, bytes, off, bytes.length - off);
    } catch (e) {
      const errno = e instanceof SysError ? e.errno : 0;
      if (errno === ERRNO.EAGAIN || errno === ERRNO.EINTR) {
        p.sleepMs(1);
        continue;
      }
      if (errno === ERRNO.EPIPE) return;
      throw e;
    }
  }
}
