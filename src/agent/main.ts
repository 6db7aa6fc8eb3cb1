// local-ipam-agent: the node agent (runs on Node.js; see the README for why). Flags, signals and logging only;
// the work is in agent.ts.
import { dirname, join } from "node:path";
import { one, parseFlags, UsageError } from "../cli/flags.js";
import { EtcdClient, readTlsFiles } from "../cluster/etcd.js";
import { EtcdRegistry } from "../cluster/etcd-registry.js";
import { parseDuration } from "../config/duration.js";
import { setPlatform } from "../platform/index.js";
import { nodePlatform } from "../platform/node.js";
import { VERSION } from "../version.js";
import { Agent } from "./agent.js";
import { ClusterTier } from "./cluster.js";
import { inClusterConfig, KubeClient, type KubeConfig, kubeconfigFile } from "./kube.js";
import { PluginRunner } from "./plugin.js";

const HELP = `local-ipam-agent [flags]

The node agent of local-ipam, run by the DaemonSet on every node:
- installs the plugin binary into --bin-dir (atomically) at start;
- keeps the conflist in --conf-dir in step with its Node's spec.podCIDRs (from the Kubernetes API: in a pod, its
  service account; otherwise --kubeconfig), or writes it once from --pod-cidr; without either, leaves it alone;
- releases leases whose pod sandbox the CRI runtime (--cri-socket) has not listed --gc-misses times in a row and
  that are older than --gc-grace; never while the runtime cannot be listed;
- serves /metrics (the plugin's pool metrics and its own) and /healthz on --metrics-addr.

  --node NAME             the Node (default: $NODE_NAME)
  --kubeconfig FILE       a kubeconfig instead of the in-cluster service account
  --pod-cidr CIDR         the pod CIDRs, without the API (repeatable, one per family)
  --conf-dir DIR          the CNI config dir (default /etc/cni/net.d)
  --conf-name NAME        the conflist's file name (default 10-local-ipam.conflist)
  --conflist FILE         a conflist template (see local-ipam install --help)
  --bin-dir DIR           install the plugin here at start (e.g. /opt/cni/bin)
  --plugin PATH           the plugin binary (default: local-ipam beside this program)
  --ipam-type TYPE        the ipam type of the conflists to collect leases for (default local-ipam)
  --cri-socket PATH       the CRI runtime's socket (e.g. /run/containerd/containerd.sock); none: no GC
  --gc-interval DURATION  between CRI listings (default 1m)
  --gc-misses N           listings in a row a sandbox must be missing from (default 3)
  --gc-grace DURATION     a lease younger than this is never released (default 10m)
  --metrics-addr HOST:PORT  where /metrics and /healthz listen (default 127.0.0.1:9617; port 0: any free one)

Cluster networks (conflists whose ipam block has "cluster"): blocks of one address space claimed on etcd.
  --etcd-endpoints URL,...  etcd's client URLs (https:// with the three below); none: no cluster networks
  --etcd-ca FILE, --etcd-cert FILE, --etcd-key FILE   TLS: the CA to trust, this agent's client certificate
  --etcd-prefix PREFIX    every key under it (default /local-ipam)
  --socket PATH           where the plugin asks for blocks (default /run/local-ipam/agent.sock)
  --cluster-interval DURATION  between passes over each network: headroom, returns (default 5s)
  --reconcile-interval DURATION  between reconciles with etcd: recovery, blocks given away (default 1m)
  --headroom N            claim a block when a range set has fewer free addresses (default: half a block)
  --block-idle DURATION   return a block empty this long, beyond the headroom (default 10m)
  --node-ttl DURATION     the liveness key's lease (default 30s)
  --version, --help`;

const SPEC = {
  values: [
    "node",
    "kubeconfig",
    "conf-dir",
    "conf-name",
    "conflist",
    "bin-dir",
    "plugin",
    "ipam-type",
    "cri-socket",
    "gc-interval",
    "gc-misses",
    "gc-grace",
    "metrics-addr",
    "etcd-endpoints",
    "etcd-ca",
    "etcd-cert",
    "etcd-key",
    "etcd-prefix",
    "socket",
    "cluster-interval",
    "reconcile-interval",
    "headroom",
    "block-idle",
    "node-ttl",
  ],
  repeatable: ["pod-cidr"],
  switches: ["help", "version"],
};

function log(level: string, msg: string, fields: Record<string, unknown> = {}): void {
  const kv = Object.entries(fields)
    .map(([k, v]) => `${k}=${JSON.stringify(v)}`)
    .join(" ");
  process.stderr.write(`${new Date().toISOString()} ${level} ${msg}${kv ? ` ${kv}` : ""}\n`);
}

function duration(name: string, text: string): number {
  const ms = parseDuration(text);
  if (ms === null || ms <= 0)
    throw new UsageError(`--${name}: ${JSON.stringify(text)} is not a positive duration (e.g. 1m)`);
  return ms;
}

function hostPort(text: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(text);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw new UsageError(`--metrics-addr: ${JSON.stringify(text)} is not HOST:PORT`);
  return { host: m[1] ?? (m[2] || "0.0.0.0"), port };
}

