// The etcd client (src/cluster/etcd.ts) against real etcd clusters started by conformance/etcd/harness.ts: every
// call on a 1-member plain-HTTP cluster and on a 3-member TLS cluster with client-certificate auth, cross-checked
// with etcdctl where it can see the effect; a create-if-absent race between two clients; failover when the
// leader is SIGKILLed; quorum loss. Failures are asserted on the error's class, never on elapsed time.
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { buildSync } from "esbuild";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EtcdCluster, freePorts } from "../../conformance/etcd/harness.js";
import { type Compare, EtcdClient, type EtcdClientOptions, EtcdError, readTlsFiles } from "../../src/cluster/etcd.js";

const ROOT = resolve(__dirname, "..", "..");

function clientOf(cluster: EtcdCluster, opts: Partial<EtcdClientOptions> = {}): EtcdClient {
  return new EtcdClient({
    endpoints: cluster.endpoints,
    tls: cluster.clientTls ? readTlsFiles(cluster.clientTls) : undefined,
    requestTimeoutMs: 1000,
    timeoutMs: 10_000,
    ...opts,
  });
}

/** The EtcdError a call fails with (anything else, or success, fails the test). */
async function failure(p: Promise<unknown>): Promise<EtcdError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof EtcdError) return e;
    throw e;
  }
  throw new Error("expected the call to fail with an EtcdError");
}

/** A port nothing listens on (it was free a moment ago). */
async function deadPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}

/** How many endpoints etcdctl finds healthy. */
const healthyCount = (cluster: EtcdCluster) =>
  (JSON.parse(cluster.etcdctl(["endpoint", "health", "-w", "json"])) as { health: boolean }[]).filter((h) => h.health)
    .length;

/** etcdctl prints lease IDs in hex. */
const leaseIds = (cluster: EtcdCluster) =>
  cluster
    .etcdctl(["lease", "list"])
    .split("\n")
    .slice(1)
    .filter((l) => /^[0-9a-f]+$/.test(l.trim()))
    .map((h) => BigInt(`0x${h.trim()}`).toString());

/** Claims `key` with `token` (create-if-absent), riding out unavailability: an indeterminate write is settled by
 * reading the key back. Returns whether the token is the key's owner, and how many tries it took. */
async function claim(
  c: EtcdClient,
  key: string,
  token: string,
  maxTries = 50,
): Promise<{ owner: boolean; tries: number }> {
  for (let tries = 1; tries <= maxTries; tries++) {
    try {
      const r = await c.txn({
        compare: [{ key, createRevision: 0 }],
        success: [{ put: key, value: token }],
        failure: [{ get: key }],
      });
      if (r.succeeded) return { owner: true, tries };
      const held = r.results[0]?.type === "get" ? r.results[0].kv?.value : undefined;
      return { owner: held === token, tries }; // our own earlier, indeterminate attempt may have won
    } catch (e) {
      if (!(e instanceof EtcdError) || !e.retryable) throw e;
      if (e.indeterminate) {
        try {
          const kv = await c.get(key);
          if (kv) return { owner: kv.value === token, tries };
        } catch (e2) {
          if (!(e2 instanceof EtcdError) || !e2.retryable) throw e2;
        }
      }
    }
  }
  throw new Error(`no answer for ${key} after ${maxTries} tries`);
}

/** Gone, or a zombie waiting for a parent to reap it. */
function gone(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return true;
  }
  try {
    return /^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return true;
  }
}

/** Polls until every pid is gone, for at most `ms`. */
async function allGone(pids: number[], ms = 10_000): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (!pids.every(gone)) {
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 20));
  }
  return true;
}

/** A Node process (the harness bundled by esbuild) that starts a 1-member cluster, prints its pids and directory,
 * then either exits without stop() or waits to be killed. */
