// The cluster tier of the node agent (design: README, "Cluster networks"). etcd says which node owns which block of
// a cluster network; this node's blocks file (changed only through `local-ipam blocks`, under the network's lock)
// says which blocks the plugin may allocate from. The invariants, in the order the code keeps them:
//  1. the plugin allocates only inside blocks listed in the file (the plugin's side);
//  2. a block enters the file only after the etcd transaction that made this node its owner committed;
//  3. a block leaves the file before its key is deleted, under the lock, only while no lease lies inside;
//  4. reconcile: blocks owned in etcd but missing from the file are added back (a crash between claim and write);
//     blocks another node owns are dropped from the file at once, loudly;
//  5. a dead node's blocks return only by an operator's release-node, refused while its liveness key exists.
// Nothing compares the clocks of two nodes: times in etcd values are for people.
import { chmodSync, lstatSync, mkdirSync, rmSync } from "node:fs";
import * as net from "node:net";
import { dirname } from "node:path";
import { type Family, histogramSamples } from "../cli/exposition.js";
import { allocatableInBlock, blockCount, blockOf, freeBlocks, nthBlock, rangeOfBlock } from "../cluster/blocks.js";
import { type BlockRecord, type BlockRegistry, GridMismatch, gridText, RegistryError } from "../cluster/registry.js";
import type { IpamConfig } from "../config/ipam.js";
import { type Addr, broadcastOf, formatCIDR, inSubnet, parseCIDR, parseIP } from "../net/ip.js";
import type { Range } from "../net/range.js";
import { findConfigs, ipamConfigOf } from "./conflists.js";
import type { PluginRunner } from "./plugin.js";
import { sleepUnlessAborted } from "./sleep.js";

interface ClusterOptions {
  node: string;
  /** who owns which block, cluster-wide (etcd) */
  registry: BlockRegistry;
  socketPath: string;
  confDir: string;
  ipamType: string;
  plugin: PluginRunner;
  /** between reconcile passes (headroom, returns, usage) */
  intervalMs: number;
  /** claim a new block when a range set has fewer free addresses than this; default: half a block */
  headroom: number | null;
  /** return a block that has been empty this long, if the others keep the headroom */
  idleMs: number;
  /** between heartbeats (a third of the liveness TTL) */
  heartbeatMs: number;
  /** the liveness TTL, seconds (for messages) */
  nodeTtl: number;
  /** between reconciles with etcd (recovery, blocks given to others); the interval's passes need no etcd read */
  reconcileMs: number;
  log: (level: "info" | "warn" | "error", msg: string, fields?: Record<string, unknown>) => void;
}

/** A range set as `local-ipam blocks --json` reports it. */
interface SetReport {
  index: number;
  family: number;
  ranges: { range: string; subnet: string; start: string; end: string; blockSize: number; blocks: string }[];
  owned: {
    block: string;
    size: string;
    used: number;
    free: string;
    cooling: number;
    /** whether it is a block of the config's grid */
    fits: boolean;
    /** for a block that does not fit: the grid blocks holding its leases */
    cover?: string[];
  }[];
  free: string;
  used: number;
}
interface BlocksReport {
  network: string;
  rangeSets: SetReport[];
  added: string[];
  removed: string[];
  refused: { block: string; leases: number; cooling: number }[];
  dropped: { block: string; leases: number }[];
}

interface ClusterNet {
  name: string;
  conflist: string;
  /** blocks (SET:CIDR) that have had no lease since this time (ms, this agent's clock) */
  emptySince: Map<string, number>;
  /** blocks with no allocatable address (all excluded, the gateway alone): not claimed again by this agent while
   * the network's ipam block stays as it is */
  useless: Set<string>;
  /** the ipam block `useless` was learnt under */
  ipam: string;
  /** the last grid mismatch logged */
  gridError: string;
  /** the ipam config as the plugin loads it (null: it does not load; undefined: not loaded since it changed) */
  conf: IpamConfig | null | undefined;
  /** whether the last listing of the pool had keys that are not blocks of this node's grid (null: not listed yet) */
  foreignKeys: boolean | null;
  /** blocks taken out of the file to be returned, whose etcd key is still to be deleted */
  returning: Set<string>;
  last: BlocksReport | null;
  /** this node's blocks in etcd's owner index, at the last reconcile */
  ownedInEtcd: number;
  lock: Promise<unknown>;
  published: string;
  publishedAt: number;
  reconciledAt: number;
}

export interface AgentAnswer {
  ok: boolean;
  reason?: "full" | "taken" | "unavailable" | "unknown" | "refused" | "bad-request";
  msg?: string;
  [more: string]: unknown;
}

