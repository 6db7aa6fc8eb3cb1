// The built binary, exec'd as a runtime would: files on disk, modes, hostile directory contents, the lock, and
// the size limits of its input and output.
import { spawn, spawnSync } from "node:child_process";
import {
  existsSync,
  lstatSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { LOCAL_IPAM, cniEnv, ipamConfig, removeDir, run, runAsync, tempDir } from "../helpers.js";

let dir: string;
let data: string;
beforeEach(() => {
  dir = tempDir();
  data = join(dir, "data");
});
afterEach(() => removeDir(dir));

const conf = (ipam: object = { subnet: "10.7.0.0/24" }, extra: object = {}, v = "1.0.0") => ipamConfig(data, ipam, extra, v);
const netDir = () => join(data, "testnet");
const mode = (p: string) => statSync(p).mode & 0o777;

describe("protocol basics", () => {
  it("prints the about text on stderr when CNI_COMMAND is not set", () => {
    const r = spawnSync(LOCAL_IPAM, [], { env: { PATH: process.env.PATH }, encoding: "utf8" });
    expect(r.status).toBe(0);
    expect(r.stdout).toBe("");
    expect(r.stderr).toMatch(/^CNI local-ipam plugin v\d+\.\d+\.\d+\nCNI protocol versions supported: 0\.1\.0, 0\.2\.0, 0\.3\.0, 0\.3\.1, 0\.4\.0, 1\.0\.0, 1\.1\.0\n$/);
  });
  it("answers VERSION with every supported version, without reading stdin", () => {
    const r = run(LOCAL_IPAM, { command: "VERSION" }, "this is not JSON");
    expect(r.stdout).toBe('{"cniVersion":"1.1.0","supportedVersions":["0.1.0","0.2.0","0.3.0","0.3.1","0.4.0","1.0.0","1.1.0"]}\n');
  });
  it("needs only CNI_COMMAND and CNI_PATH for GC and STATUS", () => {
    const bare = { CNI_CONTAINERID: null, CNI_NETNS: null, CNI_IFNAME: null };
    for (const command of ["GC", "STATUS"]) {
      expect(run(LOCAL_IPAM, { command, env: bare }, conf({ subnet: "10.7.0.0/24" }, {}, "1.1.0")).status).toBe(0);
      const r = run(LOCAL_IPAM, { command, env: { ...bare, CNI_PATH: null } }, conf({ subnet: "10.7.0.0/24" }, {}, "1.1.0"));
      expect(r.json).toEqual({ code: 4, msg: "required env variables [CNI_PATH] missing" });
    }
  });
  it("refuses GC and STATUS below cniVersion 1.1.0", () => {
    const r = run(LOCAL_IPAM, { command: "GC" }, conf());
    expect(r.json).toMatchObject({ code: 1, msg: "config version does not allow GC" });
  });
});

describe("the working directory", () => {
  it("cannot change the plugin: .env and bunfig.toml there are not loaded", () => {
    const cwd = join(dir, "cwd");
    mkdirSync(cwd);
    writeFileSync(join(cwd, ".env"), "CNI_COMMAND=VERSION\nLOCAL_IPAM_LOCK_TIMEOUT_MS=1\n");
    writeFileSync(join(cwd, "evil.js"), `require("fs").writeFileSync(${JSON.stringify(join(dir, "pwned"))}, "x");`);
    writeFileSync(join(cwd, "bunfig.toml"), 'preload = ["./evil.js"]\n');
    const about = spawnSync(LOCAL_IPAM, [], { cwd, env: { PATH: process.env.PATH }, encoding: "utf8" });
    expect(about.stdout).toBe(""); // not VERSION's output: .env was ignored
    expect(about.stderr).toContain("CNI local-ipam plugin");
    const add = spawnSync(LOCAL_IPAM, [], { cwd, env: cniEnv({ command: "ADD" }), input: JSON.stringify(conf()), encoding: "utf8" });
    expect(JSON.parse(add.stdout).ips[0].address).toBe("10.7.0.2/24");
    expect(existsSync(join(dir, "pwned"))).toBe(false);
  });
});

describe("files on disk", () => {
  it("writes host-local's bytes with 0600 leases, a 0750 lock, a 0755 directory, and leaves no temporary file", () => {
    const r = run(LOCAL_IPAM, { command: "ADD", containerId: "abc", ifname: "net1" }, conf());
    expect(r.status).toBe(0);
    expect(readFileSync(join(netDir(), "10.7.0.2"), "latin1")).toBe("abc\r\nnet1");
    expect(readFileSync(join(netDir(), "last_reserved_ip.0"), "latin1")).toBe("10.7.0.2");
    expect(mode(join(netDir(), "10.7.0.2"))).toBe(0o600);
    expect(mode(join(netDir(), "lock"))).toBe(0o750);
    expect(mode(netDir())).toBe(0o755);
    expect(readdirSync(netDir()).sort()).toEqual(["10.7.0.2", "last_reserved_ip.0", "lock"]);
    expect(readdirSync(join(data, ".local-ipam", "testnet"))).toEqual(["index", "rebuilds"]);
    expect(statSync(join(netDir(), "10.7.0.2")).nlink).toBe(1);
  });
  it("names IPv6 leases as Go prints them", () => {
    const r = run(LOCAL_IPAM, { command: "ADD" }, conf({ ranges: [[{ subnet: "2001:db8:0:0:1::/80" }]] }));
    expect(r.json.ips[0].address).toBe("2001:db8::1:0:0:2/80");
    expect(existsSync(join(netDir(), "2001:db8::1:0:0:2"))).toBe(true);
  });
  it("removes temporary files a killed run left in its state directory, not those of live runs", () => {
    mkdirSync(join(data, ".local-ipam", "testnet"), { recursive: true });
    writeFileSync(join(data, ".local-ipam", "testnet", "tmp.4194399.0"), "half"); // beyond any pid_max
    writeFileSync(join(data, ".local-ipam", "testnet", `tmp.${process.pid}.0`), "a live run's, before its lock");
    expect(run(LOCAL_IPAM, { command: "ADD" }, conf()).status).toBe(0);
    expect(readdirSync(join(data, ".local-ipam", "testnet")).sort()).toEqual(["index", "rebuilds", `tmp.${process.pid}.0`]);
  });
});

describe("hostile directory contents", () => {
  it("never writes through a symlink planted at a lease path", () => {
    mkdirSync(netDir(), { recursive: true });
    const victim = join(dir, "victim");
    writeFileSync(victim, "precious");
    symlinkSync(victim, join(netDir(), "10.7.0.2"));
    const r = run(LOCAL_IPAM, { command: "ADD", containerId: "a" }, conf());
    expect(r.json.ips[0].address).toBe("10.7.0.3/24");
    expect(readFileSync(victim, "utf8")).toBe("precious");
    // DEL of a container whose id is the victim's content must not follow the link either
    writeFileSync(victim, "b\r\neth0");
    expect(run(LOCAL_IPAM, { command: "DEL", containerId: "b" }, conf()).status).toBe(0);
    expect(lstatSync(join(netDir(), "10.7.0.2")).isSymbolicLink()).toBe(true);
    expect(readFileSync(victim, "utf8")).toBe("b\r\neth0");
  });
  it("replaces, never follows, a symlink planted as last_reserved_ip", () => {
    mkdirSync(netDir(), { recursive: true });
    const victim = join(dir, "victim2");
    writeFileSync(victim, "precious");
    symlinkSync(victim, join(netDir(), "last_reserved_ip.0"));
    expect(run(LOCAL_IPAM, { command: "ADD" }, conf()).status).toBe(0);
    expect(readFileSync(victim, "utf8")).toBe("precious");
    expect(lstatSync(join(netDir(), "last_reserved_ip.0")).isFile()).toBe(true);
  });
  it("refuses a network directory that is a symlink", () => {
    const elsewhere = join(dir, "elsewhere");
    mkdirSync(elsewhere);
    mkdirSync(data);
    symlinkSync(elsewhere, netDir());
    const r = run(LOCAL_IPAM, { command: "ADD" }, conf());
    expect(r.status).toBe(1);
    expect(r.json).toMatchObject({ code: 5 });
    expect(r.json.msg).toContain("symbolic link");
    expect(readdirSync(elsewhere)).toEqual([]);
  });
  it("does not hang on a FIFO planted as a lease or as last_reserved_ip", () => {
    mkdirSync(netDir(), { recursive: true });
    spawnSync("mkfifo", [join(netDir(), "10.7.0.2"), join(netDir(), "last_reserved_ip.0")]);
    const start = Date.now();
    const add = run(LOCAL_IPAM, { command: "ADD", containerId: "a" }, conf());
    expect(add.json.ips[0].address).toBe("10.7.0.3/24");
    expect(run(LOCAL_IPAM, { command: "CHECK", containerId: "zz" }, conf()).json.code).toBe(999);
    expect(run(LOCAL_IPAM, { command: "DEL", containerId: "a" }, conf()).status).toBe(0);
    expect(Date.now() - start).toBeLessThan(10_000);
  });
  it("skips a lease path that is a directory", () => {
    mkdirSync(join(netDir(), "10.7.0.2"), { recursive: true });
    expect(run(LOCAL_IPAM, { command: "ADD" }, conf()).json.ips[0].address).toBe("10.7.0.3/24");
  });
});

describe("the lock", () => {
  it("waits for a holder of the flock on <dir>/lock, then succeeds", async () => {
    mkdirSync(netDir(), { recursive: true });
    const holder = spawn("flock", ["-x", join(netDir(), "lock"), "-c", "sleep 1.5"]);
    await new Promise((r) => setTimeout(r, 300));
    const start = Date.now();
    const r = await runAsync(LOCAL_IPAM, { command: "ADD" }, conf());
    expect(r.status).toBe(0);
    expect(Date.now() - start).toBeGreaterThan(800);
    holder.kill();
  });
  it("gives up with error 11 after its bound", async () => {
    mkdirSync(netDir(), { recursive: true });
    const holder = spawn("flock", ["-x", join(netDir(), "lock"), "-c", "sleep 5"]);
    await new Promise((r) => setTimeout(r, 300));
    const r = await runAsync(LOCAL_IPAM, { command: "ADD", env: { LOCAL_IPAM_LOCK_TIMEOUT_MS: "400" } }, conf());
    holder.kill();
    expect(r.status).toBe(1);
    expect(r.json).toMatchObject({ code: 11 });
    expect(readdirSync(netDir()).sort()).toEqual(["lock"]);
  });
});

describe("input and output sizes", () => {
  it("writes a result larger than a pipe buffer completely to a slow reader", async () => {
    const routes = Array.from({ length: 3000 }, (_, i) => ({ dst: `172.${16 + (i >> 8)}.${i & 255}.0/24`, gw: "10.7.0.1" }));
    const child = spawn("sh", ["-c", `"${LOCAL_IPAM}" | (sleep 1; cat)`], { env: cniEnv({ command: "ADD" }) });
    let out = "";
    child.stdout.on("data", (d) => (out += d));
    child.stdin.end(JSON.stringify(conf({ subnet: "10.7.0.0/24", routes })));
    await new Promise((r) => child.on("close", r));
    expect(out.length).toBeGreaterThan(65536 * 2);
    expect(JSON.parse(out).routes).toHaveLength(3000);
  });
  it("refuses a 100 MB stdin with a clean error, in bounded memory", () => {
    const big = join(dir, "big.json");
    writeFileSync(big, JSON.stringify(conf({ subnet: "10.7.0.0/24", pad: "x".repeat(100 << 20) })));
    // run under python's wait4 to read the plugin's peak RSS
    const py = "import os,subprocess,sys\np=subprocess.Popen([sys.argv[1]],stdin=open(sys.argv[2],'rb'),stdout=subprocess.PIPE)\nout=p.stdout.read()\n_,st,ru=os.wait4(p.pid,0)\nprint(os.waitstatus_to_exitcode(st), ru.ru_maxrss)\nsys.stdout.write(out.decode())";
    const r = spawnSync("python3", ["-c", py, LOCAL_IPAM, big], { env: cniEnv({ command: "ADD" }), encoding: "utf8" });
    const [first, ...rest] = r.stdout.split("\n");
    const [status, maxrssKiB] = first!.split(" ").map(Number);
    expect(status).toBe(1);
    expect(JSON.parse(rest.join("\n"))).toMatchObject({ code: 6, msg: "error reading from stdin: network config larger than 16777216 bytes" });
    expect(maxrssKiB).toBeLessThan(150 * 1024); // the runtime's own ~50 MiB plus at most the 16 MiB read
    expect(existsSync(data)).toBe(false);
  });
  it("refuses deeply nested JSON with a clean error", () => {
    const r = run(LOCAL_IPAM, { command: "ADD" }, `{"name":"x","a":${"[".repeat(100000)}${"]".repeat(100000)}}`);
    expect(r.status).toBe(1);
    expect(r.json).toEqual({ code: 6, msg: "error unmarshall network config: invalid character '[' exceeded max depth" });
    expect(r.stderr).toBe("");
  });
  it("keeps a config with 10,000 routes", () => {
    const routes = Array.from({ length: 10000 }, (_, i) => ({ dst: `10.${100 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}/32` }));
    const r = run(LOCAL_IPAM, { command: "ADD" }, conf({ subnet: "10.7.0.0/24", routes }));
    expect(r.status).toBe(0);
    expect(r.json.routes).toHaveLength(10000);
  });
});

describe("dual stack end to end", () => {
  it("ADD, CHECK, DEL leave nothing behind", () => {
    const c = conf({ ranges: [[{ subnet: "10.7.0.0/24" }], [{ subnet: "fd00:7::/64" }]] });
    const add = run(LOCAL_IPAM, { command: "ADD" }, c);
    expect(add.json.ips.map((i: any) => i.address)).toEqual(["10.7.0.2/24", "fd00:7::2/64"]);
    expect(run(LOCAL_IPAM, { command: "CHECK" }, c).status).toBe(0);
    expect(run(LOCAL_IPAM, { command: "DEL" }, c).status).toBe(0);
    expect(readdirSync(netDir()).sort()).toEqual(["last_reserved_ip.0", "last_reserved_ip.1", "lock"]);
    expect(readlinkSafe(join(netDir(), "lock"))).toBe(null);
  });
});

function readlinkSafe(p: string): string | null {
  try {
    return readlinkSync(p);
  } catch {
    return null;
  }
}
