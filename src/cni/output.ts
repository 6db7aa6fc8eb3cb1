// Writing to stdout/stderr with fs.writeSync in a loop: a compiled Bun binary that ends with
// process.stdout.write + exit loses everything past 64 KiB when the reader of the pipe is slow.
import { writeSync } from "node:fs";

export function writeAll(fd: number, text: string): void {
  const buf = Buffer.from(text, "utf8");
  let off = 0;
  while (off < buf.length) {
    try {
      off += writeSync(fd, buf, off, buf.length - off);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === "EAGAIN") continue; // a non-blocking pipe that is full: the reader will drain it
      if (code === "EPIPE") return; // nobody is listening any more
      throw e;
    }
  }
}
