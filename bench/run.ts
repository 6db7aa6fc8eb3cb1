// npm run bench: local-ipam against /usr/lib/cni/host-local, side by side in one run, medians over many runs,
// reported as ratios (local-ipam / host-local). Writes docs/benchmarks.md and docs/add-latency.svg.
// Single invocations are timed with hyperfine (shell start-up subtracted); parallel load with a Node driver.
import { execFileSync, spawn, spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { cpus, release, totalmem } from "node:os";
import { join, resolve } from "node:path";

const ROOT = resolve(__dirname, "..");
const PLUGINS = { "local-ipam": join(ROOT, "dist", "local-ipam"), "host-local": "/usr/lib/cni/host-local" } as const;
type Plugin = keyof typeof PLUGINS;
const NAMES = Object.keys(PLUGINS) as Plugin[];
const work = mkdtempSync("/tmp/local-ipam-bench-");
const QUICK = process.env.BENCH_QUICK === "1"; // fewer runs, for trying the harness

function config(plugin: Plugin, label: string, subnet: string): string {
  const path = join(work, `${plugin}-${label}.json`);
  writeFileSync(
    path,
    JSON.stringify({
      cniVersion: "1.0.0",
      name: "bench",
      ipam: { type: plugin, subnet, dataDir: join(work, plugin, label) },
    }),
  );
  return path;
}

/** Lease files in host-local's format: ctrN\r\neth0, from the second address of the subnet on. */
function seed(plugin: Plugin, label: string, base: number, count: number): void {
  const dir = join(work, plugin, label, "bench");
  mkdirSync(dir, { recursive: true });
  for (let i = 0; i < count; i++) {
    const n = base + 2 + i;
    writeFileSync(join(dir, `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`), `seed${i}\r\neth0`);
  }
}

const env = (command: string, id = "bench1") =>
  `CNI_COMMAND=${command} CNI_CONTAINERID=${id} CNI_NETNS=/var/run/netns/bench CNI_IFNAME=eth0 CNI_PATH=/opt/cni/bin`;

/** Median milliseconds of `command` (a shell line), with `prepare` run before each timed run. */
function hyperfine(command: string, prepare: string | null, runs: number): number {
  const out = join(work, "hf.json");
  const args = ["--style", "none", "--warmup", "3", "--runs", String(runs), "--export-json", out];
  if (prepare) args.push("--prepare", prepare);
  execFileSync("hyperfine", [...args, command], { stdio: ["ignore", "ignore", "inherit"] });
  return JSON.parse(readFileSync(out, "utf8")).results[0].median * 1000;
}

function run(plugin: Plugin, cfg: string, command: string, id = "bench1"): void {
  spawnSync("sh", ["-c", `${env(command, id)} ${PLUGINS[plugin]} < ${cfg} > /dev/null`]);
}

const rows: { what: string; li: string; hl: string; ratio: string; target: string }[] = [];
const fmt = (ms: number) => `${ms.toFixed(2)} ms`;
function row(what: string, li: number, hl: number, target: string, unit = fmt): number {
  const ratio = li / hl;
  rows.push({ what, li: unit(li), hl: unit(hl), ratio: ratio.toFixed(3), target });
  console.log(`${what}: local-ipam ${unit(li)}, host-local ${unit(hl)}, ratio ${ratio.toFixed(3)} (target ${target})`);
  return ratio;
}

// (1) ADD then DEL of one container on a /24 holding 50 leases
{
  const times: Record<Plugin, number> = { "local-ipam": 0, "host-local": 0 };
  for (const p of NAMES) {
    seed(p, "s24", 0x0a320000, 50);
    const cfg = config(p, "s24", "10.50.0.0/24");
    times[p] = hyperfine(
      `${env("ADD")} ${PLUGINS[p]} < ${cfg} && ${env("DEL")} ${PLUGINS[p]} < ${cfg}`,
      null,
      QUICK ? 20 : 200,
    );
  }
  row("1. ADD+DEL, /24 with 50 leases", times["local-ipam"], times["host-local"], "<= 2.0");
}

// (2) ADD, CHECK, DEL on a /16 holding 60,000 leases
{
  const t: Record<string, Record<Plugin, number>> = { ADD: {} as never, CHECK: {} as never, DEL: {} as never };
  for (const p of NAMES) {
    seed(p, "s16", 0x0a330000, 60000);
    const cfg = config(p, "s16", "10.51.0.0/16");
    const bin = PLUGINS[p];
    const runs = QUICK ? 5 : 25;
    run(p, cfg, "CHECK"); // local-ipam builds its index on its first call, as it would on a node switching over
    t.ADD![p] = hyperfine(`${env("ADD")} ${bin} < ${cfg}`, `${env("DEL")} ${bin} < ${cfg}`, runs);
    run(p, cfg, "ADD");
    t.CHECK![p] = hyperfine(`${env("CHECK")} ${bin} < ${cfg}`, null, runs);
    run(p, cfg, "DEL"); // each timed DEL is prepared by an ADD
    t.DEL![p] = hyperfine(`${env("DEL")} ${bin} < ${cfg}`, `${env("ADD")} ${bin} < ${cfg}`, runs);
  }
  for (const op of ["ADD", "CHECK", "DEL"])
    row(`2. ${op}, /16 with 60,000 leases`, t[op]!["local-ipam"], t[op]!["host-local"], "<= 0.1");
}

// (3) 200 ADDs from 8 parallel workers on a /16: wall time, and the 200 addresses must be distinct
async function parallel(p: Plugin): Promise<{ ms: number; distinct: number; failed: string[] }> {
  const cfg = JSON.stringify({
    cniVersion: "1.0.0",
    name: "bench",
    ipam: { type: p, subnet: "10.52.0.0/16", dataDir: join(work, p, "par") },
  });
  const addrs: string[] = [];
  const failed: string[] = [];
  let next = 0;
  const start = performance.now();
  const worker = async () => {
    while (next < 200) {
      const i = next++;
      const out = await new Promise<string>((res) => {
        const c = spawn(PLUGINS[p], [], {
          env: { CNI_COMMAND: "ADD", CNI_CONTAINERID: `par${i}`, CNI_NETNS: "/x", CNI_IFNAME: "eth0", CNI_PATH: "/x" },
        });
        let s = "";
        c.stdout.on("data", (d) => (s += d));
        c.on("close", () => res(s));
        c.stdin.end(cfg);
      });
      try {
        addrs.push(JSON.parse(out).ips[0].address);
      } catch {
        failed.push(out.replace(/\s+/g, " "));
      }
    }
  };
  await Promise.all(Array.from({ length: 8 }, worker));
  return { ms: performance.now() - start, distinct: new Set(addrs).size, failed };
}

async function main(): Promise<void> {
  const par: Record<Plugin, { ms: number; distinct: number; failed: string[] }> = {} as never;
  for (const p of NAMES) {
    par[p] = await parallel(p);
    if (par[p].failed.length) console.log(`3. ${p}: ${par[p].failed.length} ADDs failed, first: ${par[p].failed[0]}`);
  }
  row("3. 200 ADDs, 8 parallel workers, /16 (wall)", par["local-ipam"].ms, par["host-local"].ms, "<= 1.5");
  rows.push({
    what: "3. distinct addresses of 200 (failed ADDs)",
    li: `${par["local-ipam"].distinct} (${par["local-ipam"].failed.length})`,
    hl: `${par["host-local"].distinct} (${par["host-local"].failed.length})`,
    ratio: "",
    target: "200 (0)",
  });

  // (4) ADD latency at 0, 1,000, 10,000 and 60,000 leases
  const sizes = [0, 1000, 10000, 60000];
  const latency: Record<Plugin, number[]> = { "local-ipam": [], "host-local": [] };
  for (const size of sizes)
    for (const p of NAMES) {
      const label = `lat${size}`;
      seed(p, label, 0x0a350000, size);
      const cfg = config(p, label, "10.53.0.0/16");
      run(p, cfg, "CHECK");
      const runs = QUICK ? 5 : size >= 10000 ? 25 : 60;
      latency[p].push(hyperfine(`${env("ADD")} ${PLUGINS[p]} < ${cfg}`, `${env("DEL")} ${PLUGINS[p]} < ${cfg}`, runs));
      rmSync(join(work, p, label), { recursive: true, force: true });
    }
  sizes.forEach((s, i) => {
    row(`4. ADD at ${s.toLocaleString("en")} leases`, latency["local-ipam"][i]!, latency["host-local"][i]!, "");
  });
  const flat = latency["local-ipam"][3]! / latency["local-ipam"][0]!;
  rows.push({ what: "4. local-ipam ADD at 60,000 / at 0", li: flat.toFixed(3), hl: "", ratio: "", target: "<= 1.5" });
  console.log(`4. local-ipam ADD at 60,000 / at 0 leases: ${flat.toFixed(3)} (target <= 1.5)`);

  // (5) peak RSS of one ADD on the /16 with 60,000 leases, and binary size
  const rss: Record<Plugin, number> = {} as never;
  for (const p of NAMES) {
    const cfg = join(work, `${p}-s16.json`);
    run(p, cfg, "DEL", "rss");
    const py = `import os,sys,subprocess\np=subprocess.Popen(sys.argv[1:],stdin=open(${JSON.stringify(cfg)}),stdout=subprocess.DEVNULL)\n_,_,ru=os.wait4(p.pid,0)\nprint(ru.ru_maxrss)`;
    rss[p] = Number(
      execFileSync("python3", ["-c", py, PLUGINS[p]], {
        env: { CNI_COMMAND: "ADD", CNI_CONTAINERID: "rss", CNI_NETNS: "/x", CNI_IFNAME: "eth0", CNI_PATH: "/x" },
      }).toString(),
    );
  }
  row(
    "5. peak RSS, ADD at 60,000 leases",
    rss["local-ipam"] / 1024,
    rss["host-local"] / 1024,
    "",
    (v) => `${v.toFixed(1)} MiB`,
  );
  const size = (p: Plugin) => statSync(PLUGINS[p]).size / 1048576;
  row("5. binary size", size("local-ipam"), size("host-local"), "", (v) => `${v.toFixed(1)} MiB`);

  writeReport(sizes, latency);
  rmSync(work, { recursive: true, force: true });
}

function machine(): string {
  const cpu = cpus()[0]?.model ?? "unknown CPU";
  const hf = execFileSync("hyperfine", ["--version"]).toString().trim();
  const bun = execFileSync(join(ROOT, "node_modules", ".bin", "bun"), ["--version"])
    .toString()
    .trim();
  return `${cpus().length} x ${cpu}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Linux ${release()}; ${hf}; bun ${bun}; host-local from Debian's containernetworking-plugins`;
}

function writeReport(sizes: number[], latency: Record<Plugin, number[]>): void {
  mkdirSync(join(ROOT, "docs"), { recursive: true });
  writeFileSync(join(ROOT, "docs", "add-latency.svg"), chart(sizes, latency));
  const table = [
    "| benchmark | local-ipam | host-local | ratio | target |",
    "|---|---|---|---|---|",
    ...rows.map((r) => `| ${r.what} | ${r.li} | ${r.hl} | ${r.ratio} | ${r.target} |`),
  ].join("\n");
  const md = `# Benchmarks

Produced by \`npm run bench\` (bench/run.ts) on ${new Date().toISOString().slice(0, 10)}: local-ipam against
/usr/lib/cni/host-local in the same run, medians of many runs (hyperfine, shell start-up subtracted), ratios are
local-ipam / host-local. Machine: ${machine()}. These machines are small and noisy: compare ratios, not times.

${table}

![ADD latency against lease count](add-latency.svg)
`;
  writeFileSync(join(ROOT, "docs", "benchmarks.md"), md);
  console.log(`\n${table}\n\nwritten: docs/benchmarks.md, docs/add-latency.svg`);
}

/** A small line chart: ADD latency (ms, log scale) against lease count, one line per plugin. */
function chart(sizes: number[], latency: Record<Plugin, number[]>): string {
  const W = 640,
    H = 360,
    L = 70,
    R = 20,
    T = 40,
    B = 60;
  const all = NAMES.flatMap((p) => latency[p]);
  const lo = Math.log10(Math.min(...all) / 1.5),
    hi = Math.log10(Math.max(...all) * 1.5);
  const x = (i: number) => L + (i * (W - L - R)) / (sizes.length - 1);
  const y = (ms: number) => T + ((hi - Math.log10(ms)) * (H - T - B)) / (hi - lo);
  const colors: Record<Plugin, string> = { "local-ipam": "#1f77b4", "host-local": "#d62728" };
  const ticks = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000].filter(
    (v) => Math.log10(v) >= lo && Math.log10(v) <= hi,
  );
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2}" y="22" text-anchor="middle" font-size="14">ADD latency (median, ms, log scale) against leases in the network</text>`,
    ...ticks.map(
      (v) =>
        `<line x1="${L}" x2="${W - R}" y1="${y(v)}" y2="${y(v)}" stroke="#ddd"/><text x="${L - 8}" y="${y(v) + 4}" text-anchor="end">${v}</text>`,
    ),
    ...sizes.map((s, i) => `<text x="${x(i)}" y="${H - B + 20}" text-anchor="middle">${s.toLocaleString("en")}</text>`),
    `<text x="${W / 2}" y="${H - 18}" text-anchor="middle">leases</text>`,
    ...NAMES.map((p, k) => {
      const pts = latency[p].map((ms, i) => `${x(i).toFixed(1)},${y(ms).toFixed(1)}`).join(" ");
      const dots = latency[p]
        .map(
          (ms, i) =>
            `<circle cx="${x(i)}" cy="${y(ms)}" r="3.5" fill="${colors[p]}"><title>${p}: ${ms.toFixed(1)} ms</title></circle>`,
        )
        .join("");
      return `<polyline points="${pts}" fill="none" stroke="${colors[p]}" stroke-width="2"/>${dots}<text x="${L + 10}" y="${T + 16 + 16 * k}" fill="${colors[p]}">${p}</text>`;
    }),
    "</svg>",
  ];
  return parts.join("\n");
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
