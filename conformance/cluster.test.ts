// Cluster pools on a real etcd (3 members, TLS with client certificates, started here on free ports): three nodes
// on this machine, each a node agent, a conf dir and a data dir, allocating from one address space. The load test
// and every fault the design names: the leader killed mid-run, quorum lost, the agent SIGKILLed between its etcd
// claim and its blocks file, blocks returned while ADDs race, the agent down, a node recreated with an empty disk,
// a dead node's blocks released.
// Every test checks the one thing that matters: no address is ever held by two containers at once, across nodes.
import { spawnSync } from "node:child_process";
import { createConnection, type Socket } from "node:net";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { until } from "../test/agent-process.js";
import { LOCAL_IPAM, type Outcome, removeDir, run, runAsync, tempDir } from "../test/helpers.js";
import { ClusterNode, type NetSpec } from "./cluster/nodes.js";
import { EtcdCluster } from "./etcd/harness.js";

let etcd: EtcdCluster;
let dir: string;
let nodes: ClusterNode[];
const stops: (() => Promise<unknown>)[] = [];

beforeAll(async () => {
  dir = tempDir("local-ipam-cluster-");
  etcd = await EtcdCluster.start({ members: 3, tls: true });
  nodes = ["node-a", "node-b", "node-c"].map((n) => new ClusterNode(n, join(dir, n)));
  for (const n of nodes) await n.startAgent(etcd, stops);
}, 120_000);
afterAll(async () => {
  for (const stop of stops.splice(0).reverse()) await stop();
  await etcd?.stop();
  removeDir(dir);
});

let netCount = 0;
/** container IDs, unique across every churn of the run */
let next = 0;
/** A fresh cluster network on every node (the agents find it): a /22 in blocks of 16 unless said otherwise. */
function network(
  ranges: object[][] = [[{ subnet: `10.${200 + netCount}.0.0/22`, blockSize: 28 }]],
  more: Partial<NetSpec> = {},
) {
  const net: NetSpec = { name: `cn${netCount++}`, ranges, ...more };
  for (const n of nodes) n.addNetwork(net);
  return net;
}

/** etcd's view: block CIDR -> owner. */
function owners(net: NetSpec): Map<string, string> {
  const out = new Map<string, string>();
  const text = etcd.etcdctl(["get", "--prefix", `/local-ipam/${net.name}/blocks/`]);
  const lines = text.split("\n").filter(Boolean);
  for (let i = 0; i + 1 < lines.length; i += 2)
    out.set(lines[i]!.slice(`/local-ipam/${net.name}/blocks/`.length), JSON.parse(lines[i + 1]!).node);
  return out;
}

/**
 * Why a claim failed while etcd could not answer: its own etcd error or, when it queued behind the agent's pass that
 * was itself waiting on etcd (or etcd never answered it), the agent's timeout, with the last etcd error it saw.
 */
