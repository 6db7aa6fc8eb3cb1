// The plugin in-process (the same dispatcher and commands as the binary, on node:fs): files on disk, modes,
// hostile directory contents, our state directory's checks, and the lock.
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import {
  chmodSync,
  chownSync,
  existsSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ipamConfig, LOCAL_IPAM, plugin, removeDir, runAsync, tempDir } from "../helpers.js";

let dir: string;
let data: string;
let holders: ChildProcess[] = [];
beforeEach(() => {
  dir = tempDir();
  data = join(dir, "data");
});
afterEach(() => {
  for (const h of holders) h.kill("SIGKILL");
  holders = [];
  removeDir(dir);
});

const conf = (ipam: object = { subnet: "10.7.0.0/24" }, extra: object = {}, v = "1.0.0") =>
  ipamConfig(data, ipam, extra, v);
const netDir = () => join(data, "testnet");
const stateDir = () => join(data, ".local-ipam", "testnet");
const mode = (p: string) => statSync(p).mode & 0o777;
const add = (id = "a", c: object = conf()) => plugin({ command: "ADD", containerId: id }, c);

/** Holds the flock on `path` until killed; resolves once it holds it (flock(1) says "locked"). */
function holdLock(path: string): Promise<ChildProcess> {
  const holder = spawn("flock", ["-x", path, "-c", "echo locked; exec cat"], { stdio: ["pipe", "pipe", "ignore"] });
  holders.push(holder);
  return new Promise((resolve, reject) => {
    holder.stdout!.once("data", () => resolve(holder));
    holder.once("exit", (code) => reject(new Error(`flock exited ${code}`)));
  });
}

describe("protocol basics", () => {
  it("prints the about text on stderr when CNI_COMMAND is not set", () => {
    const r = plugin({ command: "", env: { CNI_COMMAND: null } }, "");
    expect([r.status, r.stdout]).toEqual([0, ""]);
    expect(r.stderr).toMatch(
      /^CNI local-ipam plugin v.+\nCNI protocol versions supported: 0\.1\.0, 0\.2\.0, 0\.3\.0, 0\.3\.1, 0\.4\.0, 1\.0\.0, 1\.1\.0\n$/,
    );
  });
  it("answers VERSION with every supported version, without reading stdin", () => {
    const r = plugin({ command: "VERSION" }, "this is not JSON");
    expect(r.stdout).toBe(
      '{"cniVersion":"1.1.0","supportedVersions":["0.1.0","0.2.0","0.3.0","0.3.1","0.4.0","1.0.0","1.1.0"]}\n',
    );
  });
  it("needs only CNI_COMMAND and CNI_PATH for GC and STATUS", () => {
    const bare = { CNI_CONTAINERID: null, CNI_NETNS: null, CNI_IFNAME: null };
    for (const command of ["GC", "STATUS"]) {
      expect(plugin({ command, env: bare }, conf({ subnet: "10.7.0.0/24" }, {}, "1.1.0")).status).toBe(0);
      const r = plugin({ command, env: { ...bare, CNI_PATH: null } }, conf({ subnet: "10.7.0.0/24" }, {}, "1.1.0"));
      expect(r.json).toEqual({ code: 4, msg: "required env variables [CNI_PATH] missing" });
    }
  });
  it("refuses GC and STATUS below cniVersion 1.1.0", () => {
    expect(plugin({ command: "GC" }, conf()).json).toMatchObject({ code: 1, msg: "config version does not allow GC" });
  });
  it("prints results and errors as Go does: four-space indent, HTML-safe escapes, no trailing newline", () => {
    const r = plugin({ command: "ADD", containerId: "a<b" }, conf());
    expect(r.stdout).toBe(
      '{\n    "code": 4,\n    "msg": "invalid characters in containerID",\n    "details": "a\\u003cb"\n}',
    );
  });
});

