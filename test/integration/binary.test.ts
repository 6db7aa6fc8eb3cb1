// The executable as a process: what only the real binary can show. Its environment and arguments, stdin and
// stdout at their limits, the anonymous lease file that becomes two hard links, and the same answers as the
// in-process plugin for text the native module decodes itself.
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { until } from "../agent-process.js";
import { cniEnv, ipamConfig, LOCAL_IPAM, plugin, removeDir, run, tempDir } from "../helpers.js";

let dir: string;
beforeEach(() => {
  dir = tempDir();
});
afterEach(() => removeDir(dir));

const conf = (ipam: object = { subnet: "10.7.0.0/24" }) => ipamConfig(join(dir, "data"), ipam);
const netDir = () => join(dir, "data", "testnet");

/** Runs the binary under GNU time, for its peak RSS (KiB) besides its exit status and output. */
function withRss(stdinFile: string, env: NodeJS.ProcessEnv): { status: number; rssKiB: number; out: string } {
  const report = join(dir, "time.out");
  const r = spawnSync("/usr/bin/time", ["-o", report, "-f", "%x %M", LOCAL_IPAM], {
    env,
    input: readFileSync(stdinFile),
    encoding: "utf8",
    maxBuffer: 64 << 20,
  });
  const [status, rssKiB] = readFileSync(report, "utf8").trim().split("\n").pop()!.split(" ").map(Number);
  return { status: status!, rssKiB: rssKiB!, out: r.stdout };
}

describe("the process", () => {
  it("with no environment at all prints its about text on stderr and exits 0", () => {
    const r = spawnSync(LOCAL_IPAM, [], { env: {}, encoding: "utf8" });
    expect([r.status, r.stdout]).toEqual([0, ""]);
    expect(r.stderr).toMatch(
      /^CNI local-ipam plugin v\d+\.\d+\.\d+\nCNI protocol versions supported: 0\.1\.0, .*, 1\.1\.0\n$/,
    );
  });
  it("is the plugin whenever CNI_COMMAND is set, whatever its arguments; the CLI otherwise", () => {
    const plugin = spawnSync(LOCAL_IPAM, ["leases"], { env: { CNI_COMMAND: "VERSION" }, encoding: "utf8" });
    expect(JSON.parse(plugin.stdout).supportedVersions).toContain("1.1.0");
    const cli = spawnSync(LOCAL_IPAM, ["--version"], { env: {}, encoding: "utf8" });
    expect(cli.stdout).toMatch(/^local-ipam \d+\.\d+\.\d+ \(\S+\)\n$/);
  });
  it("does not depend on its working directory, nor read anything from it", () => {
    const cwd = join(dir, "cwd");
    mkdirSync(cwd);
    writeFileSync(join(cwd, ".env"), "CNI_COMMAND=VERSION\n");
    const r = spawnSync(LOCAL_IPAM, [], {
      cwd,
      env: cniEnv({ command: "ADD" }),
      input: JSON.stringify(conf()),
      encoding: "utf8",
    });
    expect(JSON.parse(r.stdout).ips[0].address).toBe("10.7.0.2/24");
    expect(readdirSync(cwd)).toEqual([".env"]);
  });
  it("an ADD peaks at a few MiB of memory", () => {
    const file = join(dir, "conf.json");
    writeFileSync(file, JSON.stringify(conf()));
    const r = withRss(file, cniEnv({ command: "ADD" }));
    expect(r.status).toBe(0);
    expect(r.rssKiB).toBeLessThan(8 * 1024);
  });
});

