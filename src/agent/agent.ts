// The node agent: keeps the conflist in step with the Node's pod CIDRs, serves /metrics and /healthz, and
// collects leases the CRI runtime no longer has a sandbox for. Everything that touches the CNI directories or the
// leases is a run of the plugin binary's CLI (plugin.ts).
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import { exposition, type Family } from "../cli/exposition.js";
import { CriClient } from "../cri/index.js";
import type { ClusterTier } from "./cluster.js";
import { findConfigs } from "./conflists.js";
import { AbsenceTracker, type LeaseRow } from "./gc.js";
import { type KubeClient, KubeError, type NodeInfo } from "./kube.js";
import type { PluginRunner } from "./plugin.js";
import { sleepUnlessAborted } from "./sleep.js";

interface AgentOptions {
  /** the Node whose pod CIDRs the conflist follows (with kube) */
  node?: string;
  kube: KubeClient | null;
  /** pod CIDRs given on the command line: written once, no API needed */
  podCidrs: string[];
  confDir: string;
  confName: string;
  /** a conflist template for `local-ipam install --conflist` */
  conflistTemplate?: string;
  /** install the plugin binary here at start */
  binDir?: string;
  plugin: PluginRunner;
  /** the ipam type that marks the conflists whose leases are collected */
  ipamType: string;
  /** the CRI runtime's socket; null: no GC */
  criSocket: string | null;
  gcIntervalMs: number;
  gcMisses: number;
  gcGraceMs: number;
  metrics: { host: string; port: number } | null;
  /** cluster networks on etcd, when the agent has etcd endpoints */
  cluster: ClusterTier | null;
  log: (level: "info" | "warn" | "error", msg: string, fields?: Record<string, unknown>) => void;
}

type GcResult = "ok" | "skipped" | "failed";

/** The agent's own counters, exposed beside the plugin's metrics. */
class Counters {
  gcRuns: Record<GcResult, number> = { ok: 0, skipped: 0, failed: 0 };
  released = new Map<string, number>();
  apiErrors = { kubernetes: 0, cri: 0 };
  installs = { ok: 0, failed: 0 };
  watching = 0;
  lastGcOk = 0;

  families(): Family[] {
    return [
      {
        name: "local_ipam_agent_gc_runs_total",
        help: "GC cycles by result: ok, skipped (the CRI runtime could not be listed: nothing released), failed.",
        type: "counter",
        samples: Object.entries(this.gcRuns).map(([result, value]) => ({ labels: { result }, value })),
      },
      {
        name: "local_ipam_agent_leases_released_total",
        help: "Leases released because their pod sandbox was gone from consecutive CRI listings.",
        type: "counter",
        samples: [...this.released].map(([network, value]) => ({ labels: { network }, value })),
      },
      {
        name: "local_ipam_agent_api_errors_total",
        help: "Failed calls to the Kubernetes API and to the CRI runtime.",
        type: "counter",
        samples: Object.entries(this.apiErrors).map(([api, value]) => ({ labels: { api }, value })),
      },
      {
        name: "local_ipam_agent_installs_total",
        help: "Runs of local-ipam install (binary and conflist) by result.",
        type: "counter",
        samples: Object.entries(this.installs).map(([result, value]) => ({ labels: { result }, value })),
      },
      {
        name: "local_ipam_agent_gc_watched_attachments",
        help: "Attachments with leases whose sandbox was missing from the last listing (released after enough misses).",
        type: "gauge",
        samples: [{ labels: {}, value: this.watching }],
      },
      {
        name: "local_ipam_agent_last_gc_success_timestamp_seconds",
        help: "When a GC cycle last completed (0: never).",
        type: "gauge",
        samples: [{ labels: {}, value: this.lastGcOk }],
      },
    ];
  }
}

const sameSet = (a: string[], b: string[]) => a.length === b.length && [...a].sort().join() === [...b].sort().join();

export class Agent {
  private readonly abort = new AbortController();
  private readonly counters = new Counters();
  private readonly tracker: AbsenceTracker;
  private server: http.Server | null = null;
  private cri: CriClient | null = null;
  private applied: string[] | null = null;
  private tasks: Promise<void>[] = [];

  constructor(private readonly o: AgentOptions) {
    this.tracker = new AbsenceTracker(o.gcMisses, o.gcGraceMs / 1000);
  }

