// A chained CNI plugin that can hold an ADD open: with it last in the list, a test knows for certain that a
// RunPodSandbox is in flight, past the IPAM allocation (the plugins before it have run), and can crash the runtime
// right there. Armed by a file; while armed, each ADD writes `held-<container id>` (holding its pid) and waits
// until the arm file is removed, bounded by `holdMs`. DEL, CHECK and the rest pass; ADD passes prevResult through.
import { chmodSync, existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export const GATE_TYPE = "local-ipam-test-gate";

const SCRIPT = `
const fs = require("fs");
const out = (o) => fs.writeSync(1, JSON.stringify(o));
const conf = JSON.parse(fs.readFileSync(0, "utf8") || "{}");
const cmd = process.env.CNI_COMMAND;
const version = conf.cniVersion || "1.0.0";
if (cmd === "VERSION") {
  out({ cniVersion: version, supportedVersions: ["0.3.0", "0.3.1", "0.4.0", "1.0.0"] });
} else if (cmd === "ADD") {
  const armed = conf.gateDir + "/armed";
  if (fs.existsSync(armed)) {
    const held = conf.gateDir + "/held-" + process.env.CNI_CONTAINERID;
    fs.writeFileSync(held + ".tmp", String(process.pid));
    fs.renameSync(held + ".tmp", held);
    const cell = new Int32Array(new SharedArrayBuffer(4));
    const end = Date.now() + (conf.holdMs || 120000);
    while (fs.existsSync(armed)) {
      if (Date.now() > end) {
        out({ cniVersion: version, code: 999, msg: "gate: held too long" });
        process.exit(1);
      }
      Atomics.wait(cell, 0, 0, 10);
    }
    fs.rmSync(held, { force: true });
  }
  out(Object.assign({}, conf.prevResult || {}, { cniVersion: version }));
}
`;

/** Writes the gate plugin into `binDir` (as an executable run by this Node). */
export function installGate(binDir: string): void {
  const path = join(binDir, GATE_TYPE);
  writeFileSync(path, `#!${process.execPath}\n${SCRIPT}`);
  chmodSync(path, 0o755);
}

/** The gate's entry in a conflist. */
export function gatePlugin(gateDir: string, holdMs = 120_000): object {
  return { type: GATE_TYPE, gateDir, holdMs };
}

export function armGate(gateDir: string): void {
  writeFileSync(join(gateDir, "armed"), "");
}

export function disarmGate(gateDir: string): void {
  rmSync(join(gateDir, "armed"), { force: true });
}

/** Forgets the markers of held ADDs (after their plugins were killed). */
export function clearHeld(gateDir: string): void {
  for (const f of existsSync(gateDir) ? readdirSync(gateDir) : [])
    if (f.startsWith("held-")) rmSync(join(gateDir, f), { force: true });
}

/** ADDs being held now (or whose plugin was killed while held): container id and the plugin's pid. */
export function heldAdds(gateDir: string): { containerId: string; pid: number }[] {
  if (!existsSync(gateDir)) return [];
  return readdirSync(gateDir)
    .filter((f) => f.startsWith("held-") && !f.endsWith(".tmp"))
    .map((f) => ({ containerId: f.slice("held-".length), pid: Number(readFileSync(join(gateDir, f), "utf8")) }));
}