const PUBLISH_MS = 60_000;
const REQUEST_WAIT_MS = 10_000;
/** rounds of candidates a claim without a deadline (the headroom's) tries before the next pass */
const MAX_CLAIM_ROUNDS = 4;
const CLAIM_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

const cidrOfBlock = (name: string) => name.slice(name.indexOf(":") + 1);
const setOfBlock = (name: string) => Number(name.slice(0, name.indexOf(":")));

export class ClusterTier {
  private readonly nets = new Map<string, ClusterNet>();
  private server: net.Server | null = null;
  private readonly abort = new AbortController();
  private tasks: Promise<void>[] = [];
  private readonly stats = {
    claims: new Map<string, number>(),
    claimBuckets: new Map<string, number[]>(),
    claimSum: new Map<string, number>(),
    etcdErrors: 0,
    returned: new Map<string, number>(),
    dropped: new Map<string, number>(),
    recovered: new Map<string, number>(),
  };

  constructor(private readonly o: ClusterOptions) {}

  private bump(map: Map<string, number>, k: string, by = 1): void {
    map.set(k, (map.get(k) ?? 0) + by);
  }

  /** Runs fn for one network with nothing else of this tier changing that network meanwhile. */
  private serialized<T>(n: ClusterNet, fn: () => Promise<T>): Promise<T> {
    const run = n.lock.then(fn, fn);
    n.lock = run.catch(() => undefined);
    return run;
  }

  private async report(n: ClusterNet, change: { add?: string[]; remove?: string[]; drop?: string[] } = {}) {
    const args = ["blocks", "--config", n.conflist, "--json"];
    for (const b of change.add ?? []) args.push("--add", b);
    for (const b of change.remove ?? []) args.push("--remove", b);
    for (const b of change.drop ?? []) args.push("--drop", b);
    const r = await this.o.plugin.json<BlocksReport>(args);
    n.last = r;
    return r;
  }

  private discover(): void {
    for (const c of findConfigs(this.o.confDir, this.o.ipamType).filter((f) => f.cluster)) {
      const known = this.nets.get(c.network);
      if (known) {
        known.conflist = c.path;
        if (known.ipam !== c.ipam) {
          // what was learnt under the old config: blocks without addresses, whether the pool fits the grid
          known.useless.clear();
          known.foreignKeys = null;
          known.conf = undefined;
        }
        known.ipam = c.ipam;
        continue;
      }
      this.nets.set(c.network, {
        name: c.network,
        conflist: c.path,
        emptySince: new Map(),
        useless: new Set(),
        ipam: c.ipam,
        gridError: "",
        foreignKeys: null,
        conf: undefined,
        returning: new Set(),
        last: null,
        ownedInEtcd: 0,
        lock: Promise.resolve(),
        published: "",
        publishedAt: 0,
        reconciledAt: 0,
      });
      this.o.log("info", "cluster network", { network: c.network, conflist: c.path });
    }
  }

  async start(): Promise<void> {
    this.discover();
    await this.listen();
    this.tasks.push(this.heartbeats(), this.loop());
  }

  async stop(): Promise<void> {
    this.abort.abort();
    await Promise.allSettled(this.tasks);
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
    // the liveness is left to expire: a restarting agent's node must not look dead to release-node
  }

  // ---- liveness, on its own timer: no pass, however slow, may let it lapse ----

  private async heartbeats(): Promise<void> {
    while (!this.abort.signal.aborted) {
      let next = this.o.heartbeatMs;
      try {
        await this.liveness();
      } catch (e) {
        this.etcdError("liveness", e);
        next = Math.min(1000, next); // a missed renewal is tried again soon, well inside the TTL
      }
      await this.sleep(next);
    }
  }

  // ---- the loop: reconcile, headroom, returns, usage ----

  private async loop(): Promise<void> {
    while (!this.abort.signal.aborted) {
      this.discover();
      for (const n of this.nets.values()) {
        if (this.abort.signal.aborted) break;
        await this.serialized(n, () => this.pass(n)).catch((e: Error) =>
          e instanceof RegistryError
            ? this.etcdError(`reconcile ${n.name}`, e)
            : this.o.log("error", "cluster pass", { network: n.name, error: e.message }),
        );
      }
      await this.sleep(this.o.intervalMs);
    }
  }

  private sleep(ms: number): Promise<void> {
    return sleepUnlessAborted(ms, this.abort.signal);
  }

  private lastEtcdError: { message: string; at: number } | undefined;

  /** The last etcd error and how long ago it was: it may be older than the trouble at hand. */
  private lastEtcdErrorText(): string {
    if (!this.lastEtcdError) return "no etcd error so far";
    const ago = ((performance.now() - this.lastEtcdError.at) / 1000).toFixed(1);
    return `last etcd error ${ago} s ago: ${this.lastEtcdError.message}`;
  }

