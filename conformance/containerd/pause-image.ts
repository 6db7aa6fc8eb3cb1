// A pause image without any registry: a docker-archive tar (what `docker save` writes and `ctr images import`
// reads) holding one layer with busybox-static and a /pause shell script. A copy of busybox named /pause would not
// do: busybox picks its applet from argv[0]. The tar is written here, byte for byte (ustar, mtime 0), so the image
// and its digests are the same on every run.
import { createHash } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";

export const PAUSE_IMAGE = "localhost/local-ipam-pause:1";

/** PID 1 of every sandbox: exits on TERM/INT, otherwise waits forever (a `wait` a trap can interrupt). */
const PAUSE_SCRIPT = `#!/bin/busybox sh
trap 'exit 0' TERM INT
while :; do
  /bin/busybox sleep 86400 &
  wait $!
done
`;

interface Entry {
  name: string;
  mode: number;
  type: "file" | "dir" | "symlink";
  data?: Uint8Array;
  target?: string;
}

/** One 512-byte ustar header. */
function header(e: Entry): Buffer {
  const h = Buffer.alloc(512);
  const put = (off: number, len: number, s: string) => h.write(s, off, len, "ascii");
  const octal = (off: number, len: number, n: number) => put(off, len, n.toString(8).padStart(len - 1, "0") + "\0");
  if (Buffer.byteLength(e.name) > 100) throw new Error(`tar: name too long: ${e.name}`);
  put(0, 100, e.name);
  octal(100, 8, e.mode);
  octal(108, 8, 0); // uid
  octal(116, 8, 0); // gid
  octal(124, 12, e.type === "file" ? e.data!.length : 0);
  octal(136, 12, 0); // mtime
  h.fill(" ", 148, 156); // checksum field counts as spaces while summing
  put(156, 1, e.type === "file" ? "0" : e.type === "dir" ? "5" : "2");
  if (e.target) put(157, 100, e.target);
  put(257, 6, "ustar\0");
  put(263, 2, "00");
  let sum = 0;
  for (const b of h) sum += b;
  put(148, 8, sum.toString(8).padStart(6, "0") + "\0 ");
  return h;
}

function tar(entries: Entry[]): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    parts.push(header(e));
    if (e.type === "file") {
      parts.push(Buffer.from(e.data!));
      const pad = (512 - (e.data!.length % 512)) % 512;
      if (pad) parts.push(Buffer.alloc(pad));
    }
  }
  parts.push(Buffer.alloc(1024)); // two zero blocks end the archive
  return Buffer.concat(parts);
}

const sha256 = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

const GOARCH: Record<string, string> = {
  x64: "amd64",
  arm64: "arm64",
  arm: "arm",
  ppc64: "ppc64le",
  s390x: "s390x",
  riscv64: "riscv64",
};

/** Writes the image as a docker-archive tar at `path`, with `busybox` (a static busybox binary) as /bin/busybox. */
export function writePauseImage(path: string, busybox = "/bin/busybox", ref = PAUSE_IMAGE): void {
  const layer = tar([
    { name: "bin/", mode: 0o755, type: "dir" },
    { name: "bin/busybox", mode: 0o755, type: "file", data: readFileSync(busybox) },
    { name: "bin/sh", mode: 0o777, type: "symlink", target: "busybox" },
    { name: "dev/", mode: 0o755, type: "dir" },
    { name: "etc/", mode: 0o755, type: "dir" },
    { name: "proc/", mode: 0o755, type: "dir" },
    { name: "sys/", mode: 0o755, type: "dir" },
    { name: "pause", mode: 0o755, type: "file", data: Buffer.from(PAUSE_SCRIPT) },
  ]);
  const diffId = `sha256:${sha256(layer)}`;
  const config = Buffer.from(
    JSON.stringify({
      architecture: GOARCH[process.arch] ?? process.arch,
      os: "linux",
      config: { Entrypoint: ["/pause"], Env: ["PATH=/bin"], WorkingDir: "/" },
      rootfs: { type: "layers", diff_ids: [diffId] },
      history: [{ created_by: "local-ipam conformance/containerd/pause-image.ts" }],
    }),
  );
  const configName = `${sha256(config)}.json`;
  const layerDir = sha256(layer);
  const manifest = Buffer.from(
    JSON.stringify([{ Config: configName, RepoTags: [ref], Layers: [`${layerDir}/layer.tar`] }]),
  );
  writeFileSync(
    path,
    tar([
      { name: configName, mode: 0o644, type: "file", data: config },
      { name: `${layerDir}/`, mode: 0o755, type: "dir" },
      { name: `${layerDir}/layer.tar`, mode: 0o644, type: "file", data: layer },
      { name: "manifest.json", mode: 0o644, type: "file", data: manifest },
    ]),
  );
}
