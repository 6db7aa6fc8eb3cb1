// The README's first command ends in scripts/demo.sh: it must keep working, and leave nothing behind.
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ROOT } from "../helpers.js";

describe("the demo", () => {
  it("adds, checks and deletes one dual-stack container, then removes its data dir", () => {
    const r = spawnSync(join(ROOT, "scripts", "demo.sh"), [], { encoding: "utf8", env: { PATH: process.env.PATH } });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain('"address": "10.244.1.2/24"');
    expect(r.stdout).toContain('"address": "fd00:244:1::2/64"');
    const dir = /files in (\/tmp\/local-ipam-demo\.\w+)\//.exec(r.stdout)?.[1];
    expect(dir).toBeDefined();
    // after DEL only local-ipam's own files were left, and the trap removed the directory
    expect(r.stdout).toMatch(/files left: last_reserved_ip\.0 last_reserved_ip\.1 lock\s*$/);
    expect(existsSync(dir!)).toBe(false);
  });
});
