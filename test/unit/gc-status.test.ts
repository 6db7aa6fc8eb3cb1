// CNI 1.1 GC and STATUS, and taking over leases that a reboot left behind.
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, readdirSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { LOCAL_IPAM, ipamConfig, removeDir, run, tempDir } from "../helpers.js";

let dir: string;
beforeEach(() => {
  dir = tempDir();
});
afterEach(() => removeDir(dir));

const net = () => join(dir, "testnet");
const conf = (ipam: object = { subnet: "10.8.0.0/24" }, extra: object = {}) => ipamConfig(dir, ipam, extra, "1.1.0");
const add = (id: string, c: object = conf(), ifname = "eth0") => run(LOCAL_IPAM, { command: "ADD", containerId: id, ifname }, c);
const gc = (extra: object, ipam?: object) => run(LOCAL_IPAM, { command: "GC", env: { CNI_CONTAINERID: null, CNI_NETNS: null, CNI_IFNAME: null } }, conf(ipam, extra));
const status = (ipam?: object) => run(LOCAL_IPAM, { command: "STATUS", env: { CNI_CONTAINERID: null, CNI_NETNS: null, CNI_IFNAME: null } }, conf(ipam));
const leases = () => readdirSync(net()).filter((f) => /^[0-9a-f:.]+$/.test(f) && f.includes(".") || f.includes(":")).sort();
const btime = (): number => Number(/^btime (\d+)$/m.exec(readFileSync("/proc/stat", "utf8"))![1]);
const touchBeforeBoot = (file: string, secondsBefore: number) =>
  expect(spawnSync("touch", ["-d", `@${btime() - secondsBefore}`, file]).status).toBe(0);

describe("GC", () => {
  it("removes the leases of attachments not in the list, and nothing else", () => {
    for (const id of ["a", "b", "c"]) expect(add(id).status).toBe(0);
    add("a", conf(), "net1");
    const r = gc({ "cni.dev/valid-attachments": [{ containerID: "a", ifname: "eth0" }, { containerID: "c", ifname: "eth0" }] });
    expect(r.status).toBe(0);
    expect(r.stdout).toBe("");
    expect(leases()).toEqual(["10.8.0.2", "10.8.0.4"]);
    expect(readdirSync(net())).toEqual(expect.arrayContaining(["lock", "last_reserved_ip.0"]));
  });
  it("an empty list means no attachment is valid", () => {
    add("a");
    add("b");
    expect(gc({ "cni.dev/valid-attachments": [] }).status).toBe(0);
    expect(leases()).toEqual([]);
    expect(readdirSync(net()).sort()).toEqual(["last_reserved_ip.0", "lock"]);
  });
  it("no list at all means no information: nothing is removed", () => {
    add("a");
    expect(gc({}).status).toBe(0);
    expect(leases()).toEqual(["10.8.0.2"]);
  });
  it("accepts the cni.dev/attachments spelling", () => {
    add("a");
    add("b");
    expect(gc({ "cni.dev/attachments": [{ containerID: "b", ifname: "eth0" }] }).status).toBe(0);
    expect(leases()).toEqual(["10.8.0.3"]);
  });
  it("keeps a legacy id-only lease while any attachment has that container ID", () => {
    mkdirSync(net(), { recursive: true });
    writeFileSync(join(net(), "10.8.0.50"), "a");
    writeFileSync(join(net(), "10.8.0.51"), "gone");
    expect(gc({ "cni.dev/valid-attachments": [{ containerID: "a", ifname: "eth7" }] }).status).toBe(0);
    expect(leases()).toEqual(["10.8.0.50"]);
  });
  it("leaves what is not a regular lease file alone", () => {
    mkdirSync(net(), { recursive: true });
    const victim = join(dir, "victim");
    writeFileSync(victim, "x");
    symlinkSync(victim, join(net(), "10.8.0.9"));
    expect(gc({ "cni.dev/valid-attachments": [] }).status).toBe(0);
    expect(readdirSync(net())).toContain("10.8.0.9");
    expect(readFileSync(victim, "utf8")).toBe("x");
  });
  it("keeps going past a lease it cannot remove and reports it in one error", () => {
    for (const id of ["a", "b", "c"]) add(id);
    const stuck = join(net(), "10.8.0.3");
    const cover = join(dir, "cover");
    writeFileSync(cover, "b\r\neth0");
    expect(spawnSync("mount", ["--bind", cover, stuck]).status).toBe(0); // unlink of a mount point: EBUSY
    try {
      const r = gc({ "cni.dev/valid-attachments": [] });
      expect(r.status).toBe(1);
      expect(r.json).toMatchObject({ code: 5, msg: "GC could not remove 1 lease" });
      expect(r.json.details).toContain(`remove ${stuck}: `);
      expect(leases()).toEqual(["10.8.0.3"]);
    } finally {
      spawnSync("umount", [stuck]);
    }
  });
  it("is refused below cniVersion 1.1.0, and creates nothing for an unknown network", () => {
    const old = run(LOCAL_IPAM, { command: "GC" }, ipamConfig(dir, { subnet: "10.8.0.0/24" }, { "cni.dev/valid-attachments": [] }, "1.0.0"));
    expect(old.json).toMatchObject({ code: 1, msg: "config version does not allow GC" });
    expect(gc({ "cni.dev/valid-attachments": [] }).status).toBe(0);
    expect(existsSync(net())).toBe(false);
  });
});