  private etcdError(what: string, e: unknown): void {
    this.stats.etcdErrors++;
    this.lastEtcdError = { message: (e as Error).message, at: performance.now() };
    this.o.log("warn", `etcd: ${what}`, { error: (e as Error).message });
  }

  /** This node's liveness, renewed; its published use rides on it. */
  private async liveness(): Promise<void> {
    // each renewal bounded by its interval: a slow one must not eat the TTL
    if (!(await this.o.registry.heartbeat({ timeoutMs: this.o.heartbeatMs }))) return;
    if (this.everAlive) this.o.log("warn", "this node's liveness had expired: made anew");
    this.everAlive = true;
    for (const n of this.nets.values()) n.published = "";
  }

  private everAlive = false;

  /** One pass over a network (under its serialization): reconcile with etcd when due, then headroom and returns. */
  private async pass(n: ClusterNet): Promise<void> {
    let r = await this.report(n);
    if (Date.now() - n.reconciledAt >= this.o.reconcileMs) {
      n.reconciledAt = Date.now(); // a failed one waits for the next interval too
      r = await this.reconcile(n, r);
    }
    // headroom: claim while a set has too few free addresses; return blocks empty for long, beyond the headroom
    for (const s of r.rangeSets) {
      const need = this.headroomOf(s);
      if (BigInt(s.free) < BigInt(need)) {
        await this.claimNew(n, s.index, null);
        continue;
      }
      await this.returnIdle(n, s, need);
    }
    await this.publish(n);
  }

  /**
   * 4. The file against etcd: this node's blocks in the owner index but not in the file are added back (a crash
   * between claim and write); blocks in the file whose key another node holds are dropped from allocation at once,
   * loudly; blocks in the file without a key (released by an operator while this node lived) are claimed back.
   * A block recovered into the file is first made a new version in etcd (`keep`), so that a release sent earlier
   * whose answer was lost cannot free it afterwards.
   * A block of another grid (an older blockSize) is never claimed or added under its own name: the grid blocks
   * holding its leases are claimed instead, and its own key, once out of the file, is released.
   */
  private async reconcile(n: ClusterNet, r: BlocksReport): Promise<BlocksReport> {
    const reg = this.o.registry;
    const mine = new Set(await reg.ownedBy(n.name, this.o.node));
    const inFile = new Map(r.rangeSets.flatMap((s) => s.owned.map((o) => [cidrOfBlock(o.block), o] as const)));
    // claims need the cluster's grid; the rest of the reconcile does not
    let grid: GridMismatch | null = null;
    const claim = async (set: number, cidr: string): Promise<boolean> => {
      if (grid) return false;
      try {
        await reg.useGrid(n.name, gridOf(r));
        return await reg.claim(n.name, set, cidr);
      } catch (e) {
        if (!(e instanceof GridMismatch)) throw e;
        grid = e;
        this.gridRefused(n, e);
        return false;
      }
    };
    const add: string[] = [];
    for (const cidr of mine) {
      if (inFile.has(cidr)) continue;
      const record = await reg.owner(n.name, cidr);
      if (!record || record.node !== this.o.node) continue; // an index key without its block: left alone
      const block = `${record.set}:${cidr}`;
      // not in the file, so nothing was leased in it since it left: a block of another grid just goes
      if (n.returning.has(block) || !fitsGrid(r, record.set, cidr)) await this.finishReturn(n, block, record);
      // back into the file only as a new version: a release of it whose answer was lost cannot apply after that
      else if (await reg.keep(n.name, cidr, record)) add.push(block);
    }
    // blocks being returned that are no longer this node's in etcd: their return is done
    for (const block of n.returning) if (!mine.has(cidrOfBlock(block))) n.returning.delete(block);
    const drop: string[] = [];
    for (const [cidr, o] of inFile) {
      if (!o.fits) {
        for (const b of o.cover ?? []) {
          const c = cidrOfBlock(b);
          if (inFile.has(c)) continue;
          const owner = (await reg.owner(n.name, c))?.node;
          if (owner === this.o.node || (owner === undefined && (await claim(setOfBlock(b), c)))) add.push(b);
          else if (owner !== undefined)
            this.o.log("error", "leases of a block of an older grid lie in a block another node owns", {
              network: n.name,
              block: o.block,
              gridBlock: b,
              owner,
            });
        }
        continue;
      }
      if (mine.has(cidr)) continue;
      let owner = (await reg.owner(n.name, cidr))?.node;
      if (owner === this.o.node) continue; // a claim that committed after the index was read
      // nobody's (a release-node while this node lived on): claimed back, whatever the count of leases this pass
      // read says (an ADD may have leased into it since); dropped only once another node has it
      if (owner === undefined) {
        if (await claim(setOfBlock(o.block), cidr)) continue;
        if (grid) continue; // kept as it is until the grids agree
        owner = (await reg.owner(n.name, cidr))?.node;
        if (owner === this.o.node) continue;
      }
      drop.push(o.block);
      this.bump(this.stats.dropped, n.name);
      this.o.log("error", "a block in this node's file is not this node's in etcd: no longer allocated from", {
        network: n.name,
        block: o.block,
        owner: owner ?? "(nobody)",
        leasesInside: o.used,
      });
    }
    n.ownedInEtcd = mine.size;
    if (add.length === 0 && drop.length === 0) return r;
    const after = await this.report(n, { add, drop });
    for (const b of after.added) {
      this.bump(this.stats.recovered, n.name);
      this.o.log("warn", "recovered a block owned in etcd but missing from the file", { network: n.name, block: b });
    }
    return after;
  }

