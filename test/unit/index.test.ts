// The persisted index: trusted only while the network directory is exactly as local-ipam left it; rebuilt from
// the lease files after host-local or a person changed the directory, and after any damage to the index itself.
import { mkdirSync, readdirSync, readFileSync, rmSync, statSync, unlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { HOST_LOCAL, ipamConfig, plugin, removeDir, run, snapshot, tempDir } from "../helpers.js";

let dir: string;
beforeEach(() => {
  dir = tempDir();
});
afterEach(() => removeDir(dir));

const small = { subnet: "10.9.0.0/29" }; // .2 - .6
const conf = (ipam: object = small) => ipamConfig(dir, ipam);
const net = () => join(dir, "testnet");
const index = () => join(dir, ".local-ipam", "testnet", "index");
const li = (command: string, id: string, c: object = conf()) => plugin({ command, containerId: id }, c);

describe("the index", () => {
  it("is written after a change and leaves the directory's mtime in the past", () => {
    const before = Date.now();
    expect(li("ADD", "a").status).toBe(0);
    expect(readFileSync(index()).subarray(0, 19).toString()).toBe("local-ipam index 2\n");
    expect(statSync(net()).mtimeMs).toBeLessThan(before);
  });
  it("is used, not rebuilt, while only local-ipam changes the directory", () => {
    const rebuilds = () => Number(readFileSync(join(dir, ".local-ipam", "testnet", "rebuilds"), "utf8"));
    const c = conf({ subnet: "10.9.2.0/24" });
    expect(li("ADD", "a", c).status).toBe(0);
    expect(rebuilds()).toBe(1); // the first run had no index
    for (const id of ["b", "c", "d"]) expect(li("ADD", id, c).status).toBe(0);
    expect(li("DEL", "b", c).status).toBe(0);
    expect(li("CHECK", "c", c).status).toBe(0);
    expect(rebuilds()).toBe(1);
    writeFileSync(join(net(), "10.9.2.99"), "hand\r\neth0");
    expect(li("CHECK", "hand", c).status).toBe(0);
    expect(rebuilds()).toBe(2);
  });
  it("is rebuilt when a lease is removed by hand: the freed address is found again", () => {
    for (const id of ["a", "b", "c", "d", "e"]) expect(li("ADD", id).status).toBe(0);
    unlinkSync(join(net(), "10.9.0.4")); // what operators are told to do with a stuck address
    expect(li("CHECK", "c").json).toMatchObject({ code: 999 });
    expect(li("ADD", "f").json.ips[0].address).toBe("10.9.0.4/29");
  });
  it("is rebuilt when a lease is added by hand: CHECK and DEL see it", () => {
    expect(li("ADD", "a").status).toBe(0);
    writeFileSync(join(net(), "10.9.0.5"), "hand\r\neth0");
    expect(li("CHECK", "hand").status).toBe(0);
    expect(li("DEL", "hand").status).toBe(0);
    expect(readdirSync(net())).not.toContain("10.9.0.5");
  });
  it("sees what host-local allocates and releases in the same directory", () => {
    const c = conf({ subnet: "10.9.1.0/24" });
    expect(li("ADD", "a", c).status).toBe(0);
    const h = run(HOST_LOCAL, { command: "ADD", containerId: "hl" }, c);
    expect(h.json.ips[0].address).toBe("10.9.1.3/24");
    expect(li("CHECK", "hl", c).status).toBe(0);
    expect(li("ADD", "hl", c).json.msg).toBe(
      "failed to allocate for range 0: 10.9.1.3 has been allocated to hl, duplicate allocation is not allowed",
    );
    expect(li("ADD", "b", c).json.ips[0].address).toBe("10.9.1.4/24");
    expect(run(HOST_LOCAL, { command: "DEL", containerId: "a" }, c).status).toBe(0);
    expect(li("CHECK", "a", c).json).toMatchObject({ code: 999 });
    expect(li("DEL", "hl", c).status).toBe(0);
    expect(run(HOST_LOCAL, { command: "CHECK", containerId: "hl" }, c).json).toMatchObject({ code: 999 });
  });
  it.each([
    ["truncated", (b: Buffer) => b.subarray(0, b.length - 3)],
    ["garbage", () => Buffer.from("not an index at all")],
    ["a foreign version", (b: Buffer) => Buffer.from(b.toString("latin1").replace("index 1", "index 7"), "latin1")],
    ["empty", () => Buffer.alloc(0)],
  ])("is rebuilt, never trusted, when it is %s", (_, damage) => {
    for (const id of ["a", "b", "c"]) li("ADD", id);
    writeFileSync(index(), damage(readFileSync(index())));
    expect(li("CHECK", "b").status).toBe(0);
    expect(li("ADD", "b").json.msg).toContain("10.9.0.3 has been allocated to b");
    expect(li("ADD", "d").json.ips[0].address).toBe("10.9.0.5/29");
    expect(LeaseCount()).toBe(4);
  });
  it("catches an owner that changed in place, without a directory change, by reading the lease", () => {
    li("ADD", "a");
    writeFileSync(join(net(), "10.9.0.2"), "z\r\neth0"); // same inode, so the directory does not change
    expect(li("CHECK", "a").json).toMatchObject({ code: 999 });
    expect(li("DEL", "a").status).toBe(0);
    expect(readFileSync(join(net(), "10.9.0.2"), "latin1")).toBe("z\r\neth0");
  });
  it("gives the same results and files as running without it", () => {
    const steps: [string, string][] = [
      ["ADD", "a"],
      ["ADD", "b"],
      ["ADD", "c"],
      ["DEL", "b"],
      ["ADD", "d"],
      ["CHECK", "a"],
      ["ADD", "e"],
      ["ADD", "f"],
      ["DEL", "a"],
      ["ADD", "g"],
      ["ADD", "h"],
      ["CHECK", "b"],
    ];
    const go = (withIndex: boolean) => {
      rmSync(dir, { recursive: true, force: true });
      mkdirSync(dir);
      const outs = steps.map(([cmd, id]) => {
        if (!withIndex) rmSync(join(dir, ".local-ipam"), { recursive: true, force: true });
        const r = li(cmd, id);
        return [r.status, r.stdout];
      });
      const files = Object.fromEntries(Object.entries(snapshot(dir)).filter(([p]) => !p.startsWith(".local-ipam/")));
      return { outs, files };
    };
    const indexed = go(true);
    expect(go(false)).toEqual(indexed);
  });
});

function LeaseCount(): number {
  return readdirSync(net()).filter((f) => f.startsWith("10.")).length;
}