  get signal(): AbortSignal {
    return this.abort.signal;
  }

  /** Starts everything; resolves with the metrics address once it listens (null without one). */
  async start(): Promise<AddressInfo | null> {
    if (this.o.binDir) {
      const r = await this.o.plugin.run(["install", "--bin-dir", this.o.binDir]);
      this.countInstall(r.status === 0, r.stdout || r.stderr);
      if (r.status !== 0) throw new Error(`installing the plugin into ${this.o.binDir} failed: ${r.stderr.trim()}`);
    }
    const address = this.o.metrics ? await this.listen(this.o.metrics.host, this.o.metrics.port) : null;
    if (this.o.podCidrs.length > 0) await this.applyPodCidrs(this.o.podCidrs);
    else if (this.o.kube && this.o.node) this.tasks.push(this.followNode(this.o.kube, this.o.node));
    else this.o.log("info", "no Kubernetes API and no --pod-cidr: the conflist is left alone");
    if (this.o.criSocket) this.tasks.push(this.gcLoop(this.o.criSocket));
    else this.o.log("info", "no --cri-socket: no GC");
    await this.o.cluster?.start();
    return address;
  }

  /** Stops the loops, waits for a GC step in progress to end, closes the server and the CRI connection. */
  async stop(): Promise<void> {
    this.abort.abort();
    await Promise.allSettled([...this.tasks, this.o.cluster?.stop()]);
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
    this.server?.closeAllConnections();
    await this.cri?.close();
  }

  /** Resolves after `ms`, or at once when the agent is stopping. */
  private sleep(ms: number): Promise<void> {
    return sleepUnlessAborted(ms, this.signal);
  }

  private countInstall(ok: boolean, output: string): void {
    this.counters.installs[ok ? "ok" : "failed"]++;
    this.o.log(ok ? "info" : "error", ok ? "install" : "install failed", { output: output.trim() });
  }

  // ---- the conflist follows the Node's pod CIDRs ----

  private async applyPodCidrs(cidrs: string[]): Promise<void> {
    if (this.applied && sameSet(this.applied, cidrs)) return;
    const args = ["install", "--conf-dir", this.o.confDir, "--conf-name", this.o.confName];
    if (this.o.conflistTemplate) args.push("--conflist", this.o.conflistTemplate);
    for (const c of cidrs) args.push("--pod-cidr", c);
    // no --bin-dir: install writes the conflist only (the binary went in at start)
    const r = await this.o.plugin.run(args);
    this.countInstall(r.status === 0, r.status === 0 ? r.stdout : r.stderr);
    if (r.status === 0) this.applied = [...cidrs];
  }

  private async seen(node: NodeInfo): Promise<void> {
    if (node.podCIDRs.length === 0) {
      this.o.log("info", "the Node has no pod CIDRs yet: waiting", { node: node.name });
      return;
    }
    await this.applyPodCidrs(node.podCIDRs);
  }

  private async followNode(kube: KubeClient, name: string): Promise<void> {
    let backoff = 1000;
    while (!this.signal.aborted) {
      try {
        const node = await kube.getNode(name, this.signal);
        await this.seen(node);
        let rv = node.resourceVersion;
        backoff = 1000;
        for (;;) {
          const began = Date.now();
          let pending = Promise.resolve();
          await kube.watchNode(
            name,
            rv,
            (e) => {
              if (e.type === "BOOKMARK") rv = e.resourceVersion;
              else if (e.type === "DELETED")
                this.o.log("warn", "the Node was deleted: the conflist stays", { node: name });
              else {
                rv = e.node.resourceVersion;
                pending = pending.then(() => this.seen(e.node));
              }
            },
            { signal: this.signal },
          );
          await pending;
          if (this.signal.aborted) return;
          if (Date.now() - began < 1000) await this.sleep(1000); // a server that ends every watch at once
        }
      } catch (e) {
        if (this.signal.aborted) return;
        if (e instanceof KubeError && e.status === 410) continue; // too old a version: read the Node again
        this.counters.apiErrors.kubernetes++;
        this.o.log("warn", "Kubernetes API", { node: name, error: (e as Error).message, retryInMs: backoff });
        await this.sleep(backoff);
        backoff = Math.min(backoff * 2, 30_000);
      }
    }
  }

  // ---- GC ----

