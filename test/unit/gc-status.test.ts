// CNI 1.1 GC and STATUS, and taking over leases that a reboot left behind.
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ipamConfig, plugin, removeDir, tempDir } from "../helpers.js";

let dir: string;
beforeEach(() => {
  dir = tempDir();
});
afterEach(() => removeDir(dir));

const net = () => join(dir, "testnet");
const conf = (ipam: object = { subnet: "10.8.0.0/24" }, extra: object = {}) => ipamConfig(dir, ipam, extra, "1.1.0");
const add = (id: string, c: object = conf(), ifname = "eth0") => plugin({ command: "ADD", containerId: id, ifname }, c);
const gc = (extra: object, ipam?: object) =>
  plugin({ command: "GC", env: { CNI_CONTAINERID: null, CNI_NETNS: null, CNI_IFNAME: null } }, conf(ipam, extra));
const status = (ipam?: object) =>
  plugin({ command: "STATUS", env: { CNI_CONTAINERID: null, CNI_NETNS: null, CNI_IFNAME: null } }, conf(ipam));
const leases = () =>
  readdirSync(net())
    .filter((f) => (/^[0-9a-f:.]+$/.test(f) && f.includes(".")) || f.includes(":"))
    .sort();
const btime = (): number => Number(/^btime (\d+)$/m.exec(readFileSync("/proc/stat", "utf8"))![1]);
const touchBeforeBoot = (file: string, secondsBefore: number) =>
  expect(spawnSync("touch", ["-d", `@${btime() - secondsBefore}`, file]).status).toBe(0);

describe("GC", () => {
  it("removes the leases of attachments not in the list, and nothing else", () => {
    for (const id of ["a", "b", "c"]) expect(add(id).status).toBe(0);
    add("a", conf(), "net1");
    const r = gc({
      "cni.dev/valid-attachments": [
        { containerID: "a", ifname: "eth0" },
        { containerID: "c", ifname: "eth0" },
      ],
    });
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
    const old = plugin(
      { command: "GC" },
      ipamConfig(dir, { subnet: "10.8.0.0/24" }, { "cni.dev/valid-attachments": [] }, "1.0.0"),
    );
    expect(old.json).toMatchObject({ code: 1, msg: "config version does not allow GC" });
    expect(gc({ "cni.dev/valid-attachments": [] }).status).toBe(0);
    expect(existsSync(net())).toBe(false);
  });
});