describe("files on disk", () => {
  it("writes host-local's bytes with 0600 leases, a 0750 lock, a 0755 directory, and no temporary file", () => {
    const r = plugin({ command: "ADD", containerId: "abc", ifname: "net1" }, conf());
    expect(r.status).toBe(0);
    expect(readFileSync(join(netDir(), "10.7.0.2"), "latin1")).toBe("abc\r\nnet1");
    expect(readFileSync(join(netDir(), "last_reserved_ip.0"), "latin1")).toBe("10.7.0.2");
    expect(mode(join(netDir(), "10.7.0.2"))).toBe(0o600);
    expect(mode(join(netDir(), "lock"))).toBe(0o750);
    expect(mode(netDir())).toBe(0o755);
    expect(readdirSync(netDir()).sort()).toEqual(["10.7.0.2", "last_reserved_ip.0", "lock"]);
    expect(readdirSync(stateDir()).sort()).toEqual(["index", "rebuilds"]);
    expect(mode(stateDir())).toBe(0o700);
    expect(mode(join(data, ".local-ipam"))).toBe(0o700);
  });
  it("names IPv6 leases as Go prints them", () => {
    const r = add("a", conf({ ranges: [[{ subnet: "2001:db8:0:0:1::/80" }]] }));
    expect(r.json.ips[0].address).toBe("2001:db8::1:0:0:2/80");
    expect(existsSync(join(netDir(), "2001:db8::1:0:0:2"))).toBe(true);
  });
  it("removes temporary files of killed writers, in the state and network directories, under the lock", () => {
    mkdirSync(stateDir(), { recursive: true, mode: 0o700 });
    mkdirSync(netDir(), { recursive: true });
    for (let i = 0; i < 50; i++) writeFileSync(join(stateDir(), `.local-ipam-tmp.dead${i}`), "half");
    writeFileSync(join(netDir(), ".local-ipam-tmp.deadbeef"), "a\r\neth0"); // a killed takeover's
    writeFileSync(join(stateDir(), "tmp.4194399.0"), "an older version's: not ours to judge");
    expect(add().status).toBe(0);
    expect(readdirSync(stateDir()).sort()).toEqual(["index", "rebuilds", "tmp.4194399.0"]);
    expect(readdirSync(netDir())).not.toContain(".local-ipam-tmp.deadbeef");
  });
});

describe("hostile directory contents", () => {
  it("never writes through a symlink planted at a lease path", () => {
    mkdirSync(netDir(), { recursive: true });
    const victim = join(dir, "victim");
    writeFileSync(victim, "precious");
    symlinkSync(victim, join(netDir(), "10.7.0.2"));
    expect(add("a").json.ips[0].address).toBe("10.7.0.3/24");
    expect(readFileSync(victim, "utf8")).toBe("precious");
    // DEL of a container whose id is the victim's content must not follow the link either
    writeFileSync(victim, "b\r\neth0");
    expect(plugin({ command: "DEL", containerId: "b" }, conf()).status).toBe(0);
    expect(lstatSync(join(netDir(), "10.7.0.2")).isSymbolicLink()).toBe(true);
    expect(readFileSync(victim, "utf8")).toBe("b\r\neth0");
  });
  it("replaces, never follows, a symlink planted as last_reserved_ip", () => {
    mkdirSync(netDir(), { recursive: true });
    const victim = join(dir, "victim2");
    writeFileSync(victim, "precious");
    symlinkSync(victim, join(netDir(), "last_reserved_ip.0"));
    expect(add().status).toBe(0);
    expect(readFileSync(victim, "utf8")).toBe("precious");
    expect(lstatSync(join(netDir(), "last_reserved_ip.0")).isFile()).toBe(true);
  });
  it("refuses a network directory that is a symlink", () => {
    const elsewhere = join(dir, "elsewhere");
    mkdirSync(elsewhere);
    mkdirSync(data);
    symlinkSync(elsewhere, netDir());
    const r = add();
    expect(r.json).toMatchObject({ code: 5 });
    expect(r.json.msg).toContain("symbolic link");
    expect(readdirSync(elsewhere)).toEqual([]);
  });
  it("does not hang on a FIFO planted as a lease or as last_reserved_ip", () => {
    mkdirSync(netDir(), { recursive: true });
    spawnSync("mkfifo", [join(netDir(), "10.7.0.2"), join(netDir(), "last_reserved_ip.0")]);
    expect(add("a").json.ips[0].address).toBe("10.7.0.3/24");
    expect(plugin({ command: "CHECK", containerId: "zz" }, conf()).json.code).toBe(999);
    expect(plugin({ command: "DEL", containerId: "a" }, conf()).status).toBe(0);
  });
  it("refuses a FIFO, a directory or a symlink at <dir>/lock with code 5, before any wait", () => {
    for (const plant of ["fifo", "dir", "symlink"]) {
      removeDir(data);
      mkdirSync(netDir(), { recursive: true });
      const lock = join(netDir(), "lock");
      if (plant === "fifo") spawnSync("mkfifo", [lock]);
      if (plant === "dir") mkdirSync(lock);
      if (plant === "symlink") symlinkSync(join(dir, "elsewhere-lock"), lock);
      const r = plugin({ command: "ADD", env: { LOCAL_IPAM_LOCK_TIMEOUT_MS: "600000" } }, conf());
      expect(r.json, plant).toMatchObject({ code: 5 });
      expect(r.json.msg, plant).toContain(lock);
      expect(existsSync(join(dir, "elsewhere-lock"))).toBe(false);
    }
  });
  it("skips a lease path that is a directory", () => {
    mkdirSync(join(netDir(), "10.7.0.2"), { recursive: true });
    expect(add().json.ips[0].address).toBe("10.7.0.3/24");
  });
});

