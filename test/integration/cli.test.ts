// The operator CLI in the same binary: leases, usage, release and metrics on prepared data dirs, including
// host-local-written and legacy leases, IPv6, empty and missing networks; release racing with ADDs; the metrics
// checked by a real parser of the Prometheus text format.
import { spawnSync } from "node:child_process";
import {
  chmodSync,
  existsSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  statSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import parsePrometheusTextFormat from "parse-prometheus-text-format";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { HOST_LOCAL, ipamConfig, LOCAL_IPAM, pool, removeDir, run, runAsync, tempDir } from "../helpers.js";

let dir: string;
beforeEach(() => {
  dir = tempDir();
});
afterEach(() => removeDir(dir));

/** Fisher-Yates with a fixed seed: the same interleaving on every run and every machine. */
function seededShuffle<T>(items: T[], seed: number): T[] {
  const out = items.slice();
  for (let i = out.length - 1; i > 0; i--) {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    const j = seed % (i + 1);
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

function cli(...args: string[]): { status: number | null; stdout: string; stderr: string; json: any } {
  const r = spawnSync(LOCAL_IPAM, args, { encoding: "utf8", env: { PATH: process.env.PATH, COLUMNS: "100" } });
  let json: any;
  try {
    json = JSON.parse(r.stdout);
  } catch {
    json = undefined;
  }
  return { status: r.status, stdout: r.stdout, stderr: r.stderr, json };
}

const v4 = { ranges: [[{ subnet: "10.90.0.0/29" }]] }; // .2 - .6 usable, .1 gateway
const dual = { ranges: [[{ subnet: "10.90.0.0/29" }], [{ subnet: "fd00:90::/125" }]] };
const add = (id: string, ipam: object = dual, ifname = "eth0", bin = LOCAL_IPAM) =>
  run(bin, { command: "ADD", containerId: id, ifname }, ipamConfig(dir, ipam));
const btime = () => Number(/^btime (\d+)$/m.exec(readFileSync("/proc/stat", "utf8"))![1]);
function conflist(ipam: object = dual): string {
  const path = join(dir, "net.conflist");
  writeFileSync(
    path,
    JSON.stringify({
      cniVersion: "1.0.0",
      name: "testnet",
      plugins: [{ type: "bridge", ipam: { type: "local-ipam", dataDir: dir, ...ipam } }],
    }),
  );
  return path;
}

describe("help and errors", () => {
  it("prints help and the version", () => {
    expect(cli("--help")).toMatchObject({ status: 0 });
    expect(cli("--help").stdout).toContain("local-ipam release");
    for (const c of ["leases", "usage", "release", "metrics"])
      expect(cli(c, "--help").stdout).toContain(`local-ipam ${c}`);
    expect(cli("--version").stdout).toMatch(/^local-ipam \d+\.\d+\.\d+ \(\S+\)\n$/);
  });
  it("refuses unknown commands and flags with exit status 2", () => {
    expect(cli("frobnicate")).toMatchObject({ status: 2, stdout: "" });
    expect(cli("frobnicate").stderr).toContain('unknown command "frobnicate"');
    expect(cli("leases", "--frob").stderr).toContain("unknown flag --frob");
    expect(cli("leases", "--frob").status).toBe(2);
    expect(cli("release", "--network", "n", "--ip", "10.0.0.1", "--container", "c").status).toBe(2);
    expect(cli("release", "--network", "n").status).toBe(2);
    expect(cli("usage", "--warn", "lots").status).toBe(2);
    expect(cli("leases", "--json=yes").status).toBe(2);
  });
  it("is still the plugin when CNI_COMMAND is set, whatever the arguments", () => {
    const r = spawnSync(LOCAL_IPAM, ["leases"], { encoding: "utf8", env: { CNI_COMMAND: "VERSION" } });
    expect(JSON.parse(r.stdout).supportedVersions).toContain("1.1.0");
  });
});

describe("leases", () => {
  it("lists local-ipam's, host-local's and legacy leases, IPv6 included, with age and the boot flag", () => {
    expect(add("aaaa1111").status).toBe(0);
    expect(run(HOST_LOCAL, { command: "ADD", containerId: "hostlocal2" }, ipamConfig(dir, v4)).status).toBe(0);
    writeFileSync(join(dir, "testnet", "10.90.0.6"), "legacyid");
    spawnSync("touch", ["-d", `@${btime() - 100}`, join(dir, "testnet", "10.90.0.6")]);
    const r = cli("leases", "--data-dir", dir, "--json");
    expect(r.status).toBe(0);
    expect(r.json.leases.map((l: any) => [l.network, l.address, l.containerId, l.ifname, l.beforeBoot])).toEqual([
      ["testnet", "10.90.0.2", "aaaa1111", "eth0", false],
      ["testnet", "10.90.0.3", "hostlocal2", "eth0", false],
      ["testnet", "10.90.0.6", "legacyid", "", true],
      ["testnet", "fd00:90::2", "aaaa1111", "eth0", false],
    ]);
    const text = cli("leases", "--data-dir", dir).stdout;
    expect(text.split("\n")[0]).toMatch(/^NETWORK\s+ADDRESS\s+CONTAINER\s+IFNAME\s+AGE\s+BEFORE BOOT$/);
    expect(text).toMatch(/testnet\s+10\.90\.0\.6\s+legacyid\s+\(legacy\)\s+\S+\s+yes/);
    expect(text.split("\n").every((l) => l.length <= 100)).toBe(true);
  });
  it("handles empty and missing networks", () => {
    mkdirSync(join(dir, "empty"));
    writeFileSync(join(dir, "empty", "lock"), "");
    expect(cli("leases", "--data-dir", dir).stdout).toBe("no leases\n");
    expect(cli("leases", "--data-dir", dir, "--network", "nothere", "--json").json).toEqual({ leases: [] });
    expect(cli("leases", "--data-dir", join(dir, "nodir")).stdout).toBe("no networks found\n");
  });
});

describe("usage", () => {
  it("counts per range set from a conflist: total without gateways, used, free, reclaimable", () => {
    add("a");
    add("b");
    add("c");
    // one ADD's leases are hard links of one fsynced file: aging a's IPv4 lease ages its IPv6 lease too
    spawnSync("touch", ["-d", `@${btime() - 100}`, join(dir, "testnet", "10.90.0.2")]);
    const r = cli("usage", "--config", conflist(), "--json");
    expect(r.json.networks).toEqual([
      {
        network: "testnet",
        dataDir: dir,
        leases: 6,
        leasesBeforeBoot: 2,
        indexRebuilds: 1,
        rangeSets: [
          { index: 0, ranges: "10.90.0.1-10.90.0.6", total: 5, used: 3, free: 2, reclaimable: 1, cooling: 0 },
          { index: 1, ranges: "fd00:90::1-fd00:90::7", total: 6, used: 3, free: 3, reclaimable: 1, cooling: 0 },
        ],
      },
    ]);
    const text = cli("usage", "--config", conflist(), "--warn", "55").stdout;
    expect(text).toContain("WARNING: testnet range set 0 is 60.0% used (above 55%)");
    expect(text).not.toContain("range set 1 is");
    // 100 columns: the ranges column is cut to fit, the numbers never are
    expect(text).toMatch(/testnet\s+0\s+10\.90\.0\.1-\S*\s+5\s+3\s+2\s+1\s+0\s+\[#{12}\.{8}\] 60\.0%/);
    expect(text.split("\n").every((l) => l.length <= 100)).toBe(true);
    const big = cli("usage", "--config", conflist({ ranges: [[{ subnet: "fd00:91::/64" }]] }), "--json").json
      .networks[0].rangeSets[0];
    expect([big.total, big.free]).toEqual(["18446744073709551614", "18446744073709551614"]);
  });
  it("without a conflist reports what the files show", () => {
    add("a");
    expect(cli("usage", "--data-dir", dir).stdout).toBe(
      "testnet: 2 leases, 0 from before the boot (give --config for totals)\n",
    );
  });
});

describe("release", () => {
  it("frees one address, or a container's leases, printing what it removed; the plugin sees it at once", () => {
    add("a");
    add("b");
    add("b", dual, "net1");
    const one = cli("release", "--data-dir", dir, "--network", "testnet", "--ip", "10.90.0.2");
    expect(one).toMatchObject({ status: 0, stdout: "released 10.90.0.2 (container a, eth0)\n" });
    expect(run(LOCAL_IPAM, { command: "CHECK", containerId: "a" }, ipamConfig(dir, dual)).status).toBe(0); // a still has its IPv6
    const ambiguous = cli("release", "--data-dir", dir, "--network", "testnet", "--container", "b");
    expect(ambiguous.status).toBe(1);
    expect(ambiguous.stdout).toContain("container b has leases on eth0, net1: name one with --ifname");
    const dry = cli(
      "release",
      "--data-dir",
      dir,
      "--network",
      "testnet",
      "--container",
      "b",
      "--ifname",
      "net1",
      "--dry-run",
    );
    expect(dry.stdout).toBe(
      "would release 10.90.0.4 (container b, net1)\nwould release fd00:90::4 (container b, net1)\n",
    );
    expect(readdirSync(join(dir, "testnet"))).toContain("10.90.0.4");
    const done = cli("release", "--data-dir", dir, "--network", "testnet", "--container", "b", "--ifname", "net1");
    expect(done.stdout).toBe("released 10.90.0.4 (container b, net1)\nreleased fd00:90::4 (container b, net1)\n");
    expect(run(LOCAL_IPAM, { command: "CHECK", containerId: "b", ifname: "net1" }, ipamConfig(dir, dual)).status).toBe(
      1,
    );
    expect(run(LOCAL_IPAM, { command: "ADD", containerId: "c" }, ipamConfig(dir, dual)).json.ips[0].address).toBe(
      "10.90.0.5/29",
    );
  });
  it("says so when nothing matches or the network does not exist", () => {
    add("a");
    expect(cli("release", "--data-dir", dir, "--network", "testnet", "--ip", "10.90.0.5")).toMatchObject({ status: 1 });
    expect(cli("release", "--data-dir", dir, "--network", "nope", "--container", "a").stdout).toContain(
      'no network "nope"',
    );
  });
  it("races with ADDs without losing or doubling a lease", async () => {
    const c = ipamConfig(dir, { subnet: "10.91.0.0/24" });
    for (let i = 0; i < 40; i++) expect(run(LOCAL_IPAM, { command: "ADD", containerId: `old${i}` }, c).status).toBe(0);
    const adds = Array.from(
      { length: 60 },
      (_, i) => () => runAsync(LOCAL_IPAM, { command: "ADD", containerId: `new${i}` }, c),
    );
    const releases = Array.from(
      { length: 40 },
      (_, i) => () =>
        new Promise<{ status: number | null }>((res) =>
          res(cli("release", "--data-dir", dir, "--network", "testnet", "--container", `old${i}`)),
        ),
    );
    const results = await pool(8, seededShuffle([...adds, ...releases], 42));
    expect(results.every((r) => r.status === 0)).toBe(true);
    const files = readdirSync(join(dir, "testnet")).filter((f) => f.startsWith("10."));
    const owners = files.map((f) => readFileSync(join(dir, "testnet", f), "latin1"));
    expect(owners.sort()).toEqual(Array.from({ length: 60 }, (_, i) => `new${i}\r\neth0`).sort());
  });
});

describe("gc", () => {
  const age = (name: string, seconds: number) => {
    const t = Date.now() / 1000 - seconds;
    utimesSync(join(dir, "testnet", name), t, t);
  };
  it("releases the stale attachments' leases, both families and legacy ones, and nothing else", () => {
    add("live");
    add("gone");
    add("gone", dual, "net1");
    writeFileSync(join(dir, "testnet", "10.90.0.6"), "legacy"); // a host-local lease from before ifnames
    const conf = conflist();
    const dry = cli("gc", "--config", conf, "--stale", "gone/eth0", "--stale", "legacy", "--dry-run");
    expect(dry).toMatchObject({ status: 0 });
    expect(dry.stdout.split("\n").filter(Boolean).sort()).toEqual([
      "would release 10.90.0.3 (container gone, eth0)",
      "would release 10.90.0.6 (container legacy)",
      "would release fd00:90::3 (container gone, eth0)",
    ]);
    expect(readdirSync(join(dir, "testnet"))).toContain("10.90.0.3");
    const done = cli("gc", "--config", conf, "--stale", "gone/eth0", "--stale", "legacy", "--json");
    expect(done.status).toBe(0);
    expect(done.json.released.map((r: { address: string }) => r.address).sort()).toEqual([
      "10.90.0.3",
      "10.90.0.6",
      "fd00:90::3",
    ]);
    const left = readdirSync(join(dir, "testnet")).filter((f) => f.includes(".") || f.includes(":"));
    expect(left.filter((f) => !f.startsWith("last_reserved")).sort()).toEqual([
      "10.90.0.2",
      "10.90.0.4",
      "fd00:90::2",
      "fd00:90::4",
    ]);
    // the plugin's own view agrees: the released addresses are free again, the others still held
    expect(
      run(LOCAL_IPAM, { command: "CHECK", containerId: "gone", ifname: "net1" }, ipamConfig(dir, dual)).status,
    ).toBe(0);
    expect(run(LOCAL_IPAM, { command: "CHECK", containerId: "gone" }, ipamConfig(dir, dual)).status).toBe(1);
    expect(cli("gc", "--config", conf, "--stale", "nobody/eth0").stdout).toBe("nothing to release in testnet\n");
  });
  it("keeps a lease younger than --min-age: an attachment being added again right now keeps its address", () => {
    add("a", v4);
    add("b", v4);
    age("10.90.0.2", 3600);
    const r = cli(
      "gc",
      "--config",
      conflist(v4),
      "--stale",
      "a/eth0",
      "--stale",
      "b/eth0",
      "--min-age",
      "10m",
      "--json",
    );
    expect(r.json.released.map((x: { address: string }) => x.address)).toEqual(["10.90.0.2"]);
    expect(readdirSync(join(dir, "testnet"))).toContain("10.90.0.3");
  });
  it("refuses what it cannot mean, with exit status 2", () => {
    const conf = conflist();
    for (const args of [
      ["gc", "--stale", "a/eth0"],
      ["gc", "--config", conf, "--stale", "a/"],
      ["gc", "--config", conf, "--stale", "/eth0"],
      ["gc", "--config", conf, "--min-age", "soon"],
      ["gc", "--config", conf, "--min-age", "-1s"],
    ])
      expect(cli(...args).status, args.join(" ")).toBe(2);
  });
});

describe("metrics", () => {
  it("writes a textfile that a Prometheus text-format parser reads back", () => {
    add("a");
    add("b");
    spawnSync("touch", ["-d", `@${btime() - 100}`, join(dir, "testnet", "10.90.0.3")]);
    const textfile = join(dir, "local_ipam.prom");
    expect(cli("metrics", "--config", conflist(), "--textfile", textfile)).toMatchObject({ status: 0, stdout: "" });
    const families = parsePrometheusTextFormat(readFileSync(textfile, "utf8"));
    const family = (name: string) => families.find((f) => f.name === name)!;
    expect(family("local_ipam_leases")).toMatchObject({
      type: "GAUGE",
      metrics: [{ labels: { network: "testnet" }, value: "4" }],
    });
    expect(family("local_ipam_leases_before_boot").metrics[0]!.value).toBe("2"); // b's two hard-linked leases
    expect(family("local_ipam_index_rebuilds_total")).toMatchObject({ type: "COUNTER", metrics: [{ value: "1" }] });
    const addr = Object.fromEntries(
      family("local_ipam_addresses").metrics.map((m: any) => [`${m.labels.range_set}/${m.labels.state}`, m.value]),
    );
    expect(addr).toEqual({
      "0/total": "5",
      "0/used": "2",
      "0/free": "3",
      "0/reclaimable": "1",
      "0/cooling": "0",
      "1/total": "6",
      "1/used": "2",
      "1/free": "4",
      "1/reclaimable": "1",
      "1/cooling": "0",
    });
    expect(readdirSync(dir).filter((f) => f.includes("tmp"))).toEqual([]);
  });
  it("prints to stdout for every network under the data dir", () => {
    add("a");
    const r = cli("metrics", "--data-dir", dir);
    expect(r.status).toBe(0);
    const families = parsePrometheusTextFormat(r.stdout);
    expect(families.find((f) => f.name === "local_ipam_leases")!.metrics[0]).toMatchObject({
      labels: { network: "testnet" },
      value: "2",
    });
    expect(existsSync(join(dir, "local_ipam.prom"))).toBe(false);
  });
});

describe("the plugin's discipline", () => {
  it("--network is checked as the plugin checks network names: no .., no /", () => {
    for (const bad of ["..", "../etc", "a/b", ".hidden", "x y"]) {
      for (const cmd of [["leases"], ["usage"], ["metrics"], ["release", "--ip", "10.0.0.1"]]) {
        const r = cli(...cmd, "--data-dir", dir, "--network", bad);
        expect(r.status, `${cmd[0]} --network ${bad}`).toBe(2);
        expect(r.stderr).toContain(`--network: ${JSON.stringify(bad)} is not a valid network name`);
      }
    }
  });
  it("prints what it read from disk with control characters escaped", () => {
    add("a", v4);
    // a lease written by someone else, whose interface name would clear the screen and set the title
    writeFileSync(join(dir, "testnet", "10.90.0.6"), "evil\r\n\u001b[2J\u001b]0;pwned\u0007\u009b");
    const r = cli("leases", "--data-dir", dir);
    expect(r.stdout).not.toMatch(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/);
    expect(r.stdout).toContain("\\x1b[2J\\x1b]0;pwned\\x07\\x9b");
    const rel = cli("release", "--data-dir", dir, "--network", "testnet", "--ip", "10.90.0.6", "--dry-run");
    expect(rel.stdout).toBe("would release 10.90.0.6 (container evil, \\x1b[2J\\x1b]0;pwned\\x07\\x9b)\n");
  });
  it("writes --textfile only into a directory nobody else can change, never through a symlink", () => {
    add("a");
    const open = join(dir, "open");
    mkdirSync(open, { mode: 0o777 });
    chmodSync(open, 0o1777); // like /tmp
    const r = cli("metrics", "--data-dir", dir, "--textfile", join(open, "x.prom"));
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(`refusing to use ${open}: writable by group (mode 1777)`);
    expect(readdirSync(open)).toEqual([]);
    const safe = join(dir, "safe");
    mkdirSync(safe, { mode: 0o755 });
    const victim = join(dir, "victim");
    writeFileSync(victim, "precious");
    symlinkSync(victim, join(safe, "x.prom"));
    expect(cli("metrics", "--data-dir", dir, "--textfile", join(safe, "x.prom")).status).toBe(0);
    expect(readFileSync(victim, "utf8")).toBe("precious");
    expect(lstatSync(join(safe, "x.prom")).isFile()).toBe(true);
    expect(statSync(join(safe, "x.prom")).mode & 0o777).toBe(0o644);
    expect(readdirSync(safe)).toEqual(["x.prom"]);
  });
});