  /** A grid mismatch, counted each time and logged when it is news. */
  private gridRefused(n: ClusterNet, e: GridMismatch): void {
    this.bump(this.stats.claims, `${n.name}\u0000grid`);
    if (n.gridError === e.message) return;
    n.gridError = e.message;
    this.o.log("error", "not claiming: this node's block grid is not the cluster's", {
      network: n.name,
      error: e.message,
    });
  }

  private headroomOf(s: SetReport): number {
    if (this.o.headroom !== null) return this.o.headroom;
    const bits = s.family === 6 ? 128 : 32;
    const size = Math.min(2 ** 20, 2 ** (bits - (s.ranges[0]?.blockSize ?? bits)));
    return Math.max(1, Math.floor(size / 2));
  }

  private async returnIdle(n: ClusterNet, s: SetReport, need: number): Promise<void> {
    const now = Date.now();
    let free = BigInt(s.free);
    for (const o of s.owned) {
      if (o.used > 0 || o.cooling > 0) {
        n.emptySince.delete(o.block);
        continue;
      }
      const since = n.emptySince.get(o.block) ?? now;
      n.emptySince.set(o.block, since);
      if (now - since < this.o.idleMs || free - BigInt(o.free) < BigInt(need)) continue;
      if (!(await this.giveBack(n, o.block, "idle"))) continue; // a lease came in meanwhile: it stays
      n.emptySince.delete(o.block);
      free -= BigInt(o.free);
    }
  }

  /**
   * 3. A block leaves the file first, under the lock, only while empty; then its etcd key goes, if still this
   * node's (a failed delete is finished by the next reconcile). False when a lease came in meanwhile.
   */
  private async giveBack(n: ClusterNet, block: string, why: "idle" | "useless", timeoutMs?: number): Promise<boolean> {
    const r = await this.report(n, { remove: [block] });
    if (!r.removed.includes(block)) return false;
    n.returning.add(block);
    const record = await this.o.registry.owner(n.name, cidrOfBlock(block), { timeoutMs });
    if (record?.node === this.o.node) await this.finishReturn(n, block, record, why, timeoutMs);
    else n.returning.delete(block);
    return true;
  }

  /** Frees a block already out of the file, if it is still this node's as `record` says. */
  private async finishReturn(
    n: ClusterNet,
    block: string,
    record: BlockRecord,
    why: "idle" | "useless" = "idle",
    timeoutMs?: number,
  ): Promise<void> {
    const freed = await this.o.registry.release(n.name, cidrOfBlock(block), record, { timeoutMs });
    // not freed (yet): it stays among the returning, which reconcile finishes and never puts back in the file
    if (!freed) return;
    n.returning.delete(block);
    if (why === "useless") {
      this.o.log("info", "a block without an allocatable address: returned", { network: n.name, block });
      return;
    }
    this.bump(this.stats.returned, n.name);
    this.o.log("info", "returned an empty block to the pool", { network: n.name, block });
  }

