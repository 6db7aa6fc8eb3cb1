// The block registry on etcd (src/cluster/etcd-registry.ts), each verb against a real 1-member etcd: two nodes
// racing for the same blocks (exactly one owner each, the owner index agreeing), release only of an unchanged
// record, liveness and published use, a value that is not ours, and etcd's failures as RegistryError.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EtcdCluster } from "../../conformance/etcd/harness.js";
import { EtcdClient } from "../../src/cluster/etcd.js";
import { EtcdRegistry } from "../../src/cluster/etcd-registry.js";
import { GridMismatch, RegistryError } from "../../src/cluster/registry.js";
import { until } from "../agent-process.js";

let cluster: EtcdCluster;
const clients: EtcdClient[] = [];
beforeAll(async () => {
  cluster = await EtcdCluster.start({ members: 1, tls: false });
}, 60_000);
afterAll(async () => {
  for (const c of clients) c.close();
  await cluster?.stop();
});

const GRID = "10.0.0.0/8=26,fd00::/64=122";
let prefixes = 0;
/** Registries of the named nodes on one fresh prefix, each with its own client (connections). */
async function registries(...nodes: string[]) {
  const prefix = `/reg${prefixes++}`;
  const bad: string[] = [];
  const regs = nodes.map((node) => {
    const c = new EtcdClient({ endpoints: cluster.endpoints, requestTimeoutMs: 2000, timeoutMs: 10_000 });
    clients.push(c);
    return new EtcdRegistry(c, prefix, node, 5, (key) => bad.push(key));
  });
  for (const r of regs) for (const net of ["net", "nodes"]) await r.useGrid(net, GRID);
  return { prefix, regs, bad };
}