const CLAIM_FAILED_ON_ETCD =
  /(etcd: |no claim got through in time \((it waited behind other work on cn\d+|etcd did not answer it); (last etcd error \d|no etcd error so far))/;

const ipNum = (ip: string) => ip.split(".").reduce((n, x) => n * 256 + Number(x), 0);
const inCidr = (ip: string, cidr: string) => {
  const [base, bits] = cidr.split("/");
  const size = 2 ** (32 - Number(bits));
  return Math.floor(ipNum(ip) / size) === Math.floor(ipNum(base!) / size);
};

/**
 * At rest: no address leased on two nodes; every lease inside its node's blocks; each node's file is what etcd says
 * it owns. An agent may still be claiming for its headroom: the files and etcd are compared until they agree.
 */
async function expectConsistent(net: NetSpec): Promise<void> {
  const fileOf = (n: ClusterNode) =>
    n
      .blocks(net)
      .map((b) => b.block.slice(b.block.indexOf(":") + 1))
      .sort();
  const etcdOf = (byEtcd: Map<string, string>, n: ClusterNode) =>
    [...byEtcd]
      .filter(([, owner]) => owner === n.name)
      .map(([b]) => b)
      .sort();
  // one snapshot, read in this order: leases (each made from a block already in its node's file), files, etcd; agents
  // may claim or return blocks at any moment, so the assertions judge the snapshot that agreed, not a later read
  const snapshot = () => {
    const leases = nodes.map((n) => n.leases(net));
    const files = nodes.map(fileOf);
    return { leases, files, byEtcd: owners(net) };
  };
  let last!: ReturnType<typeof snapshot>; // until reads it at once
  await until(
    "the files and etcd to agree",
    () => {
      last = snapshot();
      return nodes.every((n, i) => last.files[i]!.join() === etcdOf(last.byEtcd, n).join());
    },
    15_000,
  ).catch(() => undefined); // the assertions below show what differs
  const { byEtcd } = last;
  const seen = new Map<string, string>();
  for (const [i, n] of nodes.entries()) {
    const blocks = last.files[i]!;
    const inEtcd = etcdOf(byEtcd, n);
    // what differs, with etcd's owner and every agent's log lines about it, to tell a slow agent from a lost claim
    const differ = [...blocks.filter((b) => !inEtcd.includes(b)), ...inEtcd.filter((b) => !blocks.includes(b))];
    const story = differ
      .map((b) => {
        const lines = nodes.flatMap((m) => (m.agent?.log ?? "").split("\n").filter((l) => l.includes(b)));
        return `${b}: etcd says ${byEtcd.get(b) ?? "nobody"}\n  ${lines.join("\n  ")}`;
      })
      .join("\n");
    expect(blocks, `${n.name}'s file\n${story}`).toEqual(inEtcd);
    for (const ip of last.leases[i]!) {
      expect(seen.get(ip), `${ip} leased on ${seen.get(ip)} and ${n.name}`).toBeUndefined();
      seen.set(ip, n.name);
      expect(
        blocks.some((b) => inCidr(ip, b)),
        `${ip} on ${n.name} outside its blocks ${blocks}`,
      ).toBe(true);
    }
  }
}

interface Churn {
  adds: number;
  dels: number;
  failures: Outcome[];
  /** an address handed out while another container, on any node, held it */
  duplicates: string[];
  latencies: number[];
}

/**
 * `workers` parallel workers per node, `ops` ADDs and DELs in all: each worker adds containers and deletes a random
 * one of its own once it holds `hold`. Every ADD's address is checked against what is held across the cluster.
 */
async function churn(
  net: NetSpec,
  ops: number,
  workers = 8,
  hold = 10,
  onOp?: (done: number) => Promise<void>,
  drain = false,
) {
  const held = new Map<string, { node: string; id: string; releasing: boolean }>();
  const c: Churn = { adds: 0, dels: 0, failures: [], duplicates: [], latencies: [] };
  let started = 0;

  const worker = async (node: ClusterNode, w: number) => {
    const mine: { id: string; ip: string }[] = [];
    while (started < ops) {
      started++;
      if (onOp) await onOp(started);
      if (mine.length < hold || (mine.length < 2 * hold && Math.random() < 0.5)) {
        const id = `${node.name}-${w}-${next++}`;
        const t0 = performance.now();
        const o = await node.add(net, id);
        c.latencies.push(performance.now() - t0);
        c.adds++;
        if (o.status !== 0) {
          c.failures.push(o);
          continue;
        }
        const ip = o.json.ips[0].address.split("/")[0] as string;
        const other = held.get(ip);
        if (other && !other.releasing) c.duplicates.push(`${ip}: ${other.node}/${other.id} and ${node.name}/${id}`);
        held.set(ip, { node: node.name, id, releasing: false });
        mine.push({ id, ip });
      } else {
        const [gone] = mine.splice(Math.floor(Math.random() * mine.length), 1);
        const h = held.get(gone!.ip);
        if (h?.id === gone!.id) h.releasing = true;
        const o = await node.del(net, gone!.id);
        c.dels++;
        if (o.status !== 0) c.failures.push(o);
        if (held.get(gone!.ip)?.id === gone!.id) held.delete(gone!.ip);
      }
    }
    // drain: every container of this worker deleted at the end
    for (const gone of drain ? mine.splice(0) : []) {
      const h = held.get(gone.ip);
      if (h?.id === gone.id) h.releasing = true;
      const o = await node.del(net, gone.id);
      c.dels++;
      if (o.status !== 0) c.failures.push(o);
      if (held.get(gone.ip)?.id === gone.id) held.delete(gone.ip);
    }
  };
  await Promise.all(nodes.flatMap((n) => Array.from({ length: workers }, (_, w) => worker(n, w))));
  return c;
}

const percentile = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) * p)]!;