  /**
   * Claims a block of set `set` (the one holding `ip` when given) and, once etcd committed it, puts it in the
   * file. Candidates start at a random block, so that nodes claiming at once rarely want the same one.
   */
  private async claimNew(n: ClusterNet, set: number, ip: Addr | null, timeoutMs?: number): Promise<AgentAnswer> {
    const started = performance.now();
    // what is left of the caller's time, for each etcd call (the plugin waits for the answer no longer)
    const left = () => (timeoutMs === undefined ? undefined : Math.max(100, timeoutMs - (performance.now() - started)));
    const finish = (result: string, a: AgentAnswer): AgentAnswer => {
      this.bump(this.stats.claims, `${n.name}\u0000${result}`);
      if (result === "ok") {
        const s = (performance.now() - started) / 1000;
        const buckets = this.stats.claimBuckets.get(n.name) ?? CLAIM_BUCKETS.map(() => 0);
        const i = CLAIM_BUCKETS.findIndex((b) => s <= b);
        if (i >= 0) buckets[i]!++;
        this.stats.claimBuckets.set(n.name, buckets);
        this.bump(this.stats.claimSum, n.name, s);
        this.bump(this.stats.claims, `${n.name}\u0000count`);
      }
      return a;
    };
    const r = n.last ?? (await this.report(n));
    const s = r.rangeSets[set];
    if (!s) return finish("error", { ok: false, reason: "bad-request", msg: `no range set ${set} in ${n.name}` });
    const ranges = rangesOf(s);
    const own = async (c: string, requested = false): Promise<AgentAnswer | null> => {
      const block = `${set}:${c}`;
      n.returning.delete(block); // claimed anew after a return of it completed
      // 2. etcd committed: now the file
      if (process.env.LOCAL_IPAM_AGENT_FAULT === "kill:after-claim") process.kill(process.pid, "SIGKILL");
      const after = await this.report(n, { add: [block] });
      const got = after.rangeSets[set]?.owned.find((o) => o.block === block);
      if (!requested && got && got.used === 0 && BigInt(got.free) === 0n) {
        // nothing in it can be handed out (excluded, the gateway, outside the range): back at once, never again
        n.useless.add(c);
        await this.giveBack(n, block, "useless", left());
        return null;
      }
      this.o.log("info", "claimed a block", { network: n.name, block, ms: Math.round(performance.now() - started) });
      return finish("ok", { ok: true, block });
    };
    const unavailable = (e: unknown) => {
      if (e instanceof GridMismatch) {
        this.gridRefused(n, e);
        return { ok: false, reason: "unavailable", msg: e.message } satisfies AgentAnswer;
      }
      this.etcdError(`claim in ${n.name}`, e);
      return finish("error", { ok: false, reason: "unavailable", msg: `etcd: ${(e as Error).message}` });
    };
    const counts = ranges.map((x) => blockCount(x));
    const total = counts.reduce((a, b) => a + b, 0n);
    // a block with nothing the allocator could hand out (excluded, the gateway alone) is never claimed
    // loaded once per version of the conflist (discover notices a change), not on every claim
    if (n.conf === undefined) n.conf = ipamConfigOf(n.conflist, this.o.ipamType);
    const conf = n.conf;
    const usable = (c: string): boolean => {
      if (n.useless.has(c)) return false;
      const cidr = parseCIDR(c);
      const rs = conf?.rangeSets[set];
      if (!cidr || !rs || allocatableInBlock(rs, cidr) > 0n) return true;
      n.useless.add(c);
      return false;
    };
    const nth = (k: bigint) => formatCIDR(nthBlock(ranges, counts, k));
    try {
      await this.o.registry.useGrid(n.name, gridOf(r), { timeoutMs: left() });
      if (ip) {
        // the block holding a requested address: this one or none
        const r0 = ranges.find((x) => x.rangeStart.v6 === ip.v6 && ip.n >= x.rangeStart.n && ip.n <= x.rangeEnd.n);
        if (!r0)
          return finish("error", { ok: false, reason: "bad-request", msg: "the address is in no range of the set" });
        const c = formatCIDR(blockOf(r0, ip));
        // a key of an older grid over this block, another node's: its addresses may be in use there
        if (n.foreignKeys !== false) {
          const taken = await this.o.registry.blocks(n.name, { timeoutMs: left() });
          n.foreignKeys = [...taken].some(([cidr, record]) => !fitsGrid(r, record.set, cidr));
          const over = [...taken].find(([k, rec]) => k !== c && rec.node !== this.o.node && cidrsMeet(k, c));
          if (over)
            return finish("taken", {
              ok: false,
              reason: "taken",
              msg: `block ${c} meets ${over[0]}, node ${over[1].node}'s`,
            });
        }
        // a lost claim and then no owner: the block was released in between (or the claim's lost answer was not
        // applied): asked again
        for (let attempt = 0; attempt < 3; attempt++) {
          if (await this.o.registry.claim(n.name, set, c, { timeoutMs: left() })) return (await own(c, true))!;
          const owner = (await this.o.registry.owner(n.name, c, { timeoutMs: left() }))?.node;
          if (owner === this.o.node) return (await own(c, true))!;
          if (owner !== undefined)
            return finish("taken", { ok: false, reason: "taken", msg: `block ${c} is node ${owner}'s` });
        }
        return finish("error", { ok: false, reason: "unavailable", msg: `block ${c} kept changing hands` });
      }
      // a few blocks at random first, without reading the pool: in a pool with room the first one is free. Not
      // while the pool may hold keys of another grid (an older blockSize), which only a listing shows
      for (let i = 0; i < 3 && n.foreignKeys === false; i++) {
        const c = nth(randomBelow(total));
        if (!usable(c)) continue;
        if (await this.o.registry.claim(n.name, set, c, { timeoutMs: left() })) {
          const a = await own(c);
          if (a) return a;
        }
      }
      // a crowded pool: read which blocks are taken, and try free ones from a random place on, in order; again
      // while others win the races or the blocks had nothing to hand out, until the pool has none or time is up
      for (let round = 1; ; round++) {
        const taken = await this.o.registry.blocks(n.name, { timeoutMs: left() });
        n.foreignKeys = [...taken].some(([cidr, record]) => !fitsGrid(r, record.set, cidr));
        // free blocks, then the usable ones of them (the others join `useless` and the next look passes them by)
        let candidates: string[] = [];
        for (let look = 0; look < 64 && candidates.length === 0; look++) {
          const free = freeBlocks(ranges, counts, taken, n.useless, randomBelow(total), 64);
          if (free.length === 0)
            return finish("full", { ok: false, reason: "full", msg: `no free block in ${n.name}` });
          candidates = free.filter(usable);
        }
        for (const c of candidates) {
          if (await this.o.registry.claim(n.name, set, c, { timeoutMs: left() })) {
            const a = await own(c);
            if (a) return a;
            continue;
          }
          this.bump(this.stats.claims, `${n.name}\u0000lost`); // another node was quicker: the next candidate
        }
        const late = timeoutMs === undefined ? round >= MAX_CLAIM_ROUNDS : (left() ?? 0) <= 100;
        if (late) break;
      }
    } catch (e) {
      if (e instanceof RegistryError) return unavailable(e);
      throw e;
    }
    return finish("error", {
      ok: false,
      reason: "unavailable",
      msg: `no free block of ${n.name} could be had in time: other nodes took them first, or they had no allocatable address`,
    });
  }