describe("STATUS", () => {
  const small = { subnet: "10.8.0.0/30" }; // one address: .2
  const two = { ranges: [[{ subnet: "10.8.5.0/24" }], [{ subnet: "10.8.0.0/30" }]] };
  it("succeeds silently while addresses are free", () => {
    const r = status(small);
    expect([r.status, r.stdout, r.stderr]).toEqual([0, "", ""]);
    expect(add("a", conf({ subnet: "10.8.1.0/24" })).status).toBe(0);
    expect(status({ subnet: "10.8.1.0/24" }).status).toBe(0);
  });
  it("by default, a full range set does not fail STATUS (it would make the node NotReady): it says so on stderr", () => {
    expect(add("a", conf(two)).status).toBe(0);
    const r = status(two);
    expect([r.status, r.stdout]).toEqual([0, ""]);
    expect(r.stderr).toBe(
      'local-ipam: STATUS: range set 1 (10.8.0.1-10.8.0.2) has no free address; new ADDs fail until addresses are released (running pods are unaffected; "statusOnExhaustion": "unavailable" reports this as error 50)\n',
    );
    expect(status({ ...two, statusOnExhaustion: "ready" }).status).toBe(0);
  });
  it('with "statusOnExhaustion": "unavailable", a full range set is error 50 naming it', () => {
    expect(add("a", conf(two)).status).toBe(0);
    const r = status({ ...two, statusOnExhaustion: "unavailable" });
    expect(r.json).toEqual({
      code: 50,
      msg: "no IP addresses available in range set 1: 10.8.0.1-10.8.0.2",
      details: "every address is leased and none was written before the last boot",
    });
    const noReclaim = status({ ...two, statusOnExhaustion: "unavailable", reclaimAfterReboot: false });
    expect(noReclaim.json.details).toBe(
      "every address is leased (reclaimAfterReboot is off: leases from before the last boot are kept)",
    );
  });
  it("warns when a range set is nearly full, and stays ready", () => {
    const c = conf({ subnet: "10.8.2.0/27", rangeEnd: "10.8.2.22" }); // .2 - .22: 21 addresses
    for (let i = 0; i < 20; i++) expect(add(`c${i}`, c).status).toBe(0);
    const r = status({ subnet: "10.8.2.0/27", rangeEnd: "10.8.2.22" });
    expect(r.status).toBe(0);
    expect(r.stderr).toBe(
      "local-ipam: STATUS: range set 0 (10.8.2.1-10.8.2.22) is nearly full: 1 of 21 addresses free\n",
    );
  });
  it("counts a lease from before the boot as available", () => {
    expect(add("a", conf(small)).status).toBe(0);
    touchBeforeBoot(join(net(), "10.8.0.2"), 60);
    expect(status({ ...small, statusOnExhaustion: "unavailable" }).status).toBe(0);
    expect(status({ ...small, statusOnExhaustion: "unavailable", reclaimAfterReboot: false }).json).toMatchObject({
      code: 50,
    });
  });
  it("fails for a config that does not load, with the config's own code", () => {
    expect(status({ subnet: "10.8.0.1/24" }).json).toMatchObject({ code: 999 });
    expect(status({ subnet: "10.8.0.0/24", statusOnExhaustion: "maybe" }).json).toEqual({
      code: 7,
      msg: 'invalid ipam.statusOnExhaustion "maybe": must be one of "ready", "unavailable"',
    });
  });
  it("fails with 50 for a data directory that cannot be used", () => {
    writeFileSync(join(dir, "testnet"), "not a directory");
    const r = status(small);
    expect(r.json).toEqual({ code: 50, msg: `plugin not available: open ${join(dir, "testnet")}: not a directory` });
  });
  it("fails with 50 for a data directory on a read-only or full file system, and recovers", () => {
    const mnt = join(dir, "mnt");
    mkdirSync(mnt);
    expect(spawnSync("mount", ["-t", "tmpfs", "-o", "size=64k", "tmpfs", mnt]).status).toBe(0);
    try {
      const c = (ipam: object) => ipamConfig(mnt, ipam, {}, "1.1.0");
      const st = () =>
        plugin({ command: "STATUS", env: { CNI_CONTAINERID: null, CNI_NETNS: null, CNI_IFNAME: null } }, c(small));
      expect(st().status).toBe(0); // no network dir yet: the data dir itself is probed
      expect(plugin({ command: "ADD", containerId: "a" }, c({ subnet: "10.8.9.0/24" })).status).toBe(0);
      expect(spawnSync("mount", ["-o", "remount,ro", mnt]).status).toBe(0);
      expect(st().json).toMatchObject({
        code: 50,
        msg: expect.stringMatching(/^plugin not available: .*read-only file system$/),
      });
      expect(spawnSync("mount", ["-o", "remount,rw", mnt]).status).toBe(0);
      spawnSync("sh", ["-c", `dd if=/dev/zero of=${mnt}/filler bs=4k 2>/dev/null; true`]);
      expect(st().json).toMatchObject({ code: 50, msg: expect.stringMatching(/no space left on device$/) });
      rmSync(join(mnt, "filler"));
      expect(st().status).toBe(0);
    } finally {
      spawnSync("umount", ["-l", mnt]);
    }
  });
  it("fails with 50 when the lock cannot be had within the bound", async () => {
    mkdirSync(net(), { recursive: true });
    const holder = spawn("flock", ["-x", join(net(), "lock"), "-c", "echo locked; exec cat"], {
      stdio: ["pipe", "pipe", "ignore"],
    });
    try {
      await new Promise((r) => holder.stdout.once("data", r));
      const r = plugin(
        {
          command: "STATUS",
          env: { CNI_CONTAINERID: null, CNI_NETNS: null, CNI_IFNAME: null, LOCAL_IPAM_LOCK_TIMEOUT_MS: "200" },
        },
        conf(small),
      );
      expect(r.json).toMatchObject({
        code: 50,
        msg: `plugin not available: timed out after 200 ms waiting for the lock ${join(net(), "lock")}`,
      });
    } finally {
      holder.kill("SIGKILL");
    }
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
    expect(plugin({ command: "CHECK", containerId: "new" }, conf(small)).status).toBe(0);
    // the old owner's DEL (the runtime cleaning up after the reboot) no longer touches it
    expect(plugin({ command: "DEL", containerId: "d" }, conf(small)).status).toBe(0);
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
    expect(r.json).toEqual({
      code: 999,
      msg: "failed to allocate for range 0: no IP addresses available in range set: 10.8.0.1-10.8.0.6",
    });
  });
  it("rejects a non-boolean reclaimAfterReboot as Go would", () => {
    expect(add("a", conf({ ...small, reclaimAfterReboot: "no" })).json).toEqual({
      code: 999,
      msg: "json: cannot unmarshal string into Go struct field IPAMConfig.ipam.reclaimAfterReboot of type bool",
    });
  });
});