async function main(argv: string[]): Promise<number> {
  // the cluster tier loads conflists as the plugin does (to know which blocks have addresses to hand out)
  setPlatform(nodePlatform);
  let agent: Agent;
  try {
    const p = parseFlags(argv, SPEC);
    if (p.switches.has("help")) {
      process.stdout.write(`${HELP}\n`);
      return 0;
    }
    if (p.switches.has("version")) {
      process.stdout.write(`local-ipam-agent ${VERSION}\n`);
      return 0;
    }
    const node = one(p, "node") ?? process.env.NODE_NAME;
    const kubeconfig = one(p, "kubeconfig");
    const podCidrs = p.values.get("pod-cidr") ?? [];
    let kubeConf: KubeConfig | null = null;
    if (podCidrs.length === 0) kubeConf = kubeconfig ? kubeconfigFile(kubeconfig) : inClusterConfig();
    if (kubeConf && !node) throw new UsageError("--node (or $NODE_NAME) is needed to follow the Node's pod CIDRs");
    const plugin = new PluginRunner(one(p, "plugin") ?? join(dirname(process.argv[1] ?? "."), "local-ipam"));
    const endpoints = one(p, "etcd-endpoints");
    let cluster: ClusterTier | null = null;
    if (endpoints) {
      if (!node) throw new UsageError("--node (or $NODE_NAME) is needed for cluster networks");
      const headroom = one(p, "headroom");
      if (headroom !== undefined && !/^\d{1,9}$/.test(headroom))
        throw new UsageError("--headroom: a whole number of addresses");
      const ttl = duration("node-ttl", one(p, "node-ttl") ?? "30s");
      if (ttl < 2000) throw new UsageError("--node-ttl: at least 2s");
      cluster = new ClusterTier({
        node,
        registry: new EtcdRegistry(
          new EtcdClient({
            endpoints: endpoints.split(",").filter(Boolean),
            tls: readTlsFiles({ ca: one(p, "etcd-ca"), cert: one(p, "etcd-cert"), key: one(p, "etcd-key") }),
          }),
          (one(p, "etcd-prefix") ?? "/local-ipam").replace(/\/+$/, ""),
          node,
          Math.round(ttl / 1000),
          (key) => log("warn", "an etcd key that is not ours to read", { key }),
        ),
        socketPath: one(p, "socket") ?? "/run/local-ipam/agent.sock",
        confDir: one(p, "conf-dir") ?? "/etc/cni/net.d",
        ipamType: one(p, "ipam-type") ?? "local-ipam",
        plugin,
        intervalMs: duration("cluster-interval", one(p, "cluster-interval") ?? "5s"),
        reconcileMs: duration("reconcile-interval", one(p, "reconcile-interval") ?? "1m"),
        headroom: headroom === undefined ? null : Number(headroom),
        idleMs: duration("block-idle", one(p, "block-idle") ?? "10m"),
        nodeTtl: Math.round(ttl / 1000),
        heartbeatMs: Math.max(500, Math.floor(ttl / 3)),
        log,
      });
    }
    const misses = Number(one(p, "gc-misses") ?? "3");
    if (!Number.isInteger(misses) || misses < 1) throw new UsageError("--gc-misses: a whole number, at least 1");
    agent = new Agent({
      node,
      kube: kubeConf && new KubeClient(kubeConf),
      podCidrs,
      confDir: one(p, "conf-dir") ?? "/etc/cni/net.d",
      confName: one(p, "conf-name") ?? "10-local-ipam.conflist",
      conflistTemplate: one(p, "conflist"),
      binDir: one(p, "bin-dir"),
      plugin,
      ipamType: one(p, "ipam-type") ?? "local-ipam",
      criSocket: one(p, "cri-socket") ?? null,
      gcIntervalMs: duration("gc-interval", one(p, "gc-interval") ?? "1m"),
      gcMisses: misses,
      gcGraceMs: duration("gc-grace", one(p, "gc-grace") ?? "10m"),
      metrics: hostPort(one(p, "metrics-addr") ?? "127.0.0.1:9617"),
      cluster,
      log,
    });
  } catch (e) {
    process.stderr.write(`local-ipam-agent: ${(e as Error).message}\n`);
    return e instanceof UsageError ? 2 : 1;
  }

  const stopped = new Promise<void>((resolvePromise) => {
    const stop = (sig: string) => {
      log("info", "stopping", { signal: sig });
      void agent.stop().then(resolvePromise);
    };
    process.once("SIGTERM", () => stop("SIGTERM"));
    process.once("SIGINT", () => stop("SIGINT"));
  });
  try {
    const addr = await agent.start();
    log("info", `local-ipam-agent ${VERSION} started`, addr ? { metrics: `${addr.address}:${addr.port}` } : {});
  } catch (e) {
    log("error", (e as Error).message);
    await agent.stop();
    return 1;
  }
  await stopped;
  log("info", "stopped");
  return 0;
}

main(process.argv.slice(2)).then(
  (status) => process.exit(status),
  (e: Error) => {
    log("error", e.stack ?? e.message);
    process.exit(1);
  },
);