  /** Publishes this node's use of its blocks on its liveness key (for `local-ipam pool`), when it changed. */
  private async publish(n: ClusterNet): Promise<void> {
    if (!this.everAlive || !n.last) return;
    const used = Object.fromEntries(
      n.last.rangeSets.flatMap((s) => s.owned.map((o) => [cidrOfBlock(o.block), o.used])),
    );
    const text = JSON.stringify({ used });
    // a node's use changes with every pod: published at most once a minute (etcd writes are the cluster's cost)
    if (text === n.published || (n.published !== "" && Date.now() - n.publishedAt < PUBLISH_MS)) return;
    await this.o.registry.publish(n.name, used);
    n.published = text;
    n.publishedAt = Date.now();
  }

  // ---- the socket: the plugin asks for blocks, the CLI for views ----

  private async listen(): Promise<void> {
    const path = this.o.socketPath;
    mkdirSync(dirname(path), { recursive: true, mode: 0o755 });
    try {
      if (lstatSync(path).isSocket()) rmSync(path); // a previous agent's; anything else is left for the error
    } catch {
      // none
    }
    const server = net.createServer((s) => this.connection(s));
    await new Promise<void>((resolvePromise, reject) => {
      server.once("error", reject);
      server.listen(path, () => resolvePromise());
    });
    chmodSync(path, 0o600);
    this.server = server;
  }

  private connection(s: net.Socket): void {
    let buf = "";
    s.setEncoding("utf8");
    s.on("error", () => undefined);
    // a request comes at once; a client that sends none does not keep a descriptor
    s.setTimeout(REQUEST_WAIT_MS, () => {
      if (!buf.includes("\n")) s.destroy();
    });
    s.on("data", (d: string) => {
      buf += d;
      const nl = buf.indexOf("\n");
      if (nl < 0) {
        if (buf.length > 64 << 10) s.destroy();
        return;
      }
      s.removeAllListeners("data");
      let req: Record<string, unknown>;
      try {
        req = JSON.parse(buf.slice(0, nl)) as Record<string, unknown>;
      } catch {
        s.end(`${JSON.stringify({ ok: false, reason: "bad-request", msg: "not JSON" })}\n`);
        return;
      }
      this.handle(req).then(
        (a) => s.end(`${JSON.stringify(a)}\n`),
        (e: Error) => s.end(`${JSON.stringify({ ok: false, reason: "unavailable", msg: e.message })}\n`),
      );
    });
  }

