// `local-ipam install` and `local-ipam migrate`, as a DaemonSet and an operator use them on a node.
import { spawn, spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { FAULTS_BIN, HOST_LOCAL, LOCAL_IPAM, removeDir, run, tempDir } from "../helpers.js";

let dir: string;
let bin: string;
let conf: string;
beforeEach(() => {
  dir = tempDir();
  bin = join(dir, "bin");
  conf = join(dir, "net.d");
  mkdirSync(bin, { mode: 0o755 });
  mkdirSync(conf, { mode: 0o755 });
});
afterEach(() => removeDir(dir));

const cli = (exe: string, ...args: string[]) =>
  spawnSync(exe, args, { env: { PATH: process.env.PATH }, encoding: "utf8" });
const noTemp = (d: string) => expect(readdirSync(d).filter((n) => n.startsWith(".local-ipam-tmp."))).toEqual([]);

const installDualStack = () =>
  cli(
    LOCAL_IPAM,
    "install",
    "--bin-dir",
    bin,
    "--conf-dir",
    conf,
    "--pod-cidr",
    "10.244.1.0/24",
    "--pod-cidr",
    "fd00:10:244:1::/64",
  );

describe("install", () => {
  it("puts this binary and a conflist for the pod CIDRs in place, then changes nothing when run again", () => {
    const r = installDualStack();
    expect(r.stderr).toBe("");
    expect(r.stdout).toMatch(
      new RegExp(`^installed ${bin}/local-ipam \\(\\d+ bytes\\)\\nwrote ${conf}/10-local-ipam.conflist\\n$`),
    );
    expect(readFileSync(join(bin, "local-ipam")).equals(readFileSync(LOCAL_IPAM))).toBe(true);
    expect(statSync(join(bin, "local-ipam")).mode & 0o777).toBe(0o755);
    const list = JSON.parse(readFileSync(join(conf, "10-local-ipam.conflist"), "utf8"));
    expect(list.plugins[0].ipam).toEqual({
      type: "local-ipam",
      ranges: [[{ subnet: "10.244.1.0/24" }], [{ subnet: "fd00:10:244:1::/64" }]],
      routes: [{ dst: "0.0.0.0/0" }, { dst: "::/0" }],
    });
    noTemp(bin);
    noTemp(conf);
    const mtimes = [statSync(join(bin, "local-ipam")).mtimeMs, statSync(join(conf, "10-local-ipam.conflist")).mtimeMs];
    const again = installDualStack();
    expect(again.stdout).toMatch(/^unchanged .*local-ipam \(\d+ bytes\)\nunchanged .*10-local-ipam.conflist\n$/);
    expect([statSync(join(bin, "local-ipam")).mtimeMs, statSync(join(conf, "10-local-ipam.conflist")).mtimeMs]).toEqual(
      mtimes,
    );
    // a new pod CIDR rewrites the conflist, not the binary
    const moved = cli(LOCAL_IPAM, "install", "--bin-dir", bin, "--conf-dir", conf, "--pod-cidr", "10.244.2.0/24");
    expect(moved.stdout).toMatch(/^unchanged .*\nwrote .*\n$/);
    expect(JSON.parse(readFileSync(join(conf, "10-local-ipam.conflist"), "utf8")).plugins[0].ipam.routes).toEqual([
      { dst: "0.0.0.0/0" },
    ]);
  });
  it("fills a template's placeholders, and the installed plugin serves the conflist it wrote", () => {
    const template = join(dir, "template.conflist");
    writeFileSync(
      template,
      JSON.stringify({
        cniVersion: "1.0.0",
        name: "tmpl",
        plugins: [
          {
            type: "local-ipam",
            ipam: {
              type: "local-ipam",
              dataDir: join(dir, "data"),
              ranges: "{{ranges}}",
              routes: [{ dst: "{{podCIDRv4}}" }],
            },
          },
        ],
      }),
    );
    const r = cli(
      LOCAL_IPAM,
      "install",
      "--bin-dir",
      bin,
      "--conf-dir",
      conf,
      "--conflist",
      template,
      "--conf-name",
      "20-tmpl.conflist",
      "--pod-cidr",
      "10.9.0.0/24",
    );
    expect(r.status).toBe(0);
    const list = JSON.parse(readFileSync(join(conf, "20-tmpl.conflist"), "utf8"));
    const add = run(
      join(bin, "local-ipam"),
      { command: "ADD" },
      { ...list.plugins[0], name: list.name, cniVersion: list.cniVersion },
    );
    expect(add.json.ips[0].address).toBe("10.9.0.2/24");
    expect(add.json.routes).toEqual([{ dst: "10.9.0.0/24" }]);
  });
  it("without --bin-dir writes the conflist only (the agent's update when pod CIDRs change); with neither, refuses", () => {
    const r = cli(LOCAL_IPAM, "install", "--conf-dir", conf, "--pod-cidr", "10.9.0.0/24");
    expect(r.stdout).toBe(`wrote ${conf}/10-local-ipam.conflist\n`);
    expect(readdirSync(bin)).toEqual([]);
    const neither = cli(LOCAL_IPAM, "install", "--pod-cidr", "10.9.0.0/24");
    expect(neither.status).toBe(2);
    expect(neither.stderr).toContain("install needs --bin-dir, --conf-dir or both");
  });
  it("refuses a template that cannot work, an unsafe directory, bad pod CIDRs, and then writes nothing", () => {
    const bad = join(dir, "bad.conflist");
    writeFileSync(
      bad,
      JSON.stringify({
        cniVersion: "1.0.0",
        name: "x",
        plugins: [
          {
            type: "bridge",
            ipam: { type: "local-ipam", ranges: [[{ subnet: "{{podCIDR}}", rangeStart: "10.0.0.1" }]] },
          },
        ],
      }),
    );
    const cases: [string[], RegExp][] = [
      [
        ["--conflist", bad, "--pod-cidr", "10.9.0.0/24"],
        /local-ipam block does not load: invalid range set 0: RangeStart 10.0.0.1 not in network/,
      ],
      [["--pod-cidr", "10.9.0.5/24"], /--pod-cidr: 10.9.0.5\/24 has host bits set/],
      [["--pod-cidr", "10.9.0.0/24", "--pod-cidr", "10.8.0.0/24"], /two IPv4 CIDRs/],
      [[], /--conf-dir needs at least one --pod-cidr/],
      [["--pod-cidr", "fd00::/64", "--conflist", join(dir, "nope")], /--conflist: cannot read/],
    ];
    for (const [args, msg] of cases) {
      const r = cli(LOCAL_IPAM, "install", "--bin-dir", bin, "--conf-dir", conf, ...args);
      expect(r.status, args.join(" ")).toBe(2);
      expect(r.stderr).toMatch(msg);
    }
    chmodSync(conf, 0o777);
    const unsafe = cli(LOCAL_IPAM, "install", "--bin-dir", bin, "--conf-dir", conf, "--pod-cidr", "10.9.0.0/24");
    expect(unsafe.status).toBe(1);
    expect(unsafe.stderr).toContain(`refusing to use ${conf}: writable by group (mode 0777)`);
    expect(readdirSync(conf)).toEqual([]);
  });
  it("replaces the binary atomically: a loop executing it while it is reinstalled 50 times never fails", async () => {
    expect(cli(LOCAL_IPAM, "install", "--bin-dir", bin).status).toBe(0);
    // a runtime's view: execute <bin>/local-ipam again and again until told to stop; count runs and failures
    const stop = join(dir, "stop");
    const loop = spawn(
      "bash",
      [
        "-c",
        'runs=0; bad=0; until [ -e "$2" ]; do out=$(CNI_COMMAND=VERSION "$1/local-ipam" 2>&1) || bad=$((bad+1)); case $out in *supportedVersions*) ;; *) bad=$((bad+1));; esac; runs=$((runs+1)); [ $runs = 1 ] && : > "$3"; done; echo "$runs $bad"',
        "loop",
        bin,
        stop,
        join(dir, "looping"),
      ],
      { stdio: ["ignore", "pipe", "inherit"] },
    );
    let report = "";
    loop.stdout.on("data", (d) => (report += d));
    const done = new Promise((r) => loop.on("close", r));
    // the installs begin once the loop is executing the binary, and the loop ends only after the last install
    while (!existsSync(join(dir, "looping"))) await new Promise((r) => setTimeout(r, 5));
    // two builds with different bytes, installed in turn: every install really replaces the file
    for (let i = 0; i < 50; i++) {
      const r = cli(i % 2 ? LOCAL_IPAM : FAULTS_BIN, "install", "--bin-dir", bin);
      expect(r.stdout, r.stderr).toMatch(/^installed /);
    }
    writeFileSync(stop, "");
    await done;
    const [runs, failures] = report.trim().split(" ").map(Number);
    console.log(`atomic install: ${runs} executions during 50 reinstalls, ${failures} failures`);
    expect(runs).toBeGreaterThan(0);
    expect(failures).toBe(0);
    noTemp(bin);
  });
});

describe("migrate", () => {
  const hostLocalList = (data: string) =>
    `{\n  "cniVersion": "1.0.0",\n  "name": "mig",\n  "plugins": [\n    {\n      "type": "bridge",\n      "bridge": "lipammig0",\n      "ipam": {\n        "type"  :  "host-local",\n        "dataDir": "${data}",\n        "ranges": [[{ "subnet": "10.33.0.0/24" }]]\n      }\n    }\n  ]\n}\n`;
  it("switches host-local to local-ipam in place, printing the diff, and back; the leases stay valid", () => {
    const data = join(dir, "data");
    const original = hostLocalList(data);
    writeFileSync(join(conf, "10-mig.conflist"), original, { mode: 0o640 });
    writeFileSync(
      join(conf, "20-other.conflist"),
      JSON.stringify({ cniVersion: "1.0.0", name: "o", plugins: [{ type: "macvlan", ipam: { type: "dhcp" } }] }),
    );
    writeFileSync(join(conf, "30-broken.conf"), "{ not json");
    writeFileSync(join(conf, "README"), "host-local");
    // a pod leased by host-local before the switch
    const list = JSON.parse(original);
    const netconf = { ...list.plugins[0].ipam, name: "mig", cniVersion: "1.0.0" };
    expect(
      run(HOST_LOCAL, { command: "ADD", containerId: "before" }, { name: "mig", cniVersion: "1.0.0", ipam: netconf })
        .status,
    ).toBe(0);

    const dry = cli(LOCAL_IPAM, "migrate", "--conf-dir", conf, "--dry-run");
    const diff = `--- ${conf}/10-mig.conflist\n+++ ${conf}/10-mig.conflist\n@@ -9 +9 @@\n-        "type"  :  "host-local",\n+        "type"  :  "local-ipam",\n`;
    expect(dry.stdout).toBe(`${diff}# skipped ${conf}/30-broken.conf: not JSON (expected a string at offset 2)\n`);
    expect(readFileSync(join(conf, "10-mig.conflist"), "utf8")).toBe(original);

    expect(cli(LOCAL_IPAM, "migrate", "--conf-dir", conf).stdout).toContain(diff);
    const migrated = readFileSync(join(conf, "10-mig.conflist"), "utf8");
    expect(migrated).toBe(original.replace('"host-local"', '"local-ipam"'));
    expect(statSync(join(conf, "10-mig.conflist")).mode & 0o777).toBe(0o640);
    noTemp(conf);
    const after = JSON.parse(migrated).plugins[0].ipam;
    expect(
      run(LOCAL_IPAM, { command: "CHECK", containerId: "before" }, { name: "mig", cniVersion: "1.0.0", ipam: after })
        .status,
    ).toBe(0);
    expect(
      run(LOCAL_IPAM, { command: "ADD", containerId: "after" }, { name: "mig", cniVersion: "1.0.0", ipam: after }).json
        .ips[0].address,
    ).toBe("10.33.0.3/24");

    expect(cli(LOCAL_IPAM, "migrate", "--conf-dir", conf).stdout).toBe(
      `# skipped ${conf}/30-broken.conf: not JSON (expected a string at offset 2)`.concat("\n"),
    );
    cli(LOCAL_IPAM, "migrate", "--conf-dir", conf, "--to", "host-local");
    expect(readFileSync(join(conf, "10-mig.conflist"), "utf8")).toBe(original);
    expect(existsSync(join(conf, "README"))).toBe(true);
  });
});