describe("stdin and stdout at their limits", () => {
  it("answers missing variables without reading stdin, as host-local: a writer then meets a closed pipe", () => {
    // 1 MiB does not fit a pipe: the runtime's write fails with EPIPE once the plugin has exited; Go's os/exec
    // ignores that, and so does run() (this is the race that failed the differential suite now and then)
    const big = JSON.stringify({ ...conf(), pad: "x".repeat(1 << 20) });
    const r = run(LOCAL_IPAM, { command: "ADD", env: { CNI_NETNS: null } }, big);
    expect([r.status, r.json.code, r.json.msg]).toEqual([1, 4, "required env variables [CNI_NETNS] missing"]);
    expect(existsSync(netDir())).toBe(false);
  });
  it("refuses a 100 MB stdin after 16 MiB, in bounded memory, leaving nothing", () => {
    const big = join(dir, "big.json");
    writeFileSync(big, JSON.stringify({ ...conf(), pad: "x".repeat(100 << 20) }));
    const r = withRss(big, cniEnv({ command: "ADD" }));
    expect(r.status).toBe(1);
    expect(JSON.parse(r.out)).toEqual({
      code: 6,
      msg: "error reading from stdin: network config larger than 16777216 bytes",
    });
    expect(r.rssKiB).toBeLessThan(64 * 1024); // the 16 MiB read, decoded once; never the whole 100 MB
    expect(existsSync(join(dir, "data"))).toBe(false);
  });
  it("reads a config arriving slowly through a pipe", async () => {
    const child = spawn("sh", ["-c", `(printf '{"cniVersion":"1.0.0",'; cat) | "${LOCAL_IPAM}"`], {
      env: cniEnv({ command: "ADD" }),
    });
    let out = "";
    child.stdout.on("data", (d) => (out += d));
    const rest = JSON.stringify(conf()).slice(1);
    child.stdin.write(rest.slice(0, 10));
    child.stdin.end(rest.slice(10));
    await new Promise((r) => child.on("close", r));
    expect(JSON.parse(out).ips[0].address).toBe("10.7.0.2/24");
  });
  it("writes a result larger than a pipe buffer completely, to a reader that lets the pipe fill first", async () => {
    const routes = Array.from({ length: 3000 }, (_, i) => ({
      dst: `172.${16 + (i >> 8)}.${i & 255}.0/24`,
      gw: "10.7.0.1",
    }));
    const child = spawn(LOCAL_IPAM, [], { env: cniEnv({ command: "ADD" }) });
    child.stdin.end(JSON.stringify(conf({ subnet: "10.7.0.0/24", routes })));
    // nothing reads yet: wait (bounded) until the plugin sleeps in write(1, ...), its output pipe full
    const blockedInWrite = () => {
      try {
        const [nr, fd] = readFileSync(`/proc/${child.pid}/syscall`, "utf8").split(" ");
        return (nr === "1" || nr === "64") && fd === "0x1"; // write on x86-64 / arm64
      } catch {
        return false;
      }
    };
    // bounded by time, not by a count of turns: its fsyncs before the write may take seconds on a busy disk
    await until("the plugin to block in write(1)", blockedInWrite, 60_000);
    expect(blockedInWrite()).toBe(true);
    let out = "";
    child.stdout.on("data", (d) => (out += d));
    await new Promise((r) => child.on("close", r));
    expect(out.length).toBeGreaterThan(65536 * 2);
    expect(JSON.parse(out).routes).toHaveLength(3000);
  });
  it("exits quietly when the reader of its output went away (EPIPE), with the lease made", () => {
    writeFileSync(join(dir, "c.json"), JSON.stringify(conf()));
    // a FIFO whose reader opens it and leaves at once: the plugin's result meets a pipe with no reader
    const script = 'mkfifo "$1/out"; (exec 0<"$1/out") & "$2" < "$1/c.json" > "$1/out"; echo "exit $?"';
    const r = spawnSync("sh", ["-c", script, "sh", dir, LOCAL_IPAM], {
      env: cniEnv({ command: "ADD", containerId: "quiet" }),
      encoding: "utf8",
    });
    expect([r.stdout, r.stderr]).toEqual(["exit 0\n", ""]);
    expect(readFileSync(join(netDir(), "10.7.0.2"), "latin1")).toBe("quiet\r\neth0");
  });
  it("with stdout and stderr closed, still writes nothing but its lease (descriptors 1 and 2 are not reused)", () => {
    writeFileSync(join(dir, "c.json"), JSON.stringify(conf()));
    const r = spawnSync("sh", ["-c", '"$2" < "$1/c.json" >&- 2>&-; echo "exit $?"', "sh", dir, LOCAL_IPAM], {
      env: cniEnv({ command: "ADD", containerId: "closed" }),
      encoding: "utf8",
    });
    expect(r.stdout).toBe("exit 0\n");
    expect(readFileSync(join(netDir(), "10.7.0.2"), "latin1")).toBe("closed\r\neth0");
    expect(readFileSync(join(netDir(), "last_reserved_ip.0"), "latin1")).toBe("10.7.0.2");
  });
  it("refuses JSON nested deeper than Go allows, before any parser recurses", () => {
    const r = run(LOCAL_IPAM, { command: "ADD" }, `{"name":"x","a":${"[".repeat(100000)}${"]".repeat(100000)}}`);
    expect(r.json).toEqual({
      code: 6,
      msg: "error unmarshall network config: invalid character '[' exceeded max depth",
    });
    expect(r.stderr).toBe("");
  });
  it("keeps a config with 10,000 routes", () => {
    const routes = Array.from({ length: 10000 }, (_, i) => ({
      dst: `10.${100 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}/32`,
    }));
    const r = run(LOCAL_IPAM, { command: "ADD" }, conf({ subnet: "10.7.0.0/24", routes }));
    expect(r.status).toBe(0);
    expect(r.json.routes).toHaveLength(10000);
  });
});