  private async handle(req: Record<string, unknown>): Promise<AgentAnswer> {
    this.discover();
    const n = typeof req.network === "string" ? this.nets.get(req.network) : undefined;
    switch (req.op) {
      case "ping":
        return { ok: true, node: this.o.node, networks: [...this.nets.keys()] };
      case "claim": {
        if (!n) return { ok: false, reason: "unknown", msg: `${String(req.network)} is not a cluster network here` };
        const set = Number(req.set);
        const ip = typeof req.ip === "string" ? parseIP(req.ip) : null;
        // answer before the plugin stops waiting: its time left, less a margin for the answer's way back
        const arrived = performance.now();
        const timeoutMs = typeof req.timeoutMs === "number" ? Math.max(100, req.timeoutMs - 300) : undefined;
        let started = false;
        const work = this.serialized(n, async (): Promise<AgentAnswer> => {
          started = true;
          // the plugin has stopped waiting (this waited behind slow work): nobody wants this claim any more
          if (timeoutMs !== undefined && performance.now() - arrived >= timeoutMs)
            return { ok: false, reason: "unavailable", msg: "too late" };
          // another request's claim may have served this one meanwhile
          const r = await this.report(n);
          const s = r.rangeSets[set];
          if (s && !ip && BigInt(s.free) > 0n) return { ok: true, served: "already" };
          if (s && ip && s.owned.some((o) => o.fits && inCidr(ip, cidrOfBlock(o.block))))
            return { ok: true, served: "already" };
          const spent = performance.now() - arrived;
          return this.claimNew(n, set, ip, timeoutMs === undefined ? undefined : Math.max(100, timeoutMs - spent));
        });
        if (timeoutMs === undefined) return work;
        // queued behind a pass that waits on etcd: answer in time all the same
        return Promise.race([
          work,
          new Promise<AgentAnswer>((resolve) =>
            setTimeout(
              () =>
                resolve({
                  ok: false,
                  reason: "unavailable",
                  msg: `no claim got through in time (${started ? "etcd did not answer it" : `it waited behind other work on ${n.name}`}; ${this.lastEtcdErrorText()})`,
                }),
              timeoutMs,
            ).unref(),
          ),
        ]);
      }
      case "pool":
        return this.pool(n, typeof req.network === "string" ? req.network : undefined);
      case "release-node":
        return this.releaseNode(String(req.node ?? ""), req.force === true, n);
      default:
        return { ok: false, reason: "bad-request", msg: `unknown op ${JSON.stringify(req.op)}` };
    }
  }

  /** The operator's view of a network (or all): blocks, their owners and use, free blocks, nodes. */
  private async pool(only: ClusterNet | undefined, name?: string): Promise<AgentAnswer> {
    if (name !== undefined && !only)
      return { ok: false, reason: "unknown", msg: `${name} is not a cluster network here` };
    const networks = [];
    for (const n of only ? [only] : this.nets.values()) {
      const r = n.last ?? (await this.report(n));
      const blocks = await this.o.registry.blocks(n.name);
      const used = await this.o.registry.usage(n.name);
      const live = await this.o.registry.liveNodes();
      const total = r.rangeSets.reduce((a, s) => a + s.ranges.reduce((b, x) => b + BigInt(x.blocks), 0n), 0n);
      networks.push({
        network: n.name,
        blockSizes: r.rangeSets.map((s) => s.ranges.map((x) => x.blockSize)),
        blocks: [...blocks].map(([cidr, value]) => ({
          block: cidr,
          set: value.set,
          node: value.node,
          nodeAlive: live.has(value.node),
          used: used.get(value.node)?.[cidr] ?? null,
          claimed: new Date(value.claimed).toISOString(),
        })),
        totalBlocks: String(total),
        freeBlocks: String(total - BigInt(blocks.size)),
        nodes: [...live],
      });
    }
    return { ok: true, networks };
  }

  /** Returns a dead node's blocks to the pool; refused while its liveness key exists, unless forced. */
  private async releaseNode(node: string, force: boolean, only: ClusterNet | undefined): Promise<AgentAnswer> {
    if (!node) return { ok: false, reason: "bad-request", msg: "no node named" };
    // one liveness per node, checked before anything is released
    if (!force && (await this.o.registry.alive(node)))
      return {
        ok: false,
        reason: "refused",
        msg: `node ${node} is alive (its agent renewed its liveness within ${this.o.nodeTtl} s): stop the agent and wait that long, or --force`,
      };
    const released: string[] = [];
    for (const n of only ? [only] : this.nets.values()) {
      for (const [cidr, record] of await this.o.registry.blocks(n.name)) {
        if (record.node !== node) continue;
        if (await this.o.registry.release(n.name, cidr, record)) released.push(`${n.name} ${cidr}`);
      }
    }
    this.o.log("warn", "released a node's blocks", { node, force, blocks: released.length });
    return { ok: true, released };
  }