describe("STATUS", () => {
  const small = { subnet: "10.8.0.0/30" }; // one address: .2
  it("succeeds silently while addresses are free", () => {
    const r = status(small);
    expect([r.status, r.stdout]).toEqual([0, ""]);
    expect(add("a", conf({ subnet: "10.8.1.0/24" })).status).toBe(0);
    expect(status({ subnet: "10.8.1.0/24" }).status).toBe(0);
  });
  it("fails with 50 naming the exhausted range set", () => {
    const c = conf({ ranges: [[{ subnet: "10.8.5.0/24" }], [{ subnet: "10.8.0.0/30" }]] });
    expect(add("a", c).status).toBe(0);
    const r = status({ ranges: [[{ subnet: "10.8.5.0/24" }], [{ subnet: "10.8.0.0/30" }]] });
    expect(r.status).toBe(1);
    expect(r.json).toMatchObject({ code: 50, msg: "no IP addresses available in range set 1: 10.8.0.1-10.8.0.2" });
  });
  it("counts a lease from before the boot as available", () => {
    expect(add("a", conf(small)).status).toBe(0);
    touchBeforeBoot(join(net(), "10.8.0.2"), 60);
    expect(status(small).status).toBe(0);
    expect(status({ ...small, reclaimAfterReboot: false }).json).toMatchObject({ code: 50 });
  });
  it("reports a broken config and an unreadable data dir with their own codes", () => {
    expect(status({ subnet: "10.8.0.1/24" }).json).toMatchObject({ code: 999 });
    writeFileSync(join(dir, "testnet"), "not a directory");
    expect(status(small).json).toMatchObject({ code: 5 });
  });
});

describe("leases from before the last boot", () => {
  const small = { subnet: "10.8.0.0/29" }; // .2 - .6
  it("ADD takes over the oldest when the range set is full, and says so on stderr", () => {
    for (const id of ["a", "b", "c", "d", "e"]) expect(add(id, conf(small)).status).toBe(0);
    touchBeforeBoot(join(net(), "10.8.0.3"), 600);
    touchBeforeBoot(join(net(), "10.8.0.5"), 6000);
    const r = add("new", conf(small));
    expect(r.status).toBe(0);
    expect(r.json.ips[0].address).toBe("10.8.0.5/29");
    expect(r.stderr).toContain("reclaimed 10.8.0.5 from d/eth0");
    expect(readFileSync(join(net(), "10.8.0.5"), "latin1")).toBe("new\r\neth0");
    expect(run(LOCAL_IPAM, { command: "CHECK", containerId: "new" }, conf(small)).status).toBe(0);
    // the old owner's DEL (the runtime cleaning up after the reboot) no longer touches it
    expect(run(LOCAL_IPAM, { command: "DEL", containerId: "d" }, conf(small)).status).toBe(0);
    expect(readFileSync(join(net(), "10.8.0.5"), "latin1")).toBe("new\r\neth0");
    expect(add("newer", conf(small)).json.ips[0].address).toBe("10.8.0.3/29");
  });
  it("free addresses come first", () => {
    for (const id of ["a", "b", "c", "d"]) add(id, conf(small));
    touchBeforeBoot(join(net(), "10.8.0.2"), 600);
    const r = add("new", conf(small));
    expect(r.json.ips[0].address).toBe("10.8.0.6/29");
    expect(r.stderr).toBe("");
  });
  it("reclaimAfterReboot: false keeps host-local's behaviour", () => {
    for (const id of ["a", "b", "c", "d", "e"]) add(id, conf(small));
    touchBeforeBoot(join(net(), "10.8.0.3"), 600);
    const r = add("new", conf({ ...small, reclaimAfterReboot: false }));
    expect(r.json).toEqual({ code: 999, msg: "failed to allocate for range 0: no IP addresses available in range set: 10.8.0.1-10.8.0.6" });
  });
  it("rejects a non-boolean reclaimAfterReboot as Go would", () => {
    expect(add("a", conf({ ...small, reclaimAfterReboot: "no" })).json).toEqual({
      code: 999,
      msg: "json: cannot unmarshal string into Go struct field IPAMConfig.ipam.reclaimAfterReboot of type bool",
    });
  });
});
