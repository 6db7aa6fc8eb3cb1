// npm run bench:agent: the node agent's memory and CPU over many GC cycles, against a fake CRI runtime (the real
// agent and plugin, dist/local-ipam-agent and dist/local-ipam). The DaemonSet lists every minute; here the agent
// lists every 100 ms, so AGENT_REST_MINUTES (default 10) of this run are 600 times as many cycles as a node does in
// that time. Every 50th cycle a leaked lease is planted, which the agent must release; /metrics is scraped every
// 5 s. Writes docs/agent-at-rest.md.
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { Writer } from "../src/cri/proto.js";
import { agentCommand } from "../test/agent-process.js";
import { FakeServer } from "../test/fake-cri.js";

const ROOT = resolve(__dirname, "..");
const MINUTES = Number(process.env.AGENT_REST_MINUTES ?? 10);
const INTERVAL_MS = 100;
const LIVE = 30;

const work = mkdtempSync("/tmp/local-ipam-agent-rest-");
const conf = join(work, "net.d");
const data = join(work, "data");
mkdirSync(conf, { mode: 0o755 });
mkdirSync(join(data, "restnet"), { recursive: true, mode: 0o755 });
writeFileSync(
  join(conf, "10-restnet.conflist"),
  JSON.stringify({
    cniVersion: "1.0.0",
    name: "restnet",
    plugins: [{ type: "bridge", ipam: { type: "local-ipam", dataDir: data, subnet: "10.250.0.0/16" } }],
  }),
);
const id = (i: number) => i.toString(16).padStart(64, "0");
const leaseFile = (n: number) => join(data, "restnet", `10.250.${n >> 8}.${n & 255}`);
for (let i = 0; i < LIVE; i++) writeFileSync(leaseFile(i + 2), `${id(i)}\r\neth0`);
const listing = new Writer()
  .repeatedMessage(
    1,
    Array.from({ length: LIVE }, (_, i) => id(i)),
    (w, s) => w.string(1, s).int(3, 0),
  )
  .finish();

interface Sample {
  minute: number;
  rssKiB: number;
  anonKiB: number;
  cpuSeconds: number;
  cycles: number;
  released: number;
}

function procStats(pid: number): { rssKiB: number; anonKiB: number; cpuSeconds: number } {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kib = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? 0);
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const ticks = Number(fields[11]) + Number(fields[12]); // utime + stime
  return { rssKiB: kib("VmRSS"), anonKiB: kib("RssAnon"), cpuSeconds: ticks / 100 };
}

async function main(): Promise<void> {
  const cri = new FakeServer(join(work, "cri.sock"));
  cri.reply = () => ({ message: listing });
  await cri.listen();
  const [node, ...command] = agentCommand();
  const agent = spawn(
    node!,
    [
      ...command,
      "--plugin",
      join(ROOT, "dist", "local-ipam"),
      "--conf-dir",
      conf,
      "--cri-socket",
      cri.socket,
      "--gc-interval",
      `${INTERVAL_MS}ms`,
      "--gc-misses",
      "3",
      "--gc-grace",
      "1s",
      "--metrics-addr",
      "127.0.0.1:0",
    ],
    {
      stdio: ["ignore", "ignore", "pipe"],
      // AGENT_NODE_OPTIONS: more V8 flags to compare (the agent's own are on its first line)
      env: {
        PATH: process.env.PATH,
        ...(process.env.AGENT_NODE_OPTIONS && { NODE_OPTIONS: process.env.AGENT_NODE_OPTIONS }),
      },
    },
  );
  let log = "";
  agent.stderr.setEncoding("utf8");
  agent.stderr.on("data", (d: string) => {
    log = (log + d).slice(-20000);
  });
  let port = 0;
  let exited = false;
  agent.on("exit", () => (exited = true));
  while (!port) {
    if (exited) throw new Error(`the agent exited at start:\n${log}`);
    await new Promise((r) => setTimeout(r, 50));
    port = Number(/metrics="127\.0\.0\.1:(\d+)"/.exec(log)?.[1] ?? 0);
  }
  const metric = async (name: string, label = "") => {
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    const line = text.split("\n").find((l) => l.startsWith(name) && l.includes(label));
    return Number(line?.split(" ").pop() ?? 0);
  };
  const samples: Sample[] = [];
  const sample = async (minute: number) =>
    samples.push({
      minute,
      ...procStats(agent.pid!),
      cycles: await metric("local_ipam_agent_gc_runs_total", 'result="ok"'),
      released: await metric("local_ipam_agent_leases_released_total"),
    });
  const start = Date.now();
  let planted = 0;
  let lastCycles = 0;
  await sample(0);
  while (Date.now() - start < MINUTES * 60_000) {
    await new Promise((r) => setTimeout(r, 5_000));
    const cycles = await metric("local_ipam_agent_gc_runs_total", 'result="ok"');
    // a leak every 50 cycles: a lease of a sandbox the runtime never listed, written an hour ago
    while (lastCycles + 50 <= cycles) {
      lastCycles += 50;
      const f = leaseFile(1000 + (planted++ % 50000));
      writeFileSync(f, `${id(1_000_000 + planted)}\r\neth0`);
      const t = Date.now() / 1000 - 3600;
      utimesSync(f, t, t);
    }
    const minute = Math.floor((Date.now() - start) / 60_000);
    if (minute > samples[samples.length - 1]!.minute) await sample(minute);
  }
  if (samples[samples.length - 1]!.minute < MINUTES) await sample(MINUTES);
  agent.kill("SIGTERM");
  await new Promise((r) => agent.on("exit", r));
  await cri.kill();
  rmSync(work, { recursive: true, force: true });

  const last = samples[samples.length - 1]!;
  const first = samples[0]!;
  const rows = samples.map(
    (s) =>
      `| ${s.minute} | ${s.cycles} | ${s.released} | ${(s.rssKiB / 1024).toFixed(1)} | ${(s.anonKiB / 1024).toFixed(1)} | ${s.cpuSeconds.toFixed(1)} |`,
  );
  const perCycleMs = ((last.cpuSeconds - first.cpuSeconds) * 1000) / Math.max(1, last.cycles - first.cycles);
  const text = `# The node agent at rest

Produced by \`npm run bench:agent\` (bench/agent-rest.ts) on ${new Date().toISOString().slice(0, 10)}: the agent
(Node.js ${process.version}) against a fake CRI runtime listing ${LIVE} sandboxes, GC every ${INTERVAL_MS} ms
instead of every minute, a leaked lease planted every 50 cycles, /metrics scraped every 5 s, for ${MINUTES}
minutes: ${last.cycles} GC cycles, ${Math.round(last.cycles / 60)} hours of a node's cycles at the default interval.
CPU is the agent process alone (the plugin runs it starts are not counted).

| minute | GC cycles | leases released | RSS MiB | of it anonymous MiB | CPU s |
|---|---|---|---|---|---|
${rows.join("\n")}

- RSS from the first sample to the last: ${(first.rssKiB / 1024).toFixed(1)} -> ${(last.rssKiB / 1024).toFixed(1)} MiB
  (anonymous ${(first.anonKiB / 1024).toFixed(1)} -> ${(last.anonKiB / 1024).toFixed(1)} MiB).
- CPU per GC cycle: ${perCycleMs.toFixed(2)} ms in the agent; at one cycle a minute, ${((perCycleMs / 60_000) * 100).toFixed(4)}% of a CPU.
`;
  writeFileSync(join(ROOT, "docs", "agent-at-rest.md"), text);
  process.stdout.write(text);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
