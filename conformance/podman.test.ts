// podman, a real container runtime, on a bridge + local-ipam network: conformance/podman.sh does the work and
// prints one "ok - ..." line per check; this wrapper runs it in the suite. Root only: CI runs as root.
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ROOT } from "../test/helpers.js";

describe("podman with local-ipam", () => {
  it("runs containers with distinct addresses, --ip, ping across the bridge, and releases every lease", () => {
    if (process.getuid?.() !== 0) throw new Error("the podman suite needs root");
    const r = spawnSync(join(ROOT, "conformance", "podman.sh"), [], { encoding: "utf8", timeout: 600_000 });
    const out = `${r.stdout}${r.stderr}`;
    expect(r.status, out).toBe(0);
    const oks = r.stdout.split("\n").filter((l) => l.startsWith("ok - "));
    expect(oks, out).toHaveLength(8);
    expect(out).not.toContain("not ok");
  }, 600_000);
});
