// bench/etcd-clients: the local-ipam etcd client (JSON gateway over node:https) against the npm package etcd3
// (gRPC), on a local 1-member etcd with TLS and client certificates (conformance/etcd/harness.ts). Started by
// run.sh, which prepares the work directory given as argv[2]:
//   <work>/jsongw-child.mjs          the bundled jsongw-child.ts
//   <work>/etcd3/etcd3-child.mjs     next to node_modules/etcd3
// Measures, the clients interleaved so that drift hits both alike:
//   cold start   process spawn to the first committed txn, read on the child's stdout (Node without
//                NODE_EXTRA_CA_CERTS), median of COLD_RUNS runs
//   warm txn     one create-if-absent txn (compare create_revision = 0, put) after 50 unmeasured ones:
//                median and p99 of 500, in WARM_ROUNDS separate processes
//   idle RSS     VmRSS of a Node process that made one txn, ran a GC, and holds its connection, beside a bare
//                Node process for reference
// Prints a markdown table.
import { spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { cpus, release } from "node:os";
import { join } from "node:path";
import { EtcdCluster } from "../../conformance/etcd/harness.js";

const work = process.argv[2];
if (!work) throw new Error("usage: run.cjs <work dir prepared by run.sh>");
const ROOT = process.cwd(); // run.sh runs it from the repository root
const COLD_RUNS = Number(process.env.COLD_RUNS ?? 30);
const WARM_ROUNDS = Number(process.env.WARM_ROUNDS ?? 3);
const WARM_COUNT = 500;

interface Variant {
  name: string;
  cmd: string;
  args: string[];
}

const bun = join(ROOT, "node_modules", ".bin", "bun");
const variants: Variant[] = [
  { name: "local-ipam client, JSON gateway (node:https), Node", cmd: "node", args: [join(work, "jsongw-child.mjs")] },
  { name: "npm etcd3 1.1.2, gRPC (@grpc/grpc-js), Node", cmd: "node", args: [join(work, "etcd3", "etcd3-child.mjs")] },
];
if (process.env.WITH_BUN !== "0" && existsSync(bun)) {
  variants.push({
    name: "local-ipam client, JSON gateway (node:https), Bun",
    cmd: bun,
    args: [join(work, "jsongw-child.mjs")],
  });
}

const env = { ...process.env };
delete env.NODE_EXTRA_CA_CERTS;

/** Spawns a child and resolves with the time from spawn to the first line on its stdout, the whole stdout and its
 * pid; the child is left running when `keep` is set (the caller kills it by pid). */
function runChild(
  v: Variant,
  mode: string,
  endpoint: string,
  tls: string[],
  extra: string[] = [],
  nodeFlags: string[] = [],
) {
  return new Promise<{ firstLineMs: number; stdout: string; pid: number }>((resolvePromise, reject) => {
    const t0 = performance.now();
    const args = [...(v.cmd === "node" ? nodeFlags : []), ...v.args, mode, endpoint, ...tls, ...extra];
    const child = spawn(v.cmd, args, { env, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    let first: number | undefined;
    child.stdout.on("data", (d: Buffer) => {
      out += d;
      if (first === undefined && out.includes("\n")) {
        first = performance.now() - t0;
        if (mode === "idle") resolvePromise({ firstLineMs: first, stdout: out, pid: child.pid! });
      }
    });
    child.stderr.on("data", (d: Buffer) => (err += d));
    child.on("error", reject);
    child.on("exit", (code, signal) => {
      if (mode === "idle") return;
      if (code !== 0 || first === undefined) reject(new Error(`${v.name} ${mode}: exit ${code ?? signal}: ${err}`));
      else resolvePromise({ firstLineMs: first, stdout: out, pid: child.pid! });
    });
  });
}

function quantile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))]!;
}
const median = (xs: number[]) => quantile(xs, 0.5);

function rssKiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  if (!m) throw new Error(`no VmRSS for ${pid}`);
  return Number(m[1]);
}

async function main(): Promise<void> {
  const cluster = await EtcdCluster.start({ members: 1, tls: true, baseDir: process.env.BENCH_ETCD_DIR });
  try {
    const endpoint = cluster.endpoints[0]!;
    const t = cluster.clientTls!;
    const tls = [t.ca, t.cert, t.key];
    const cold = new Map<string, number[]>(variants.map((v) => [v.name, []]));
    const warm = new Map<string, { median: number; p99: number }[]>(variants.map((v) => [v.name, []]));
    const rss = new Map<string, number[]>(variants.map((v) => [v.name, []]));

    for (const v of variants) await runChild(v, "cold", endpoint, tls); // page cache, etcd warmed for both
    for (let r = 0; r < COLD_RUNS; r++) {
      for (const v of variants) cold.get(v.name)!.push((await runChild(v, "cold", endpoint, tls)).firstLineMs);
    }
    for (let r = 0; r < WARM_ROUNDS; r++) {
      for (const v of variants) {
        const { stdout } = await runChild(v, "warm", endpoint, tls, [String(WARM_COUNT)]);
        const ms: number[] = JSON.parse(stdout).ms;
        warm.get(v.name)!.push({ median: median(ms), p99: quantile(ms, 0.99) });
        console.error(`warm ${v.name}: median ${median(ms).toFixed(3)} p99 ${quantile(ms, 0.99).toFixed(3)}`);
      }
    }
    const bare: number[] = [];
    const settle = () => new Promise((r) => setTimeout(r, 500)); // let the idle process settle before reading RSS
    for (let r = 0; r < 3; r++) {
      for (const v of variants) {
        const { pid } = await runChild(v, "idle", endpoint, tls, [], ["--expose-gc"]);
        await settle();
        rss.get(v.name)!.push(rssKiB(pid));
        process.kill(pid, "SIGKILL");
      }
      const b = spawn("node", ["--expose-gc", "-e", "gc(); console.log('ready'); setInterval(() => {}, 1 << 30)"], {
        env,
        stdio: ["ignore", "pipe", "ignore"],
      });
      await new Promise((r) => b.stdout.once("data", r));
      await settle();
      bare.push(rssKiB(b.pid!));
      process.kill(b.pid!, "SIGKILL");
    }

    const f = (x: number) => x.toFixed(2);
    console.log(
      `etcd ${cluster.etcdctl(["version"]).split("\n")[0]?.replace("etcdctl version: ", "")}, 1 member, TLS with client certificates, data dir under ${process.env.BENCH_ETCD_DIR ?? "os.tmpdir()"}`,
    );
    console.log(`Node ${process.version}, ${cpus().length} x ${cpus()[0]?.model ?? "?"}, Linux ${release()}\n`);
    console.log(
      "| client | cold start to first committed txn, median (min-max) | warm txn median | warm txn p99 | idle RSS |",
    );
    console.log("|---|---|---|---|---|");
    for (const v of variants) {
      const c = cold.get(v.name)!;
      const w = warm.get(v.name)!;
      const r = rss.get(v.name)!;
      console.log(
        `| ${v.name} | ${f(median(c))} ms (${f(Math.min(...c))}-${f(Math.max(...c))}) | ` +
          `${w.map((x) => f(x.median)).join(" / ")} ms | ${w.map((x) => f(x.p99)).join(" / ")} ms | ` +
          `${(median(r) / 1024).toFixed(1)} MiB |`,
      );
    }
    console.log(`| bare Node process, for reference | | | | ${(median(bare) / 1024).toFixed(1)} MiB |`);
    console.log(
      `\ncold: ${COLD_RUNS} runs each; warm: ${WARM_COUNT} txns per round, ${WARM_ROUNDS} rounds (one process each); RSS: median of 3.`,
    );
  } finally {
    await cluster.stop();
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
