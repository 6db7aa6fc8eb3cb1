// The same answers on every CPU a node can have: the arm64 build under qemu-aarch64-static, and the x86-64 build
// on a baseline x86-64 CPU without AVX (qemu-x86_64-static -cpu qemu64), each against the x86-64 build run natively.
// Results, errors, the CLI's output and every file of the network directory must be equal.
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { cniEnv, type Invocation, LOCAL_IPAM, ROOT, removeDir, snapshot, tempDir } from "../helpers.js";

const ARM64 = join(ROOT, "dist", "local-ipam-arm64");
const runners: [string, string[]][] = [
  ["arm64 under qemu-aarch64-static", ["qemu-aarch64-static", ARM64]],
  ["x86-64 on a CPU without AVX (qemu64)", ["qemu-x86_64-static", "-cpu", "qemu64", LOCAL_IPAM]],
];

let dir: string;
beforeEach(() => {
  dir = tempDir();
});
afterEach(() => removeDir(dir));

type Step = { inv?: Invocation; cli?: string[]; ipam?: object; extra?: object };

function play(cmd: string[], label: string, steps: Step[]): { outputs: string[]; files: Record<string, string> } {
  const data = join(dir, label);
  const outputs = steps.map((s) => {
    const argv = s.cli ? [...cmd, ...s.cli.map((a) => a.replace("$DATA", data))] : cmd;
    const conf = {
      cniVersion: "1.1.0",
      name: "cpunet",
      ...s.extra,
      ipam: {
        type: "local-ipam",
        dataDir: data,
        ...(s.ipam ?? { ranges: [[{ subnet: "10.5.0.0/29", exclude: ["10.5.0.4"] }], [{ subnet: "fd00:5::/125" }]] }),
      },
    };
    const r = spawnSync(argv[0]!, argv.slice(1), {
      env: s.cli ? { PATH: process.env.PATH, COLUMNS: "100" } : cniEnv(s.inv!),
      input: s.cli ? "" : JSON.stringify(conf),
      encoding: "utf8",
    });
    return `${r.status}\n${r.stdout}\n${r.stderr}`;
  });
  const files = Object.fromEntries(Object.entries(snapshot(data)).filter(([p]) => !p.startsWith(".local-ipam/")));
  return { outputs, files };
}

const bare = { CNI_CONTAINERID: null, CNI_NETNS: null, CNI_IFNAME: null };
const steps: Step[] = [
  { inv: { command: "ADD", containerId: "a" } },
  { inv: { command: "ADD", containerId: "b" } },
  { inv: { command: "ADD", containerId: "c", args: "IP=10.5.0.6" } },
  { inv: { command: "ADD", containerId: "a" } }, // duplicate
  { inv: { command: "CHECK", containerId: "b" } },
  { inv: { command: "DEL", containerId: "a" } },
  { inv: { command: "ADD", containerId: "d" } },
  { inv: { command: "ADD", containerId: "e" } }, // the /29 is full
  { inv: { command: "STATUS", env: bare } },
  { inv: { command: "GC", env: bare }, extra: { "cni.dev/valid-attachments": [{ containerID: "d", ifname: "eth0" }] } },
  { inv: { command: "ADD", containerId: "x" }, ipam: { subnet: "10.5.1.0/24", rangeStart: "10.5.1.300" } }, // error
  { inv: { command: "VERSION" } },
  { cli: ["leases", "--data-dir", "$DATA"] },
];

describe("every CPU gives the same answers", () => {
  for (const [label, cmd] of runners) {
    it(label, () => {
      for (const f of [cmd[0]!, cmd[cmd.length - 1]!])
        expect(existsSync(f) || f.startsWith("qemu"), `${f} is missing`).toBe(true);
      const native = play([LOCAL_IPAM], "native", steps);
      const other = play(cmd, "other", steps);
      // the data dir differs, and so may the leases' ages (emulated runs take seconds): compare everything else
      const tidy = (s: string) =>
        s
          .replaceAll(join(dir, "native"), "$DATA")
          .replaceAll(join(dir, "other"), "$DATA")
          .replace(/\b\d{1,3}s\b/g, "<age>") // seconds only: a whole run takes well under 2 minutes
          .replace(/ {2,}/g, "  ");
      expect(other.outputs.map(tidy)).toEqual(native.outputs.map(tidy));
      expect(other.files).toEqual(native.files);
      expect(native.outputs[0]!.startsWith("0\n")).toBe(true);
    });
  }
  it("the arm64 build is a static arm64 executable", () => {
    const r = spawnSync("file", ["-b", ARM64], { encoding: "utf8" });
    expect(r.stdout).toMatch(/ARM aarch64.*statically linked/);
    expect(readFileSync(ARM64).length).toBeLessThan(4 << 20);
  });
});
