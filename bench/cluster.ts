// npm run bench:cluster: what a cluster network costs an ADD, against a real etcd (one member) and the real node
// agent. Timed by bench/driver.c (interleaved, so that the machine's drift hits both alike):
//   1. ADD+DEL from a block the node owns, against the same ADD+DEL on a node-local network: the ratio;
//   2. ADDs that must claim a block first (blocks of one address, no headroom: every ADD asks the agent, which
//      claims on etcd): p50 and p99, beside node-local ADDs of the same run;
//   3. the agent's own claim histogram (etcd transaction to blocks file).
// Writes docs/cluster.md.
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { EtcdCluster } from "../conformance/etcd/harness.js";
import { AgentProcess } from "../test/agent-process.js";
import { timingDriver } from "./drive.js";

const ROOT = resolve(__dirname, "..");
const LI = join(ROOT, "dist", "local-ipam");
const QUICK = process.env.BENCH_QUICK === "1";
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const work = mkdtempSync("/tmp/local-ipam-bench-cluster-");
const ENV = ["CNI_NETNS=/var/run/netns/bench", "CNI_IFNAME=eth0", "CNI_PATH=/opt/cni/bin"];

interface Series {
  name: string;
  wall_ns: number[];
  status: number[];
}

const drive = timingDriver<Series>(work);

const sorted = (xs: number[]) => [...xs].sort((a, b) => a - b);
const pct = (xs: number[], p: number) => sorted(xs)[Math.min(xs.length - 1, Math.floor(xs.length * p))]!;
const median = (xs: number[]) => pct(xs, 0.5);
const ms = (ns: number) => (ns / 1e6).toFixed(2);

function netconf(name: string, ipam: object): string {
  const path = join(work, `${name}.json`);
  writeFileSync(
    path,
    JSON.stringify({ cniVersion: "1.0.0", name, type: "macvlan", ipam: { type: "local-ipam", ...ipam } }),
  );
  return path;
}

function bench(name: string, conf: string, cmds: string[], id: string, prepare?: string): string {
  const lines = [`bench ${name}`, ...ENV.map((e) => `env ${e}`), `env CNI_CONTAINERID=${id}`, `stdin ${conf}`];
  if (prepare) lines.push(`prepare /usr/bin/env CNI_COMMAND=${prepare} ${LI}`);
  for (const c of cmds) lines.push(`run /usr/bin/env CNI_COMMAND=${c} ${LI}`);
  return lines.join("\n");
}