describe("leases made from one anonymous file", () => {
  it("a dual-stack ADD links one fsynced O_TMPFILE file twice, 0600, and leaves no temporary name", () => {
    const c = conf({ ranges: [[{ subnet: "10.7.0.0/24" }], [{ subnet: "fd00:7::/64" }]] });
    expect(run(LOCAL_IPAM, { command: "ADD", containerId: "a" }, c).status).toBe(0);
    const v4 = statSync(join(netDir(), "10.7.0.2"));
    const v6 = statSync(join(netDir(), "fd00:7::2"));
    expect([v4.ino, v4.nlink, v4.mode & 0o777]).toEqual([v6.ino, 2, 0o600]);
    expect(readdirSync(netDir()).sort()).toEqual([
      "10.7.0.2",
      "fd00:7::2",
      "last_reserved_ip.0",
      "last_reserved_ip.1",
      "lock",
    ]);
  });
});

describe("the native module and the in-process plugin agree", () => {
  it("on lease contents with invalid UTF-8 (one U+FFFD per bad byte, as Go)", () => {
    mkdirSync(netDir(), { recursive: true });
    // "a" + E2 82 41 + CR LF + "eth0": Go reads two U+FFFD and an "A"
    writeFileSync(
      join(netDir(), "10.7.0.9"),
      Buffer.from([0x61, 0xe2, 0x82, 0x41, 0x0d, 0x0a, 0x65, 0x74, 0x68, 0x30]),
    );
    const cli = spawnSync(LOCAL_IPAM, ["leases", "--data-dir", join(dir, "data"), "--json"], {
      env: {},
      encoding: "utf8",
    });
    expect(JSON.parse(cli.stdout).leases[0].containerId).toBe("a\ufffd\ufffdA");
    const viaNode = plugin({ command: "CHECK", containerId: "x" }, conf());
    expect(viaNode.json.code).toBe(999); // not ours: the same answer from both
    expect(run(LOCAL_IPAM, { command: "CHECK", containerId: "x" }, conf()).json).toEqual(viaNode.json);
  });
  it("on exclude lists (the native v4Intervals against its reference): every address ADD hands out, in order", () => {
    // random lists around a /26: addresses, CIDRs, near-misses and IPv6 entries; ADD until the range is full,
    // so the sequence of addresses is the complement of what each side excluded
    let x = 12345;
    const r = (n: number) => {
      x = (x * 1103515245 + 12345) % 2 ** 31;
      return x % n;
    };
    const entry = (): string => {
      const n = r(80);
      const prefix = 32 - r(5);
      const base = `10.8.0.${n - (r(3) === 0 ? 0 : n % 2 ** (32 - prefix))}`;
      switch (r(12)) {
        case 0:
          return `fd00::${r(100)}`;
        case 1:
          return `${base}/${prefix}`.replace(".", r(2) ? "." : ".0"); // a leading zero, now and then
        default:
          return r(3) === 0 ? `${base}/${prefix}` : base;
      }
    };
    for (let list = 0; list < 12; list++) {
      const exclude = Array.from({ length: 5 + r(30) }, entry);
      const seen: string[][] = [];
      for (const side of ["native", "in-process"]) {
        removeDir(join(dir, "data"));
        const c = ipamConfig(join(dir, "data"), {
          ranges: [[{ subnet: "10.8.0.0/26" }], [{ subnet: "fd00::/120" }]],
          exclude,
        });
        const out: string[] = [];
        for (let i = 0; i < 70; i++) {
          const inv = { command: "ADD", containerId: `c${i}` };
          const o = side === "native" ? run(LOCAL_IPAM, inv, c) : plugin(inv, c);
          out.push(o.status === 0 ? o.json.ips.map((ip: { address: string }) => ip.address).join(" ") : o.json.msg);
          if (o.status !== 0) break;
        }
        seen.push(out);
      }
      expect(seen[0], JSON.stringify(exclude)).toEqual(seen[1]);
    }
  });
});
