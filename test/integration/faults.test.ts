// Faults: local-ipam killed at any moment, a full disk, a read-only file system. After each, every lease is whole,
// no container holds two addresses of one range set, the index agrees with the files, and work goes on.
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { LOCAL_IPAM, cniEnv, ipamConfig, removeDir, run, tempDir } from "../helpers.js";

let dir: string;
beforeEach(() => {
  dir = tempDir();
});
afterEach(() => {
  spawnSync("umount", ["-l", join(dir, "mnt")]);
  removeDir(dir);
});

/** A tmpfs of `size` at <dir>/mnt, unmounted by afterEach. */
function mountTmpfs(size: string): string {
  const mnt = join(dir, "mnt");
  mkdirSync(mnt);
  expect(spawnSync("mount", ["-t", "tmpfs", "-o", `size=${size}`, "tmpfs", mnt]).status).toBe(0);
  return mnt;
}

function rng(seed: number) {
  return () => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed / 0x7fffffff;
  };
}

/** Every file of the network: whole leases of our containers, at most one per container per range set. */
function checkLeases(net: string, sets: ((ip: string) => boolean)[]): Map<string, string[]> {
  const byOwner = new Map<string, string[]>();
  for (const name of readdirSync(net)) {
    if (name === "lock" || name.startsWith("last_reserved_ip.")) continue;
    const content = readFileSync(join(net, name), "latin1");
    expect(content, `lease ${name}`).toMatch(/^k\d+\r\neth0$/);
    byOwner.set(content, [...(byOwner.get(content) ?? []), name]);
  }
  for (const [owner, names] of byOwner)
    for (const inSet of sets) expect(names.filter(inSet).length, `${owner} holds ${names}`).toBeLessThanOrEqual(1);
  return byOwner;
}

describe("SIGKILL at random moments", () => {
  it("300 kills during ADD and DEL leave whole leases, a consistent index, and a working network", async () => {
    const c = ipamConfig(dir, { ranges: [[{ subnet: "10.60.0.0/24" }], [{ subnet: "fd00:60::/64" }]] });
    const net = join(dir, "testnet");
    const sets = [(ip: string) => ip.startsWith("10.60."), (ip: string) => ip.startsWith("fd00:60:")];
    const random = rng(7);
    let killed = 0;
    for (let i = 0; i < 300; i++) {
      const id = `k${Math.floor(random() * 30)}`;
      const command = random() < 0.6 ? "ADD" : "DEL";
      const child = spawn(LOCAL_IPAM, [], { env: cniEnv({ command, containerId: id }) });
      child.stdin.on("error", () => {});
      child.stdout.resume();
      child.stdin.end(JSON.stringify(c));
      const delay = random() * 45;
      const timer = setTimeout(() => child.kill("SIGKILL"), delay);
      const [code, signal] = await new Promise<[number | null, string | null]>((r) => child.on("close", (co, sig) => r([co, sig])));
      clearTimeout(timer);
      if (signal === "SIGKILL") killed++;
      else expect([0, 1]).toContain(code);
      if (existsSync(net)) checkLeases(net, sets);
    }
    expect(killed).toBeGreaterThan(100);
    console.log(`SIGKILL harness: ${killed} of 300 invocations killed mid-run`);
    // the index agrees with the files: every owner found on disk passes CHECK, DEL frees everything
    const owners = existsSync(net) ? [...checkLeases(net, sets).keys()].map((o) => o.split("\r\n")[0]!) : [];
    for (const id of owners) expect(run(LOCAL_IPAM, { command: "CHECK", containerId: id }, c).status, id).toBe(0);
    for (let k = 0; k < 30; k++) expect(run(LOCAL_IPAM, { command: "DEL", containerId: `k${k}` }, c).status).toBe(0);
    expect(checkLeases(net, sets).size).toBe(0);
    const fresh = run(LOCAL_IPAM, { command: "ADD", containerId: "after" }, c);
    expect(fresh.status).toBe(0);
    expect(fresh.json.ips).toHaveLength(2);
    expect(readdirSync(join(dir, ".local-ipam", "testnet")).filter((f) => f.startsWith("tmp."))).toEqual([]);
  }, 300_000);
});

describe("a full disk", () => {
  it("ADD fails with error 5 and leaves no partial file, then works once space is freed", () => {
    const mnt = mountTmpfs("512k");
    const c = ipamConfig(mnt, { subnet: "10.61.0.0/24" });
    expect(run(LOCAL_IPAM, { command: "ADD", containerId: "before" }, c).status).toBe(0);
    spawnSync("sh", ["-c", `dd if=/dev/zero of=${mnt}/filler bs=4k 2>/dev/null; true`]);
    let refused = 0;
    for (let i = 0; i < 5; i++) {
      const r = run(LOCAL_IPAM, { command: "ADD", containerId: `full${i}` }, c);
      if (r.status === 0) continue; // a page freed by the previous attempt's cleanup may fit one more
      refused++;
      expect(r.json).toMatchObject({ code: 5 });
      expect(r.json.msg).toMatch(/no space left on device/);
    }
    expect(refused).toBeGreaterThanOrEqual(3);
    for (const name of readdirSync(join(mnt, "testnet"))) {
      if (name === "lock" || name.startsWith("last_reserved_ip")) continue;
      expect(readFileSync(join(mnt, "testnet", name), "latin1")).toMatch(/^(before|full\d)\r\neth0$/);
    }
    spawnSync("rm", ["-f", `${mnt}/filler`]);
    const r = run(LOCAL_IPAM, { command: "ADD", containerId: "after" }, c);
    expect(r.status).toBe(0);
    expect(run(LOCAL_IPAM, { command: "CHECK", containerId: "before" }, c).status).toBe(0);
  });
});

describe("a read-only file system", () => {
  it("ADD fails with error 5 naming the path; CHECK and DEL of an unknown container still answer; all works again read-write", () => {
    const mnt = mountTmpfs("1m");
    const c = ipamConfig(mnt, { subnet: "10.62.0.0/24" });
    expect(run(LOCAL_IPAM, { command: "ADD", containerId: "a" }, c).status).toBe(0);
    expect(spawnSync("mount", ["-o", "remount,ro", mnt]).status).toBe(0);
    const r = run(LOCAL_IPAM, { command: "ADD", containerId: "b" }, c);
    expect(r.status).toBe(1);
    expect(r.json.code).toBe(5);
    expect(r.json.msg).toContain("read-only file system");
    expect(r.stderr).toBe("");
    expect(run(LOCAL_IPAM, { command: "CHECK", containerId: "a" }, c).status).toBe(0);
    expect(run(LOCAL_IPAM, { command: "DEL", containerId: "nobody" }, c).status).toBe(0);
    expect(spawnSync("mount", ["-o", "remount,rw", mnt]).status).toBe(0);
    expect(run(LOCAL_IPAM, { command: "ADD", containerId: "b" }, c).status).toBe(0);
  });
});