  // ---- metrics ----

  families(): Family[] {
    const per = (m: Map<string, number>) => [...m].map(([network, value]) => ({ labels: { network }, value }));
    const claims = [...this.stats.claims]
      .filter(([k]) => !k.endsWith("\u0000count"))
      .map(([k, value]) => {
        const [network, result] = k.split("\u0000");
        return { labels: { network: network!, result: result! }, value };
      });
    return [
      {
        name: "local_ipam_cluster_blocks",
        help: "This node's blocks of a cluster network: in its blocks file (allocating) and in etcd (owned, at the last reconcile); local-ipam pool counts the pool's free blocks.",
        type: "gauge",
        samples: [...this.nets.values()].flatMap((n) => [
          {
            labels: { network: n.name, state: "allocating" },
            value: n.last?.rangeSets.reduce((a, s) => a + s.owned.length, 0) ?? 0,
          },
          { labels: { network: n.name, state: "owned" }, value: n.ownedInEtcd },
        ]),
      },
      {
        name: "local_ipam_cluster_claims_total",
        help: "Block claims by result: ok, lost (another node was quicker; the next candidate was tried), full, taken, grid (this node's ranges or block sizes are not the cluster's), error.",
        type: "counter",
        samples: claims,
      },
      {
        name: "local_ipam_cluster_claim_seconds",
        help: "Time from a claim's start to its block being in this node's file.",
        type: "histogram",
        samples: [...this.stats.claimBuckets].flatMap(([network, counts]) =>
          histogramSamples({ network }, CLAIM_BUCKETS, counts, this.stats.claimSum.get(network) ?? 0),
        ),
      },
      {
        name: "local_ipam_cluster_etcd_errors_total",
        help: "etcd calls that failed (unreachable, timed out, refused).",
        type: "counter",
        samples: [{ labels: {}, value: this.stats.etcdErrors }],
      },
      {
        name: "local_ipam_cluster_blocks_returned_total",
        help: "Empty blocks returned to the pool after the idle time.",
        type: "counter",
        samples: per(this.stats.returned),
      },
      {
        name: "local_ipam_cluster_blocks_recovered_total",
        help: "Blocks owned in etcd but missing from this node's file, added back (a crash between claim and write).",
        type: "counter",
        samples: per(this.stats.recovered),
      },
      {
        name: "local_ipam_cluster_blocks_dropped_total",
        help: "Blocks in this node's file that etcd gave to another node (a forced release-node), no longer allocated from.",
        type: "counter",
        samples: per(this.stats.dropped),
      },
    ];
  }
}

/** Whether two CIDRs share an address. */
function cidrsMeet(a: string, b: string): boolean {
  const x = parseCIDR(a);
  const y = parseCIDR(b);
  return (
    !!x &&
    !!y &&
    x.ip.v6 === y.ip.v6 &&
    x.ip.n <= broadcastOf(y.ip, y.prefix).n &&
    y.ip.n <= broadcastOf(x.ip, x.prefix).n
  );
}

/** Whether `cidr` is a block of range set `set` in the config's grid. */
function fitsGrid(r: BlocksReport, set: number, cidr: string): boolean {
  const c = parseCIDR(cidr);
  const s = r.rangeSets[set];
  return !!c && !!s && rangeOfBlock(rangesOf(s), c) >= 0;
}

/** A range set of the report as the block arithmetic needs it (its bounds and block size). */
function rangesOf(s: SetReport): Range[] {
  return s.ranges.map(
    (x) => ({ rangeStart: parseIP(x.start)!, rangeEnd: parseIP(x.end)!, blockSize: x.blockSize }) as unknown as Range,
  );
}

/** The network's block grid, as this node's config cuts it. */
const gridOf = (r: BlocksReport) => gridText(r.rangeSets.flatMap((s) => s.ranges));

function inCidr(ip: Addr, cidrText: string): boolean {
  const c = parseCIDR(cidrText);
  return !!c && c.ip.v6 === ip.v6 && inSubnet(ip, c.ip, c.prefix) && ip.n <= broadcastOf(c.ip, c.prefix).n;
}

/** A uniform random BigInt in [0, n). */
function randomBelow(n: bigint): bigint {
  if (n <= 1n) return 0n;
  const bytes = new Uint8Array(Math.ceil(n.toString(16).length / 2) + 8);
  crypto.getRandomValues(bytes);
  let x = 0n;
  for (const b of bytes) x = (x << 8n) | BigInt(b);
  return x % n;
}
