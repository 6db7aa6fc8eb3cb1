// Nodes of a cluster network on one machine, for the cluster-pool suites: each "node" is a node name, a conf dir,
// a data dir, a socket and a node agent (dist/local-ipam-agent) against the same etcd; ADD and DEL run the native
// plugin with that node's conflist. Networks are added as conflists while the agents run (they find them).
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { isIP } from "node:net";
import { join } from "node:path";
import { AgentProcess } from "../../test/agent-process.js";
import { LOCAL_IPAM, type Outcome, runAsync } from "../../test/helpers.js";
import type { EtcdCluster } from "../etcd/harness.js";

export interface NetSpec {
  name: string;
  ranges: object[][];
  claimTimeout?: string;
}

export class ClusterNode {
  readonly confDir: string;
  readonly dataDir: string;
  readonly socket: string;
  agent: AgentProcess | null = null;
  /** the agent runs with flags of a test's own */
  custom = false;

  constructor(
    readonly name: string,
    readonly dir: string,
  ) {
    this.confDir = join(dir, "net.d");
    this.dataDir = join(dir, "data");
    this.socket = join(dir, "run", "agent.sock");
    for (const d of [dir, this.confDir, join(dir, "run")]) mkdirSync(d, { recursive: true, mode: 0o755 });
  }

  /** The ipam block this node's conflist has for `net`. */
  ipam(net: NetSpec): object {
    return {
      type: "local-ipam",
      dataDir: this.dataDir,
      cluster: { agentSocket: this.socket, claimTimeout: net.claimTimeout ?? "5s" },
      ranges: net.ranges,
    };
  }

  conflistPath(net: string): string {
    return join(this.confDir, `50-${net}.conflist`);
  }

  addNetwork(net: NetSpec): void {
    const doc = {
      cniVersion: "1.0.0",
      name: net.name,
      plugins: [{ type: "macvlan", master: "eth0", ipam: this.ipam(net) }],
    };
    writeFileSync(this.conflistPath(net.name), JSON.stringify(doc, null, 2));
  }

  netconf(net: NetSpec): object {
    return { cniVersion: "1.0.0", name: net.name, type: "macvlan", ipam: this.ipam(net) };
  }

  startAgent(
    etcd: EtcdCluster,
    stops: (() => Promise<unknown>)[],
    args: string[] = [],
    env: Record<string, string> = {},
  ) {
    const tls = etcd.clientTls!;
    this.agent = new AgentProcess(
      [
        "--node",
        this.name,
        "--conf-dir",
        this.confDir,
        "--etcd-endpoints",
        etcd.endpoints.join(","),
        "--etcd-ca",
        tls.ca,
        "--etcd-cert",
        tls.cert,
        "--etcd-key",
        tls.key,
        "--socket",
        this.socket,
        "--cluster-interval",
        "200ms",
        "--reconcile-interval",
        "500ms",
        "--node-ttl",
        "6s",
        ...args,
      ],
      stops,
      LOCAL_IPAM,
      env,
    );
    return this.agent.started();
  }

  add(net: NetSpec, id: string): Promise<Outcome> {
    return runAsync(LOCAL_IPAM, { command: "ADD", containerId: id }, this.netconf(net));
  }

  del(net: NetSpec, id: string): Promise<Outcome> {
    return runAsync(LOCAL_IPAM, { command: "DEL", containerId: id }, this.netconf(net));
  }

  /** `local-ipam blocks --json` for the network: the owned blocks and their use. */
  blocks(net: NetSpec): { block: string; used: number; free: string }[] {
    const r = spawnSync(LOCAL_IPAM, ["blocks", "--config", this.conflistPath(net.name)], { encoding: "utf8" });
    if (r.status !== 0) throw new Error(`local-ipam blocks: ${r.stderr}`);
    return (
      JSON.parse(r.stdout) as { rangeSets: { owned: { block: string; used: number; free: string }[] }[] }
    ).rangeSets.flatMap((s) => s.owned);
  }

  /** The addresses leased on this node in `net`, from the files. */
  leases(net: NetSpec): string[] {
    const d = join(this.dataDir, net.name);
    return existsSync(d) ? readdirSync(d).filter((f) => isIP(f) !== 0) : [];
  }

  leaseOwner(net: NetSpec, ip: string): string {
    return readFileSync(join(this.dataDir, net.name, ip), "utf8");
  }
}