async function main(): Promise<void> {
  const stops: (() => Promise<unknown>)[] = [];
  const etcd = await EtcdCluster.start({ members: 1 });
  try {
    const confDir = join(work, "net.d");
    const data = join(work, "data");
    mkdirSync(confDir, { mode: 0o755 });
    const socket = join(work, "agent.sock");
    const cluster = { agentSocket: socket, claimTimeout: "10s" };
    // the owned-block case: blocks of 256 addresses, so that the agent's headroom keeps claims out of the timing
    const owned = { dataDir: data, cluster, ranges: [[{ subnet: "10.70.0.0/16", blockSize: 24 }]] };
    // every ADD claims: blocks of one address and no headroom
    const claiming = { dataDir: data, cluster, ranges: [[{ subnet: "10.71.0.0/16", blockSize: 32 }]] };
    for (const [name, ipam] of [
      ["owned", owned],
      ["claiming", claiming],
    ] as const)
      writeFileSync(
        join(confDir, `50-${name}.conflist`),
        JSON.stringify({
          cniVersion: "1.0.0",
          name,
          plugins: [{ type: "macvlan", ipam: { type: "local-ipam", ...ipam } }],
        }),
      );
    const agent = await new AgentProcess(
      [
        "--node",
        "bench-node",
        "--conf-dir",
        confDir,
        "--etcd-endpoints",
        etcd.endpoints.join(","),
        "--socket",
        socket,
        "--cluster-interval",
        "1s",
        "--headroom",
        "0",
      ],
      stops,
    ).started();
    const ownedConf = netconf("owned", owned);
    const claimConf = netconf("claiming", claiming);
    const localConf = netconf("local", { dataDir: data, ranges: [[{ subnet: "10.72.0.0/16" }]] });
    // the owned network's one block, claimed before timing (the warm-up runs would too)
    const env = { CNI_COMMAND: "ADD", CNI_CONTAINERID: "warm", ...Object.fromEntries(ENV.map((e) => e.split("="))) };
    if (spawnSync(LI, [], { input: readFileSync(ownedConf), env }).status !== 0)
      throw new Error("the first ADD failed");

    const runs = QUICK ? 20 : 200;
    const ratios: number[] = [];
    const claimTimes: number[] = [];
    const firstClaims: number[] = [];
    const localAddTimes: number[] = [];
    let pair: { owned: number; local: number } | null = null;
    for (let round = 0; round < ROUNDS; round++) {
      const out = drive(
        [
          `group ${runs} 10`,
          bench("owned", ownedConf, ["ADD", "DEL"], "bench1"),
          bench("local", localConf, ["ADD", "DEL"], "bench1"),
          "end",
          `group ${QUICK ? 20 : 300} 0`,
          bench("claim", claimConf, ["ADD"], `r${round}c{i}`),
          bench("local-add", localConf, ["ADD"], `r${round}l{i}`),
          "end",
        ].join("\n"),
      );
      const get = (n: string) => out.find((s) => s.name === n)!;
      for (const s of out) if (s.status.some((x) => x !== 0)) throw new Error(`${s.name}: a run failed`);
      const o = median(get("owned").wall_ns);
      const l = median(get("local").wall_ns);
      ratios.push(o / l);
      pair = { owned: o, local: l };
      if (round === 0) firstClaims.push(...get("claim").wall_ns.slice(0, 100));
      claimTimes.push(...get("claim").wall_ns);
      localAddTimes.push(...get("local-add").wall_ns);
    }
    const claimHist = (await agent.get("/metrics")).text
      .split("\n")
      .filter((l) => l.startsWith("local_ipam_cluster_claim_seconds") && l.includes('network="claiming"'));
    const count = Number(
      claimHist
        .find((l) => l.includes("_count"))
        ?.split(" ")
        .pop() ?? 0,
    );
    const sum = Number(
      claimHist
        .find((l) => l.includes("_sum"))
        ?.split(" ")
        .pop() ?? 0,
    );
    const text = `# Cluster networks: what an ADD costs

Produced by \`npm run bench:cluster\` (bench/cluster.ts, timed by bench/driver.c) on ${new Date().toISOString().slice(0, 10)}:
one etcd 3.4 member and the node agent on this machine (2 vCPU, noisy), ${ROUNDS} rounds.

| measure | value |
|---|---|
| ADD+DEL from an owned block / node-local ADD+DEL (median of each round; ratio median, spread) | ${median(ratios).toFixed(3)} (${Math.min(...ratios).toFixed(3)}-${Math.max(...ratios).toFixed(3)}); last round ${ms(pair!.owned)} vs ${ms(pair!.local)} ms |
| ADD that must claim a block first (asks the agent, which claims on etcd), p50 / p99 of the first 100 (the node owns 0-100 blocks) | ${ms(median(firstClaims))} / ${ms(pct(firstClaims, 0.99))} ms |
| the same over all ${claimTimes.length} (the node's one-address blocks grow to ${claimTimes.length}: the plugin walks its owned blocks, the agent lists them) | ${ms(median(claimTimes))} / ${ms(pct(claimTimes, 0.99))} ms |
| node-local ADD in the same runs, p50 / p99 | ${ms(median(localAddTimes))} / ${ms(pct(localAddTimes, 0.99))} ms |
| the agent's claim alone (etcd range + transaction + blocks file), mean over ${count} | ${count ? ((sum / count) * 1000).toFixed(2) : "-"} ms |
`;
    writeFileSync(join(ROOT, "docs", "cluster.md"), text);
    process.stdout.write(text);
  } finally {
    for (const stop of stops.reverse()) await stop();
    await etcd.stop();
    rmSync(work, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