describe("the block registry on etcd", () => {
  it("two nodes claiming the same 40 blocks at once: exactly one owner each, and each owner's index says so", async () => {
    const {
      regs: [a, b],
    } = await registries("node-a", "node-b");
    const cidrs = Array.from({ length: 40 }, (_, i) => `10.1.${i}.0/26`);
    const wins = await Promise.all(
      cidrs.map(async (c) => {
        const [x, y] = await Promise.all([a!.claim("net", 0, c), b!.claim("net", 0, c)]);
        return { c, x, y };
      }),
    );
    for (const w of wins) expect(Number(w.x) + Number(w.y), w.c).toBe(1);
    const all = await a!.blocks("net");
    expect([...all.keys()].sort()).toEqual([...cidrs].sort());
    const ofA = wins.filter((w) => w.x).map((w) => w.c);
    expect((await b!.ownedBy("net", "node-a")).sort()).toEqual(ofA.sort());
    expect((await a!.ownedBy("net", "node-b")).length).toBe(40 - ofA.length);
    for (const [c, r] of all) expect(r.node).toBe(ofA.includes(c) ? "node-a" : "node-b");
    // claiming a block one already owns: true for its owner, false for the other
    const mine = ofA[0] ?? wins[0]!.c;
    const owner = ofA[0] ? a! : b!;
    const other = ofA[0] ? b! : a!;
    expect(await owner.claim("net", 0, mine)).toBe(false); // create-if-absent: already there
    expect((await other.owner("net", mine))?.node).toBe(owner.node);
  });

  it("release frees a block only while its record is unchanged; the owner index goes with it", async () => {
    const {
      regs: [a, b],
    } = await registries("node-a", "node-b");
    expect(await a!.claim("net", 1, "fd00::40/122")).toBe(true);
    const stale = (await a!.owner("net", "fd00::40/122"))!;
    expect(stale).toMatchObject({ node: "node-a", set: 1 });
    expect(await b!.release("net", "fd00::40/122", stale)).toBe(true); // an operator's release-node, from b
    expect(await a!.owner("net", "fd00::40/122")).toBeUndefined();
    expect(await a!.ownedBy("net", "node-a")).toEqual([]);
    // claimed again by b: a's old record frees nothing
    expect(await b!.claim("net", 1, "fd00::40/122")).toBe(true);
    expect(await a!.release("net", "fd00::40/122", stale)).toBe(false);
    expect((await a!.owner("net", "fd00::40/122"))?.node).toBe("node-b");
    expect(await b!.ownedBy("net", "node-b")).toEqual(["fd00::40/122"]);
  });

  it("keep: a new version of a node's record, so that a release of the old one sent earlier cannot apply", async () => {
    const {
      regs: [a],
    } = await registries("node-a");
    expect(await a!.claim("net", 0, "10.3.0.0/26")).toBe(true);
    const before = (await a!.owner("net", "10.3.0.0/26"))!;
    expect(await a!.keep("net", "10.3.0.0/26", before)).toBe(true);
    const after = (await a!.owner("net", "10.3.0.0/26"))!;
    expect(after).toMatchObject({ node: "node-a", set: 0, claimed: before.claimed });
    expect(after.version).not.toBe(before.version);
    // the release made on the old version (its answer lost, applied late) frees nothing
    expect(await a!.release("net", "10.3.0.0/26", before)).toBe(false);
    expect((await a!.owner("net", "10.3.0.0/26"))?.node).toBe("node-a");
    expect(await a!.ownedBy("net", "node-a")).toEqual(["10.3.0.0/26"]);
    // and keep of a stale version does nothing
    expect(await a!.keep("net", "10.3.0.0/26", before)).toBe(false);
  });

  it("liveness: made on the first heartbeat, renewed after, gone after its TTL without one; use rides on it", async () => {
    const {
      regs: [a, b],
    } = await registries("node-a", "node-b");
    expect(await a!.alive("node-a")).toBe(false);
    await expect(a!.publish("net", { "10.0.0.0/26": 3 })).rejects.toBeInstanceOf(RegistryError); // not alive yet
    expect(await a!.heartbeat()).toBe(true);
    expect(await a!.heartbeat()).toBe(false);
    await a!.publish("net", { "10.0.0.0/26": 3 });
    await a!.publish("nodes", {}); // a network named "nodes" is not a node
    expect(await b!.alive("node-a")).toBe(true);
    expect(await b!.alive("node-b")).toBe(false);
    expect(await b!.liveNodes()).toEqual(new Set(["node-a"]));
    expect(await b!.usage("net")).toEqual(new Map([["node-a", { "10.0.0.0/26": 3 }]]));
    // no more heartbeats: etcd ends the lease after its TTL (5 s here), and everything on it
    await until("node-a's liveness to expire", async () => !(await b!.alive("node-a")), 30_000);
    expect((await b!.usage("net")).size).toBe(0);
    expect(await a!.heartbeat()).toBe(true); // back: made anew
    expect(await b!.alive("node-a")).toBe(true);
  }, 60_000);

  it("a value under the registry's keys that is not a block record: reported and passed over", async () => {
    const {
      prefix,
      regs: [a],
      bad,
    } = await registries("node-a");
    cluster.etcdctl(["put", `${prefix}/net/blocks/10.9.0.0/26`, "not json"]);
    cluster.etcdctl(["put", `${prefix}/net/blocks/10.9.0.64/26`, '{"node":7}']);
    expect(await a!.claim("net", 0, "10.9.0.128/26")).toBe(true);
    expect([...(await a!.blocks("net")).keys()]).toEqual(["10.9.0.128/26"]);
    expect(await a!.owner("net", "10.9.0.0/26")).toBeUndefined();
    expect(bad).toContain(`${prefix}/net/blocks/10.9.0.0/26`);
    expect(bad).toContain(`${prefix}/net/blocks/10.9.0.64/26`);
    // and nobody can claim over it: it is not free either
    expect(await a!.claim("net", 0, "10.9.0.0/26")).toBe(false);
  });

  it("one block grid per network: set by the first node, extended by a node with more ranges, else refused", async () => {
    const {
      prefix,
      regs: [a, b, c],
    } = await registries("node-a", "node-b", "node-c");
    const wider = `${GRID},10.200.0.0/16=28`;
    // b's config adds a range: the grid grows; a, which lacks that range, names its blocks alike: still served
    await b!.useGrid("net", wider);
    expect(await b!.claim("net", 0, "10.200.0.16/28")).toBe(true);
    expect(await a!.claim("net", 0, "10.0.0.64/26")).toBe(true); // its txn saw the grid move, agreed again
    await a!.useGrid("net", GRID); // a rollback to fewer ranges is accepted too
    // another block size for the same subnet: refused, saying both
    const other = await c!.useGrid("net", "10.0.0.0/8=24,10.200.0.0/16=28,fd00::/64=122").catch((e) => e);
    expect(other).toBeInstanceOf(GridMismatch);
    expect(other.message).toContain("10.0.0.0/8=24");
    expect(other.message).toContain(wider);
    // and a node agreed on the old grid whose grid no longer fits is refused at its next claim
    await c!.useGrid("net", wider);
    cluster.etcdctl(["put", `${prefix}/net/grid`, "10.0.0.0/8=24"]); // an operator's hand
    const moved = await c!.claim("net", 0, "10.0.1.0/26").catch((e) => e);
    expect(moved).toBeInstanceOf(GridMismatch);
    expect(await a!.owner("net", "10.0.1.0/26")).toBeUndefined();
  });

  it("etcd not reachable: every verb fails with RegistryError, nothing else", async () => {
    const c = new EtcdClient({ endpoints: ["http://127.0.0.1:1"], requestTimeoutMs: 200, timeoutMs: 500 });
    clients.push(c);
    const r = new EtcdRegistry(c, "/x", "node-a", 5);
    for (const call of [
      () => r.useGrid("net", GRID),
      () => r.claim("net", 0, "10.0.0.0/26"),
      () => r.owner("net", "10.0.0.0/26"),
      () => r.blocks("net"),
      () => r.ownedBy("net", "node-a"),
      () => r.release("net", "10.0.0.0/26", { node: "node-a", set: 0, claimed: 0, version: "1" }),
      () => r.keep("net", "10.0.0.0/26", { node: "node-a", set: 0, claimed: 0, version: "1" }),
      () => r.heartbeat(),
      () => r.alive("node-a"),
      () => r.liveNodes(),
      () => r.usage("net"),
    ])
      await expect(call()).rejects.toBeInstanceOf(RegistryError);
  });
});