describe("cluster pools on etcd", () => {
  afterEach(async () => {
    // every member back, and every agent running with the default flags, whatever the test did
    for (let i = 0; i < 3; i++) if (!etcd.alive(i)) await etcd.restart(i);
    for (const n of nodes) {
      if (n.agent && n.agent.child.exitCode === null && n.agent.child.signalCode === null && !n.custom) continue;
      await n.agent?.stop();
      n.custom = false;
      await n.startAgent(etcd, stops);
    }
  });

  it("each node claims a block at once; an ADD gets an address inside a block etcd says is its node's", async () => {
    const net = network();
    await until("a block on every node", () => nodes.every((n) => n.blocks(net).length > 0));
    for (const n of nodes) {
      const o = await n.add(net, `${n.name}-first`);
      expect(o.status, o.stdout).toBe(0);
      const ip = o.json.ips[0].address.split("/")[0];
      const block = [...owners(net)].find(([b]) => inCidr(ip, b));
      expect(block?.[1]).toBe(n.name);
    }
    await expectConsistent(net);
    const pool = JSON.parse(poolView(nodes[0]!, net)) as {
      networks: { blocks: { node: string }[]; freeBlocks: string; totalBlocks: string }[];
    };
    expect(pool.networks[0]!.totalBlocks).toBe("64");
    expect(new Set(pool.networks[0]!.blocks.map((b) => b.node))).toEqual(new Set(["node-a", "node-b", "node-c"]));
  });

  it("load: 3 nodes x 8 workers, 3,000 ADD/DEL on blocks smaller than the load needs: no address held twice", async () => {
    const net = network();
    const c = await churn(net, 3000, 8, 10);
    console.log(
      `cluster load: ${c.adds} ADDs, ${c.dels} DELs, ${c.failures.length} failures, ${c.duplicates.length} duplicates; ` +
        `ADD p50 ${percentile(c.latencies, 0.5).toFixed(1)} ms, p99 ${percentile(c.latencies, 0.99).toFixed(1)} ms; ` +
        `blocks claimed: ${owners(net).size}`,
    );
    expect(c.duplicates).toEqual([]);
    expect(c.failures.map((f) => f.json?.msg)).toEqual([]);
    expect(owners(net).size).toBeGreaterThan(3); // more than one block per node was needed
    await expectConsistent(net);
  });

  it("the etcd leader killed mid-run: no duplicate, failures only code 11 with a clear message, claims go on", async () => {
    const net = network();
    let killedAt = 0;
    const c = await churn(net, 1500, 8, 10, async (done) => {
      if (killedAt === 0 && done >= 400) {
        killedAt = done;
        await etcd.kill(await etcd.leader());
      }
    });
    const blocksAfterKill = owners(net).size;
    console.log(
      `leader killed after ${killedAt} of 1500 operations: ${c.failures.length} failures, ${c.duplicates.length} duplicates, ${blocksAfterKill} blocks`,
    );
    expect(c.duplicates).toEqual([]);
    for (const f of c.failures) {
      expect(f.json.code, f.stdout).toBe(11);
      expect(f.json.msg).toMatch(
        new RegExp(
          `^failed to allocate for range 0: cluster network cn\\d+: no free address in this node's blocks, and no block could be claimed: ${CLAIM_FAILED_ON_ETCD.source}`,
        ),
      );
    }
    // a leader again (two members elect one): claims work, whoever leads
    const more = await churn(net, 600, 8, 5);
    expect(more.duplicates).toEqual([]);
    expect(more.failures.map((f) => f.json?.msg ?? f.stdout)).toEqual([]);
    expect(owners(net).size).toBeGreaterThan(blocksAfterKill);
    await expectConsistent(net);
  });

  it("quorum lost: ADDs from owned blocks keep working; one that needs a claim fails with code 11 in bounded time", async () => {
    const net = network([[{ subnet: `10.${200 + netCount}.0.0/24`, blockSize: 28 }]], { claimTimeout: "3s" });
    const n = nodes[0]!;
    await until("node-a's headroom", () => n.blocks(net).reduce((a, b) => a + Number(b.free), 0) >= 8);
    await etcd.kill(1);
    await etcd.kill(2);
    const free = n.blocks(net).reduce((a, b) => a + Number(b.free), 0);
    for (let i = 0; i < free; i++) {
      const o = await n.add(net, `owned-${i}`);
      expect(o.status, o.stdout).toBe(0);
    }
    const t0 = performance.now();
    const o = await n.add(net, "needs-a-claim");
    const took = performance.now() - t0;
    console.log(`quorum lost: ${free} ADDs from owned blocks, then a claim failed in ${took.toFixed(0)} ms`);
    expect(o.json.code).toBe(11);
    expect(o.json.msg).toMatch(new RegExp(`no block could be claimed: ${CLAIM_FAILED_ON_ETCD.source}`));
    expect(took).toBeLessThan(3000 + 5000); // the claim timeout, and room for a slow machine
    await etcd.restart(1);
    await etcd.restart(2);
    const again = await n.add(net, "after-quorum");
    expect(again.status, again.stdout).toBe(0);
    await expectConsistent(net);
  });

  it("the agent SIGKILLed between its etcd claim and its blocks file: on restart the block is recovered, none lost or doubled", async () => {
    const n = nodes[2]!;
    expect(await n.agent!.stop()).toBe(0);
    const net = network();
    await n.startAgent(etcd, stops, [], { LOCAL_IPAM_AGENT_FAULT: "kill:after-claim" }).catch(() => undefined);
    await n.agent!.exit;
    expect(n.agent!.child.signalCode).toBe("SIGKILL");
    const claimed = [...owners(net)].filter(([, owner]) => owner === n.name).map(([b]) => b);
    expect(claimed).toHaveLength(1);
    expect(n.blocks(net)).toEqual([]); // claimed in etcd, never written
    await n.startAgent(etcd, stops);
    await until("the block back in the file", () => n.blocks(net).length > 0);
    expect(n.blocks(net).map((b) => b.block.slice(2))).toEqual(claimed);
    expect(await n.agent!.metric("local_ipam_cluster_blocks_recovered_total", { network: net.name })).toBe(1);
    expect([...owners(net)].filter(([, owner]) => owner === n.name).map(([b]) => b)).toEqual(claimed);
    expect((await n.add(net, "after-recovery")).status).toBe(0);
    await expectConsistent(net);
  });

  it("blocks returned while ADDs race for them: never an address handed out twice, from a returned block or any", async () => {
    // agents that return a block as soon as it is empty, while the others keep 2 free addresses
    for (const n of nodes) {
      await n.agent!.stop();
      n.custom = true;
      await n.startAgent(etcd, stops, ["--block-idle", "1ms", "--headroom", "2"]);
    }
    const net = network([[{ subnet: `10.${200 + netCount}.0.0/24`, blockSize: 29 }]]);
    // many addresses held, then one per node at a walking pace: blocks empty out and go back while every node
    // goes on adding and deleting in them (the pace only spreads the work out; nothing waits on it)
    const high = await churn(net, 1200, 4, 6, undefined, true);
    const low = await churn(net, 600, 1, 1, () => new Promise((r) => setTimeout(r, 10)));
    let returned = 0;
    for (const n of nodes)
      returned += await n.agent!.metric("local_ipam_cluster_blocks_returned_total", { network: net.name });
    const failures = [...high.failures, ...low.failures];
    console.log(
      `returns racing ADDs: ${high.adds + low.adds} ADDs, ${high.dels + low.dels} DELs, ${returned} blocks returned, ${failures.length} failures`,
    );
    expect([...high.duplicates, ...low.duplicates]).toEqual([]);
    expect(returned).toBeGreaterThan(0);
    for (const f of failures) expect(f.json.code, f.stdout).toBe(11); // a small pool: a claim may find none free for a while
    await expectConsistent(net);
  });

  it("the agent down: ADDs from owned blocks work; then the plugin says why; STATUS fails only then", async () => {
    const net = network();
    const n = nodes[1]!;
    await until("node-b's headroom", () => n.blocks(net).reduce((a, b) => a + Number(b.free), 0) >= 8);
    await n.agent!.stop();
    const status = () => run(LOCAL_IPAM, { command: "STATUS" }, { ...n.netconf(net), cniVersion: "1.1.0" });
    expect(status().status).toBe(0);
    const free = n.blocks(net).reduce((a, b) => a + Number(b.free), 0);
    for (let i = 0; i < free; i++) expect((await n.add(net, `no-agent-${i}`)).status).toBe(0);
    const o = await n.add(net, "one-too-many");
    expect(o.json.code).toBe(11);
    expect(o.json.msg).toMatch(
      /the node agent at .*agent\.sock is not answering \(connect: (no such file or directory|connection refused)\)/,
    );
    const s = status();
    expect([s.status, s.json.code]).toEqual([1, 50]);
    expect(s.json.msg).toMatch(/^plugin not available: cluster network cn\d+: no free address/);
    await n.startAgent(etcd, stops);
    expect(status().status).toBe(0);
    expect((await n.add(net, "agent-back")).status).toBe(0);
    await expectConsistent(net);
  });

  it("a node recreated under the same name with an empty disk: its new agent takes back what etcd says it owns", async () => {
    const net = network();
    const c = nodes[2]!;
    await until("node-c's headroom", () => c.blocks(net).length > 0);
    for (let i = 0; i < 20; i++) expect((await c.add(net, `before-rebuild-${i}`)).status).toBe(0);
    const owned = () =>
      [...owners(net)]
        .filter(([, o]) => o === "node-c")
        .map(([b]) => b)
        .sort();
    const before = owned();
    expect(before.length).toBeGreaterThan(1);
    await c.agent!.stop();
    removeDir(c.dataDir); // the node is gone with its disk; a new one joins under the same name
    await c.startAgent(etcd, stops);
    await until("node-c's file to hold its blocks again", () => c.blocks(net).length >= before.length);
    expect(
      c
        .blocks(net)
        .map((b) => b.block.slice(2))
        .sort(),
    ).toEqual(before);
    expect(await c.agent!.metric("local_ipam_cluster_blocks_recovered_total", { network: net.name })).toBe(
      before.length,
    );
    // allocating again from the first of them, as on any node; nobody else got them meanwhile
    const o = await c.add(net, "after-rebuild");
    expect(o.status, o.stdout).toBe(0);
    expect(before.some((b) => inCidr(o.json.ips[0].address.split("/")[0], b))).toBe(true);
    await expectConsistent(net);
  });

  it("a node whose conflist cuts the network into other blocks: its claims are refused, saying why; fixed, it claims", async () => {
    const [a, b, c] = nodes as [ClusterNode, ClusterNode, ClusterNode];
    const subnet = `10.${200 + netCount}.0.0/22`;
    const net: NetSpec = { name: `cn${netCount++}`, ranges: [[{ subnet, blockSize: 28 }]] };
    a.addNetwork(net);
    b.addNetwork(net);
    await until("node-a's first block (the grid recorded)", () => a.blocks(net).length > 0);
    const other: NetSpec = { ...net, ranges: [[{ subnet, blockSize: 27 }]] };
    c.addNetwork(other);
    const refused = await runAsync(LOCAL_IPAM, { command: "ADD", containerId: "wrong-grid" }, c.netconf(other));
    expect(refused.json.code, refused.stdout).toBe(11);
    expect(refused.json.msg).toMatch(/cut into other blocks than the cluster's \(10\.\d+\.0\.0\/22=28\)/);
    expect(c.blocks(other)).toEqual([]);
    expect(
      await c.agent!.metric("local_ipam_cluster_claims_total", { network: net.name, result: "grid" }),
    ).toBeGreaterThan(0);
    expect((await a.add(net, "right-grid")).status).toBe(0);
    c.addNetwork(net);
    const fixed = await c.add(net, "grid-fixed");
    expect(fixed.status, fixed.stdout).toBe(0);
    await expectConsistent(net);
  });

  it("blocks with nothing to hand out (all excluded) are returned at once and never claimed again; the usable one is", async () => {
    const a = nodes[0]!;
    const base = `10.${200 + netCount}.0`;
    const net: NetSpec = {
      name: `cn${netCount++}`,
      ranges: [
        [{ subnet: `${base}.0/26`, blockSize: 28, exclude: [`${base}.0/28`, `${base}.16/28`, `${base}.32/28`] }],
      ],
    };
    a.addNetwork(net); // on node-a alone
    const o = await a.add(net, "in-the-usable-block");
    expect(o.status, o.stdout).toBe(0);
    expect(o.json.ips[0].address).toBe(`${base}.48/26`);
    await until("node-a's headroom settled", () => a.blocks(net).length === 1);
    expect([...owners(net)]).toEqual([[`${base}.48/28`, "node-a"]]);
  });

  it("240 one-address blocks with nothing to hand out: none is ever claimed, the usable ones are found", async () => {
    const a = nodes[0]!;
    const base = `10.${200 + netCount}.0`;
    const net: NetSpec = {
      name: `cn${netCount++}`,
      ranges: [
        [
          {
            subnet: `${base}.0/24`,
            blockSize: 32,
            exclude: [`${base}.0/25`, `${base}.128/26`, `${base}.192/27`, `${base}.224/28`],
          },
        ],
      ],
    };
    const logBefore = a.agent!.log.length;
    a.addNetwork(net); // on node-a alone
    for (let i = 0; i < 5; i++) {
      const o = await a.add(net, `usable-${i}`);
      expect(o.status, o.stdout).toBe(0);
      expect(Number(o.json.ips[0].address.split("/")[0].split(".")[3])).toBeGreaterThanOrEqual(240);
    }
    for (const [block] of owners(net)) expect(Number(block.split("/")[0]!.split(".")[3])).toBeGreaterThanOrEqual(240);
    expect(a.agent!.log.slice(logBefore)).not.toContain("without an allocatable address");
  });

  it("blockSize changed in place (grid key deleted): old blocks' leases stay protected, their addresses go to nobody else", async () => {
    const [a, b] = nodes as [ClusterNode, ClusterNode];
    const base = `10.${200 + netCount}.0`;
    const net: NetSpec = { name: `cn${netCount++}`, ranges: [[{ subnet: `${base}.0/24`, blockSize: 26 }]] };
    const ask = (n: ClusterNode, spec: NetSpec, id: string, ip?: string) =>
      runAsync(LOCAL_IPAM, { command: "ADD", containerId: id, args: ip ? `IP=${ip}` : undefined }, n.netconf(spec));
    // node-b gets the network only once node-a holds the .128/26: its headroom claim could otherwise take that block
    a.addNetwork(net);
    for (const ip of ["130", "140"]) expect((await ask(a, net, `old-${ip}`, `${base}.${ip}`)).status).toBe(0);
    expect(owners(net).get(`${base}.128/26`)).toBe("node-a");
    b.addNetwork(net);
    // the operator's change: blocks of 16 from now on, on every node; the recorded grid deleted by hand
    const small: NetSpec = { ...net, ranges: [[{ subnet: `${base}.0/24`, blockSize: 28 }]] };
    const logs = [a.agent!.log.length, b.agent!.log.length];
    a.addNetwork(small);
    b.addNetwork(small);
    // once both agents run the new conflist (each wants a block of the new size and is refused the old grid),
    // the operator deletes the grid the old conflist recorded
    await until("both agents on the new conflist", () =>
      [a, b].every((n, i) => n.agent!.log.slice(logs[i]).includes("not claiming: this node's block grid")),
    );
    etcd.etcdctl(["del", `/local-ipam/${net.name}/grid`]);
    // node-a claims the new block that holds its old leases
    await until("node-a to hold the /28 under its leases", () => owners(small).get(`${base}.128/28`) === "node-a");
    expect(a.blocks(small).map((x) => x.block)).toContain(`0:${base}.128/28`);
    // nobody else gets an address of the old /26 while it is node-a's
    const inOld = (o: Outcome) => o.status === 0 && inCidr(o.json.ips[0].address.split("/")[0], `${base}.128/26`);
    const b131 = await ask(b, small, "b-131", `${base}.131`);
    expect(b131.status, b131.stdout).toBe(1);
    const b150 = await ask(b, small, "b-150", `${base}.150`);
    expect(b150.status).toBe(1);
    for (let i = 0; i < 24; i++) {
      const o = await ask(b, small, `b-any-${i}`);
      expect(o.status, o.stdout).toBe(0);
      expect(inOld(o), o.json.ips[0].address).toBe(false);
    }
    // node-a asking for an address of its own old block gets that address's new block, at once
    const a150 = await ask(a, small, "a-150", `${base}.150`);
    expect(a150.status, a150.stdout).toBe(0);
    expect(owners(small).get(`${base}.144/28`)).toBe("node-a");
  });

  it("agent socket: a client that sends no whole request is cut (past 64 KiB at once, silent ones after the wait); others are served meanwhile", async () => {
    const b = nodes[1]!;
    const sockets: Socket[] = [];
    const open = async (data?: string) => {
      const s = createConnection(b.socket);
      sockets.push(s);
      const closed = new Promise<void>((r) => s.on("close", () => r()));
      // a socket that is not there fails the test at once; after connecting, errors (EPIPE on a cut) are expected
      await new Promise<void>((resolve, reject) => {
        s.once("error", reject);
        s.once("connect", () => {
          s.off("error", reject);
          s.on("error", () => undefined);
          resolve();
        });
      });
      if (data !== undefined) s.write(data);
      return { s, closed };
    };
    try {
      const silent = await open();
      const partial = await open('{"op":"ping"'); // no newline: not yet a request
      const flood = await open("x".repeat(70 << 10));
      await flood.closed;
      expect(silent.s.destroyed || partial.s.destroyed, "the idle ones were cut before the flood").toBe(false);
      // the agent still answers others while those two hold their sockets
      const asking = await open('{"op":"ping"}\n');
      let answer = "";
      asking.s.on("data", (d) => (answer += d));
      await asking.closed;
      expect(JSON.parse(answer)).toMatchObject({ ok: true, node: "node-b" });
      // and the idle ones are cut too, once the request wait (10 s) is over: a hang here fails on the test's timeout
      await Promise.all([silent.closed, partial.closed]);
    } finally {
      for (const s of sockets) s.destroy();
    }
  }, 60_000);

  it("release-node: refused while the node lives; after its agent stopped, its blocks return; back, it claims again what it uses", async () => {
    const net = network();
    const [a, , c] = nodes as [ClusterNode, ClusterNode, ClusterNode];
    await until("blocks on every node", () => nodes.every((n) => n.blocks(net).length > 0));
    const held = await c.add(net, "keeps-running");
    const ip = held.json.ips[0].address.split("/")[0];
    const release = (...args: string[]) =>
      spawnSync(LOCAL_IPAM, ["release-node", ...args, "--socket", a.socket, "--network", net.name], {
        encoding: "utf8",
      });
    const refused = release("node-c");
    expect(refused.status).toBe(1);
    expect(refused.stdout).toContain("node node-c is alive");
    await c.agent!.stop();
    // its liveness outlives the agent by the TTL (6 s here; renewed every 2 s, so a slow machine does not let it lapse): a restart must not look like a death
    let done = release("node-c");
    await until("node-c's liveness to end", () => (done = release("node-c")).status === 0, 30_000);
    expect(done.status, done.stderr).toBe(0);
    expect(done.stdout).toMatch(/^released cn\d+ 10\./);
    expect([...owners(net).values()]).not.toContain("node-c");
    // back: the block with a running pod's address is claimed again, the empty ones are dropped
    await c.startAgent(etcd, stops);
    await until("node-c's file to match etcd", () => {
      const mine = [...owners(net)]
        .filter(([, o]) => o === "node-c")
        .map(([b]) => b)
        .sort();
      return (
        c
          .blocks(net)
          .map((b) => b.block.slice(2))
          .sort()
          .join() === mine.join() && mine.length > 0
      );
    });
    expect([...owners(net)].find(([b]) => inCidr(ip, b))?.[1]).toBe("node-c");
    await expectConsistent(net);
    // forced, on a live node whose agent is away: what another node takes meanwhile, node-a drops at once, loudly,
    // when its agent is back; what nobody took, it claims back
    const b = nodes[1]!;
    for (let i = 0; i < 10; i++) expect((await a.add(net, `on-a-${i}`)).status).toBe(0);
    await until("node-a's headroom: a second block", () => a.blocks(net).length > 1);
    await a.agent!.stop();
    const aBlocks = a.blocks(net);
    const forced = spawnSync(
      LOCAL_IPAM,
      ["release-node", "node-a", "--force", "--socket", b.socket, "--network", net.name],
      { encoding: "utf8" },
    );
    expect(forced.status, forced.stderr).toBe(0);
    // node-b takes an empty one; the ones with node-a's pods in them node-a must get back
    const taken = aBlocks.find((x) => x.used === 0)!.block.slice(2);
    const kept = aBlocks.filter((x) => x.used > 0).map((x) => x.block.slice(2));
    expect(kept.length).toBeGreaterThan(0);
    const wanted = taken.replace(/\.(\d+)\/\d+$/, (_, last) => `.${Number(last) + 2}`);
    const onB = await runAsync(
      LOCAL_IPAM,
      { command: "ADD", containerId: "takes-a-block", args: `IP=${wanted}` },
      b.netconf(net),
    );
    expect(onB.status, onB.stdout).toBe(0);
    expect(owners(net).get(taken)).toBe("node-b");
    await a.startAgent(etcd, stops);
    await until(
      "node-a to drop node-b's block",
      async () => (await a.agent!.metric("local_ipam_cluster_blocks_dropped_total", { network: net.name })) > 0,
    );
    await until("node-a to claim back those with its pods", () =>
      kept.every((blk) => owners(net).get(blk) === "node-a"),
    );
    expect(a.blocks(net).map((x) => x.block.slice(2))).not.toContain(taken);
    await expectConsistent(net);
  });
});

/** `local-ipam pool --json`, asked of node n's agent. */
function poolView(n: ClusterNode, net: NetSpec): string {
  return spawnSync(LOCAL_IPAM, ["pool", "--socket", n.socket, "--network", net.name, "--json"], { encoding: "utf8" })
    .stdout;
}