describe("our state directory is used only when nobody else can change it", () => {
  const cases: [string, () => void, RegExp][] = [
    [
      "owned by another user",
      () => chownSync(join(data, ".local-ipam"), 65534, 65534),
      /\.local-ipam: owned by uid 65534, not 0/,
    ],
    [
      "writable by group",
      () => chmodSync(join(data, ".local-ipam"), 0o770),
      /\.local-ipam: writable by group \(mode 0770\)/,
    ],
    [
      "writable by others",
      () => chmodSync(stateDir(), 0o707),
      /\.local-ipam\/testnet: writable by others \(mode 0707\)/,
    ],
    [
      "a symlink to another directory",
      () => {
        removeDir(join(data, ".local-ipam"));
        mkdirSync(join(dir, "theirs"));
        symlinkSync(join(dir, "theirs"), join(data, ".local-ipam"));
      },
      /\.local-ipam: it is a symbolic link/,
    ],
  ];
  for (const [what, plant, msg] of cases) {
    it(`refuses it when ${what}, with code 5 and a clear message, and writes nothing there`, () => {
      expect(add("a").status).toBe(0);
      plant();
      const r = add("b");
      expect(r.json).toMatchObject({ code: 5 });
      expect(r.json.msg).toMatch(msg);
      expect(readdirSync(netDir()).filter((f) => f.startsWith("10."))).toEqual(["10.7.0.2"]); // b's lease was rolled back
      if (existsSync(join(dir, "theirs"))) expect(readdirSync(join(dir, "theirs"))).toEqual([]);
    });
  }
});

describe("the lock", () => {
  it("waits for a holder of the flock on <dir>/lock: no lease appears until it lets go", async () => {
    mkdirSync(netDir(), { recursive: true });
    const holder = await holdLock(join(netDir(), "lock"));
    const pending = runAsync(LOCAL_IPAM, { command: "ADD" }, conf());
    for (let i = 0; i < 20; i++) expect(readdirSync(netDir()).filter((f) => f.startsWith("10."))).toEqual([]);
    holder.stdin!.end(); // cat ends, flock(1) exits, the lock is free
    const r = await pending;
    expect(r.status).toBe(0);
    expect(readdirSync(netDir())).toContain("10.7.0.2");
  });
  it("gives up with error 11 after its bound, leaving nothing", async () => {
    mkdirSync(netDir(), { recursive: true });
    await holdLock(join(netDir(), "lock"));
    const r = plugin({ command: "ADD", env: { LOCAL_IPAM_LOCK_TIMEOUT_MS: "300" } }, conf());
    expect(r.json).toMatchObject({ code: 11 });
    expect(readdirSync(netDir()).sort()).toEqual(["lock"]);
  });
});

describe("dual stack end to end", () => {
  it("ADD, CHECK, DEL leave nothing behind", () => {
    const c = conf({ ranges: [[{ subnet: "10.7.0.0/24" }], [{ subnet: "fd00:7::/64" }]] });
    const r = add("a", c);
    expect(r.json.ips.map((i: { address: string }) => i.address)).toEqual(["10.7.0.2/24", "fd00:7::2/64"]);
    expect(plugin({ command: "CHECK", containerId: "a" }, c).status).toBe(0);
    expect(plugin({ command: "DEL", containerId: "a" }, c).status).toBe(0);
    expect(readdirSync(netDir()).sort()).toEqual(["last_reserved_ip.0", "last_reserved_ip.1", "lock"]);
  });
});