async function clusterInAnotherProcess(
  then: "exit" | "wait",
): Promise<{ child: ChildProcess; pids: number[]; dir: string }> {
  const work = mkdtempSync(join(tmpdir(), "local-ipam-harness-test-"));
  try {
    buildSync({
      stdin: {
        contents: `import { EtcdCluster } from ${JSON.stringify(join(ROOT, "conformance/etcd/harness.ts"))};
          const c = await EtcdCluster.start({ members: 3 });
          console.log(JSON.stringify({ pids: [0, 1, 2].map((i) => c.pid(i)), dir: c.dir }));
          if (process.argv[2] === "exit") process.exit(3);
          setInterval(() => {}, 1 << 30);`,
        resolveDir: ROOT,
        loader: "ts",
      },
      bundle: true,
      platform: "node",
      format: "esm",
      outfile: join(work, "child.mjs"),
      logLevel: "silent",
    });
    const child = spawn("node", [join(work, "child.mjs"), then], { stdio: ["ignore", "pipe", "inherit"] });
    const line = await new Promise<string>((resolvePromise, reject) => {
      let out = "";
      child.stdout!.on("data", (d) => {
        out += d;
        if (out.includes("\n")) resolvePromise(out.split("\n")[0]!);
      });
      child.on("exit", (code) => reject(new Error(`child exited ${code} before reporting`)));
    });
    return { child, ...JSON.parse(line) };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

describe("the kind of a failure", () => {
  it("is timeout only when an attempt went unanswered: refusals that use up a short call's time are unavailable", async () => {
    const dead = `http://127.0.0.1:${await deadPort()}`;
    const seen = new Set<string>();
    // call times around the backoff steps (20, 40, 80 ms): a backoff that oversleeps the deadline ends the call
    for (let timeoutMs = 15; timeoutMs <= 90; timeoutMs++) {
      const c = new EtcdClient({ endpoints: [dead], requestTimeoutMs: 1000, timeoutMs });
      try {
        const e = await failure(c.get("k"));
        const unanswered = e.attempts.some((a) => a.error.startsWith("no answer within"));
        expect(e.kind, `${timeoutMs} ms: ${e.message}`).toBe(unanswered ? "timeout" : "unavailable");
        seen.add(e.kind);
      } finally {
        c.close();
      }
    }
    expect(seen.has("unavailable")).toBe(true);
  });
});

describe("the test harness", () => {
  it("stop() kills every member it started, by pid, and removes its directory", async () => {
    const cluster = await EtcdCluster.start({ members: 3 });
    const pids = [0, 1, 2].map((i) => cluster.pid(i)!);
    const dir = cluster.dir;
    try {
      expect(existsSync(dir)).toBe(true);
      for (const pid of pids) expect(() => process.kill(pid, 0)).not.toThrow();
      expect(healthyCount(cluster)).toBe(3);
    } finally {
      await cluster.stop();
    }
    for (const pid of pids) expect(() => process.kill(pid, 0)).toThrow(/ESRCH/);
    expect(existsSync(dir)).toBe(false);
  });

  it("a port taken before etcd binds it: the start tries again with new ports", async () => {
    const squatter = createServer();
    await new Promise<void>((r) => squatter.listen(0, "127.0.0.1", r));
    const taken = (squatter.address() as { port: number }).port;
    let picks = 0;
    try {
      const cluster = await EtcdCluster.start({
        members: 3,
        pickPorts: async (n) => {
          const ports = await freePorts(n);
          if (++picks === 1) ports[3] = taken; // member 2's peer port
          return ports;
        },
      });
      try {
        expect(picks).toBe(2);
        expect(cluster.peerUrls.some((u) => u.endsWith(`:${taken}`))).toBe(false);
        expect(healthyCount(cluster)).toBe(3);
      } finally {
        await cluster.stop();
      }
    } finally {
      squatter.close();
    }
  });

  it("members die with the test process, even when it is SIGKILLed; on a plain exit the directory goes too", async () => {
    const killed = await clusterInAnotherProcess("wait");
    try {
      expect(killed.pids.some(gone)).toBe(false);
      process.kill(killed.child.pid!, "SIGKILL");
      expect(await allGone(killed.pids)).toBe(true); // PR_SET_PDEATHSIG, set by setpriv
    } finally {
      rmSync(killed.dir, { recursive: true, force: true }); // nothing could remove it
    }
    const exited = await clusterInAnotherProcess("exit");
    await new Promise((r) => (exited.child.exitCode !== null ? r(null) : exited.child.once("exit", r)));
    expect(await allGone(exited.pids)).toBe(true);
    expect(existsSync(exited.dir)).toBe(false); // the exit hook
  });
});

const setups = [
  { name: "1 member, plain HTTP", members: 1, tls: false },
  { name: "3 members, TLS with client certificates", members: 3, tls: true },
];

describe.each(setups)("every call, $name", ({ members, tls }) => {
  let cluster: EtcdCluster;
  let c: EtcdClient;
  beforeAll(async () => {
    cluster = await EtcdCluster.start({ members, tls });
    c = clientOf(cluster);
  });
  afterAll(async () => {
    c?.close();
    await cluster?.stop();
  });

  it("the endpoints are what was asked for", () => {
    expect(cluster.endpoints).toHaveLength(members);
    for (const e of cluster.endpoints)
      expect(e).toMatch(tls ? /^https:\/\/127\.0\.0\.1:\d+$/ : /^http:\/\/127\.0\.0\.1:\d+$/);
    expect(cluster.clientTls === undefined).toBe(!tls);
  });

  it("put and get: UTF-8 keys and values both ways, revisions and versions, what etcdctl sees", async () => {
    const key = "pools/réseau-ü/blocks/10.0.0.0/26";
    const value = JSON.stringify({ node: "nœud-1", note: "🙂 漢字" });
    const { revision } = await c.put(key, value);
    expect(revision).toBeGreaterThan(0);
    expect(await c.get(key)).toEqual({ key, value, createRevision: revision, modRevision: revision, version: 1 });
    expect(cluster.etcdctl(["get", key, "--print-value-only"]).trimEnd()).toBe(value);

    const second = await c.put(key, "second");
    expect(second.revision).toBeGreaterThan(revision);
    expect(await c.get(key)).toMatchObject({
      value: "second",
      createRevision: revision,
      modRevision: second.revision,
      version: 2,
    });

    cluster.etcdctl(["put", "from-etcdctl/ключ", "значение ✓"]);
    expect((await c.get("from-etcdctl/ключ"))?.value).toBe("значение ✓");
    expect(await c.get("never/written")).toBeUndefined();
    expect(await c.put("empty/value", "")).toHaveProperty("revision");
    expect((await c.get("empty/value"))?.value).toBe("");
  });

  it("each member answers a linearizable read of what was just written through another", async () => {
    for (let i = 0; i < members; i++) {
      await c.put("everywhere/read", `v${i}`);
      const single = clientOf(cluster, { endpoints: [cluster.endpoints[i]!] });
      try {
        expect((await single.get("everywhere/read"))?.value).toBe(`v${i}`);
      } finally {
        single.close();
      }
    }
  });

  it("range(prefix): exactly the keys under the prefix, in key order", async () => {
    for (const k of ["r/b", "r/a", "r/b/c", "r0", "r", "q", "rü/x", "rü/y", "rüz"]) await c.put(k, `=${k}`);
    const keys = async (p: string) => (await c.range(p)).map((kv) => kv.key);
    expect(await keys("r/")).toEqual(["r/a", "r/b", "r/b/c"]);
    expect(await keys("rü/")).toEqual(["rü/x", "rü/y"]);
    expect(await keys("r")).toEqual(["r", "r/a", "r/b", "r/b/c", "r0", "rü/x", "rü/y", "rüz"]);
    expect(await keys("nothing/")).toEqual([]);
    expect((await c.range("r/b/"))[0]).toMatchObject({ key: "r/b/c", value: "=r/b/c", version: 1 });
  });

  it("deleteRange: one key, or every key under a prefix", async () => {
    for (const k of ["d/1", "d/2", "d/3/x", "d0"]) await c.put(k, "x");
    expect((await c.deleteRange("d/1")).deleted).toBe(1);
    expect((await c.deleteRange("d/none")).deleted).toBe(0);
    const { deleted, revision } = await c.deleteRange("d/", { prefix: true });
    expect(deleted).toBe(2);
    expect(revision).toBeGreaterThan(0);
    expect(await c.range("d")).toEqual([expect.objectContaining({ key: "d0" })]);
    expect(cluster.etcdctl(["get", "--prefix", "d/", "--keys-only"]).trim()).toBe("");
  });

  it("txn: create-if-absent, compare-and-swap on mod revision, value and version compares, reads in a branch", async () => {
    const key = "t/blocks/10.1.0.0/26";
    const createIfAbsent = (token: string) =>
      c.txn({ compare: [{ key, createRevision: 0 }], success: [{ put: key, value: token }], failure: [{ get: key }] });

    const first = await createIfAbsent("owner-a");
    expect(first).toMatchObject({ succeeded: true, results: [{ type: "put" }] });
    const second = await createIfAbsent("owner-b");
    expect(second.succeeded).toBe(false);
    expect(second.results).toEqual([
      { type: "get", kv: expect.objectContaining({ key, value: "owner-a", modRevision: first.revision }) },
    ]);

    // compare-and-swap: only against the revision read
    const kv = (await c.get(key))!;
    const swap = (rev: number, to: string) =>
      c.txn({ compare: [{ key, modRevision: rev }], success: [{ put: key, value: to }], failure: [{ get: key }] });
    const swapped = await swap(kv.modRevision, "owner-c");
    expect(swapped.succeeded).toBe(true);
    expect((await swap(kv.modRevision, "owner-d")).succeeded).toBe(false);
    expect((await c.get(key))?.value).toBe("owner-c");

    const holds = async (cmp: Compare) => (await c.txn({ compare: [cmp] })).succeeded;
    expect(await holds({ key, value: "owner-c" })).toBe(true);
    expect(await holds({ key, value: "owner-a" })).toBe(false);
    expect(await holds({ key, value: "owner-a", op: "!=" })).toBe(true);
    expect(await holds({ key, version: 2 })).toBe(true);
    expect(await holds({ key, version: 1, op: ">" })).toBe(true);
    expect(await holds({ key, createRevision: 0, op: ">" })).toBe(true); // exists
    expect(await holds({ key, modRevision: swapped.revision + 1, op: "<" })).toBe(true);
    expect(await holds({ key: "t/absent", version: 0 })).toBe(true);

    // several ops in one branch, atomically; the results follow the ops
    const multi = await c.txn({
      compare: [{ key, value: "owner-c" }],
      success: [
        { put: "t/nodes/n1", value: "seen" },
        { put: "t/nodes/n2", value: "seen" },
        { range: "t/nodes/" },
        { get: "t/nodes/n3" },
        { delete: key },
      ],
    });
    expect(multi.succeeded).toBe(true);
    expect(multi.results.map((r) => r.type)).toEqual(["put", "put", "range", "get", "delete"]);
    expect(multi.results[2]).toMatchObject({ type: "range", kvs: [{ key: "t/nodes/n1" }, { key: "t/nodes/n2" }] });
    expect(multi.results[3]).toEqual({ type: "get", kv: undefined });
    expect(multi.results[4]).toEqual({ type: "delete", deleted: 1 });
    expect(await c.get(key)).toBeUndefined();

    const cleared = await c.txn({ compare: [], success: [{ deletePrefix: "t/nodes/" }] });
    expect(cleared.results).toEqual([{ type: "delete", deleted: 2 }]);
  });

  it("leases: IDs as exact decimal strings (above 2^53 too), keys on a lease, keep-alive, revoke", async () => {
    const lease = await c.leaseGrant(30);
    expect(lease.id).toMatch(/^[1-9]\d*$/);
    expect(lease.ttl).toBe(30);
    expect(leaseIds(cluster)).toContain(lease.id);

    // an ID of our choosing that a double cannot hold: 2^63 - 5
    const big = "9223372036854775803";
    expect(Number(big).toString()).not.toBe(big);
    expect(await c.leaseGrant(30, { id: big })).toEqual({ id: big, ttl: 30 });
    expect(leaseIds(cluster)).toContain(big);
    const again = await failure(c.leaseGrant(30, { id: big }));
    expect(again).toMatchObject({ kind: "rejected", indeterminate: false });
    expect(again.message).toMatch(/lease already exists/);

    await c.put("l/node", "alive", { lease: big });
    const { revision } = await c.put("l/other", "x", { lease: lease.id });
    expect(await c.get("l/node")).toMatchObject({ value: "alive", lease: big });
    expect(await c.get("l/other")).toMatchObject({ modRevision: revision, lease: lease.id });
    const txnPut = await c.txn({ compare: [], success: [{ put: "l/txn", value: "y", lease: big }] });
    expect(txnPut.succeeded).toBe(true);
    expect((await c.get("l/txn"))?.lease).toBe(big);

    const kept = await c.leaseKeepAliveOnce(big);
    expect(kept.ttl).toBeGreaterThan(0);
    expect(kept.ttl).toBeLessThanOrEqual(30);

    await c.leaseRevoke(big);
    expect(await c.get("l/node")).toBeUndefined();
    expect(await c.get("l/txn")).toBeUndefined();
    expect(await c.get("l/other")).toBeDefined(); // on the other lease
    expect(await c.leaseKeepAliveOnce(big)).toEqual({ ttl: 0 });
    expect(leaseIds(cluster)).not.toContain(big);

    const revokedTwice = await failure(c.leaseRevoke(big));
    expect(revokedTwice).toMatchObject({ kind: "rejected", grpcCode: 5, indeterminate: false, retryable: false });
    const unknownLease = await failure(c.put("l/x", "y", { lease: big }));
    expect(unknownLease).toMatchObject({ kind: "rejected", grpcCode: 5 });
    expect(await c.get("l/x")).toBeUndefined();
    await c.leaseRevoke(lease.id);
    expect(await c.get("l/other")).toBeUndefined();
  });

  it("a request etcd refuses is rejected at once, not retried elsewhere", async () => {
    const e = await failure(
      c.txn({
        compare: [],
        success: [
          { put: "dup", value: "1" },
          { put: "dup", value: "2" },
        ],
      }),
    );
    expect(e).toMatchObject({ kind: "rejected", grpcCode: 3, indeterminate: false });
    expect(e.message).toMatch(/duplicate key/);
    expect(e.attempts).toHaveLength(1);
    expect(await c.get("dup")).toBeUndefined();
  });

  it("an endpoint with nothing listening is passed over; with none listening, calls fail as unavailable", async () => {
    const dead = `${tls ? "https" : "http"}://127.0.0.1:${await deadPort()}`;
    const withDead = clientOf(cluster, { endpoints: [dead, ...cluster.endpoints] });
    try {
      await withDead.put("failover/dead-first", "ok");
      expect((await withDead.get("failover/dead-first"))?.value).toBe("ok");
      expect(withDead.activeEndpoint).not.toBe(dead);
    } finally {
      withDead.close();
    }
    // 2 s: a connect timer shorter than a stall of this busy machine's event loop could fire before the refusal is read
    const none = clientOf(cluster, { endpoints: [dead], timeoutMs: 2000 });
    try {
      const e = await failure(none.put("failover/nowhere", "x"));
      expect(e).toMatchObject({ kind: "unavailable", indeterminate: false, retryable: true });
      expect(e.attempts[0]).toMatchObject({ endpoint: dead, error: expect.stringMatching(/ECONNREFUSED/) });
    } finally {
      none.close();
    }
  });

  // only the TLS cluster has certificates to get wrong
  if (tls)
    it("TLS: a client without a certificate, or trusting another CA, is rejected, not retried", async () => {
      const paths = cluster.clientTls!;
      const noCert = new EtcdClient({
        endpoints: cluster.endpoints,
        tls: readTlsFiles({ ca: paths.ca }),
        timeoutMs: 5000,
      });
      const wrongCa = new EtcdClient({
        endpoints: cluster.endpoints,
        tls: readTlsFiles({ cert: paths.cert, key: paths.key }),
        timeoutMs: 5000,
      });
      try {
        for (const bad of [noCert, wrongCa]) {
          const e = await failure(bad.put("tls/x", "y"));
          expect(e).toMatchObject({ kind: "rejected", indeterminate: false, retryable: false });
          expect(e.attempts).toHaveLength(members); // each endpoint once, no second round
        }
      } finally {
        noCert.close();
        wrongCa.close();
      }
      expect(await c.get("tls/x")).toBeUndefined();
    });

  it("close(): further calls are refused", async () => {
    const short = clientOf(cluster);
    await short.get("anything");
    short.close();
    expect(await failure(short.get("anything"))).toMatchObject({ kind: "rejected" });
  });
});

describe("3 members, TLS: races and failures", () => {
  it("two clients racing create-if-absent on the same keys: exactly one wins each key", async () => {
    const cluster = await EtcdCluster.start({ members: 3, tls: true });
    // each client enters through a different member
    const a = clientOf(cluster, { endpoints: [0, 1, 2].map((i) => cluster.endpoints[i]!) });
    const b = clientOf(cluster, { endpoints: [2, 1, 0].map((i) => cluster.endpoints[i]!) });
    try {
      // one key at a time, both claims sent together, each client first for half the keys: who wins a key is then
      // not decided by whose TLS handshakes a busy machine finished first (100 keys at once open a dozen per client)
      await Promise.all([a.get("race/warm-up"), b.get("race/warm-up")]);
      const keys = Array.from({ length: 100 }, (_, i) => `race/blocks/10.2.${i}.0/24`);
      const outcomes: { key: string; a: boolean; b: boolean }[] = [];
      for (const [i, key] of keys.entries()) {
        const ca = () => claim(a, key, `a:${key}`);
        const cb = () => claim(b, key, `b:${key}`);
        const [ra, rb] = i % 2 === 0 ? await Promise.all([ca(), cb()]) : (await Promise.all([cb(), ca()])).reverse();
        outcomes.push({ key, a: ra!.owner, b: rb!.owner });
      }
      for (const o of outcomes) expect(Number(o.a) + Number(o.b), o.key).toBe(1);
      const stored = new Map((await a.range("race/")).map((kv) => [kv.key, kv]));
      expect(stored.size).toBe(100);
      for (const o of outcomes) {
        const kv = stored.get(o.key)!;
        expect(kv.value).toBe(`${o.a ? "a" : "b"}:${o.key}`);
        expect(kv.version).toBe(1); // written once
      }
      // both sides won some: the race was a race
      expect(outcomes.some((o) => o.a)).toBe(true);
      expect(outcomes.some((o) => o.b)).toBe(true);
    } finally {
      a.close();
      b.close();
      await cluster.stop();
    }
  });

  it("fails over when the leader is SIGKILLed: claims complete during the election, then every call works", async () => {
    const cluster = await EtcdCluster.start({ members: 3, tls: true });
    const leader = await cluster.leader();
    const order = [leader, ...[0, 1, 2].filter((i) => i !== leader)];
    const c = clientOf(cluster, { endpoints: order.map((i) => cluster.endpoints[i]!) });
    const deadEndpoint = cluster.endpoints[leader]!;
    try {
      const lease = await c.leaseGrant(60);
      await c.put("f/before", "1", { lease: lease.id });
      expect(c.activeEndpoint).toBe(deadEndpoint); // its connection is pooled

      await cluster.kill(leader);
      // at once, while the others elect: every claim ends owned by its token, with no rejection on the way
      for (let i = 0; i < 5; i++)
        expect(await claim(c, `f/claim-${i}`, `token-${i}`), `f/claim-${i}`).toMatchObject({ owner: true });
      expect(c.activeEndpoint).not.toBe(deadEndpoint);

      // a new leader: each call works, the dead member still first in the client's list
      expect(await cluster.leader()).not.toBe(leader);
      expect((await c.get("f/before"))?.value).toBe("1");
      await c.put("f/after", "2");
      expect((await c.range("f/")).map((kv) => kv.key)).toEqual([
        "f/after",
        "f/before",
        ...[0, 1, 2, 3, 4].map((i) => `f/claim-${i}`),
      ]);
      expect(
        (await c.txn({ compare: [{ key: "f/after", value: "2" }], success: [{ delete: "f/after" }] })).succeeded,
      ).toBe(true);
      expect((await c.deleteRange("f/claim-", { prefix: true })).deleted).toBe(5);
      expect((await c.leaseKeepAliveOnce(lease.id)).ttl).toBeGreaterThan(0); // a leader change keeps leases
      const other = await c.leaseGrant(10);
      await c.leaseRevoke(other.id);
      // a fresh client with the dead member first gets through too
      const fresh = clientOf(cluster, { endpoints: order.map((i) => cluster.endpoints[i]!) });
      try {
        expect((await fresh.get("f/before"))?.value).toBe("1");
      } finally {
        fresh.close();
      }

      // the member comes back with its data and catches up
      await cluster.restart(leader);
      const back = clientOf(cluster, { endpoints: [deadEndpoint] });
      try {
        expect((await back.get("f/before"))?.value).toBe("1");
      } finally {
        back.close();
      }
      expect(healthyCount(cluster)).toBe(3);
    } finally {
      c.close();
      await cluster.stop();
    }
  });

  it("quorum lost: every call fails as unavailable or timeout, never rejected; all well once a member returns", async () => {
    const cluster = await EtcdCluster.start({ members: 3, tls: true });
    const c = clientOf(cluster, { requestTimeoutMs: 400, timeoutMs: 1000 });
    try {
      const lease = await c.leaseGrant(60);
      await c.put("q/k", "v");
      const leader = await cluster.leader();
      const second = [0, 1, 2].find((i) => i !== leader)!;
      await cluster.kill(leader);
      await cluster.kill(second);

      const calls: [string, () => Promise<unknown>][] = [
        ["put", () => c.put("q/k", "w")],
        ["get", () => c.get("q/k")],
        ["range", () => c.range("q/")],
        [
          "txn",
          () => c.txn({ compare: [{ key: "q/new", createRevision: 0 }], success: [{ put: "q/new", value: "x" }] }),
        ],
        ["deleteRange", () => c.deleteRange("q/k")],
        ["leaseGrant", () => c.leaseGrant(10)],
        ["leaseKeepAliveOnce", () => c.leaseKeepAliveOnce(lease.id)],
        ["leaseRevoke", () => c.leaseRevoke(lease.id)],
      ];
      for (const [name, call] of calls) {
        const e = await failure(call());
        expect([name, e.kind], e.message).toEqual([name, expect.stringMatching(/^(unavailable|timeout)$/)]);
        expect(e.retryable).toBe(true);
        expect(e.attempts.length).toBeGreaterThan(0);
      }

      await cluster.restart(second);
      await cluster.waitHealthy();
      // quorum again: reads work; the writes that failed may or may not have applied (indeterminate), so only
      // what no failed call could have changed is checked exactly
      expect(["v", "w", undefined]).toContain((await c.get("q/k"))?.value);
      await c.put("q/after", "ok");
      expect((await c.get("q/after"))?.value).toBe("ok");
    } finally {
      c.close();
      await cluster.stop();
    }
  });
});