  private async gcLoop(socket: string): Promise<void> {
    while (!this.signal.aborted) {
      const result = await this.gcCycle(socket).catch((e: Error): GcResult => {
        this.o.log("error", "GC cycle", { error: e.message });
        return "failed";
      });
      this.counters.gcRuns[result]++;
      if (result === "ok") this.counters.lastGcOk = Math.floor(Date.now() / 1000);
      await this.sleep(this.o.gcIntervalMs);
    }
  }

  /** One cycle: list the sandboxes, then the leases; release what has been missing long enough. */
  async gcCycle(socket: string): Promise<GcResult> {
    const configs = findConfigs(this.o.confDir, this.o.ipamType);
    if (configs.length === 0) return "ok";
    let sandboxes: Set<string>;
    try {
      this.cri ??= await CriClient.connect(socket, { timeoutMs: 10_000 });
      sandboxes = new Set((await this.cri.listPodSandbox()).map((s) => s.id));
    } catch (e) {
      this.counters.apiErrors.cri++;
      this.o.log("warn", "the CRI runtime cannot be listed: nothing is released", { error: (e as Error).message });
      return "skipped";
    }
    const { leases } = await this.o.plugin.json<{ leases: LeaseRow[] }>([
      "leases",
      "--json",
      ...configs.flatMap((c) => ["--config", c.path]),
    ]);
    const stale = this.tracker.observe(sandboxes, leases);
    this.counters.watching = this.tracker.watching;
    let failed = false;
    for (const { path, network } of configs) {
      const mine = stale.filter((s) => s.network === network);
      if (mine.length === 0 || this.signal.aborted) continue;
      const r = await this.o.plugin.run([
        "gc",
        "--config",
        path,
        "--min-age",
        `${this.o.gcGraceMs}ms`,
        "--json",
        ...mine.flatMap((s) => ["--stale", s.stale]),
      ]);
      let released: { address: string; containerId: string; ifname: string; error: string | null }[] = [];
      try {
        released = (JSON.parse(r.stdout) as { released: typeof released }).released;
      } catch {
        failed = true;
        this.o.log("error", "local-ipam gc", { network, status: r.status, stderr: r.stderr.trim() });
        continue;
      }
      for (const x of released) {
        if (x.error) {
          failed = true;
          this.o.log("error", "lease not released", { network, address: x.address, error: x.error });
          continue;
        }
        this.counters.released.set(network, (this.counters.released.get(network) ?? 0) + 1);
        this.o.log("info", "released a leaked lease", {
          network,
          address: x.address,
          container: x.containerId,
          ifname: x.ifname,
        });
      }
    }
    return failed ? "failed" : "ok";
  }

  // ---- /metrics and /healthz ----

  private listen(host: string, port: number): Promise<AddressInfo> {
    const server = http.createServer((req, res) => {
      void this.serve(req, res).catch((e: Error) => {
        res.writeHead(500, { "Content-Type": "text/plain" }).end(`${e.message}\n`);
      });
    });
    this.server = server;
    return new Promise((resolvePromise, reject) => {
      server.once("error", reject);
      server.listen(port, host, () => resolvePromise(server.address() as AddressInfo));
    });
  }

  private async serve(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const path = (req.url ?? "/").split("?")[0];
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(405, { Allow: "GET, HEAD" }).end();
      return;
    }
    if (path === "/healthz") {
      const ok = !this.signal.aborted;
      res.writeHead(ok ? 200 : 503, { "Content-Type": "text/plain" }).end(ok ? "ok\n" : "stopping\n");
      return;
    }
    if (path !== "/metrics") {
      res.writeHead(404, { "Content-Type": "text/plain" }).end("not found\n");
      return;
    }
    const configs = findConfigs(this.o.confDir, this.o.ipamType);
    let pools = "";
    if (configs.length > 0) {
      const r = await this.o.plugin.run(["metrics", ...configs.flatMap((c) => ["--config", c.path])]);
      if (r.status === 0) pools = r.stdout;
      else this.o.log("warn", "local-ipam metrics", { status: r.status, stderr: r.stderr.trim() });
    }
    res.writeHead(200, { "Content-Type": "text/plain; version=0.0.4; charset=utf-8" });
    res.end(pools + exposition([...this.counters.families(), ...(this.o.cluster?.families() ?? [])]));
  }
}
