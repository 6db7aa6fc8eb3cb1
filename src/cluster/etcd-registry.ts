// The block registry on etcd. Keys under `prefix`:
//   <prefix>/<net>/grid                   "subnet=size,..."             how the network is cut into blocks
//   <prefix>/<net>/blocks/<cidr>          {"node", "set", "claimed"}   who owns a block
//   <prefix>/<net>/owners/<node>/<cidr>   ""                            the same, indexed by owner (same txn)
//   <prefix>/_nodes/<node>                {"since"}                     on the node's etcd lease: liveness (a
//                                                                       network's name cannot start with "_")
//   <prefix>/<net>/nodes/<node>           {"used", "at"}                on the same lease: its use of its blocks
// A claim is one txn (block key absent and grid unchanged -> block key + index key); a release one txn (block
// key unchanged -> delete both). Record versions are the block key's mod revision.
import { type EtcdClient, EtcdError, type KeyValue } from "./etcd.js";
import {
  type BlockRecord,
  type BlockRegistry,
  type CallBound,
  GridMismatch,
  gridExtends,
  RegistryError,
} from "./registry.js";

interface BlockValue {
  node: string;
  set: number;
  claimed: number;
}

export class EtcdRegistry implements BlockRegistry {
  private leaseId: string | null = null;
  /** per network, the cluster's grid as useGrid found or made it: what every claim compares */
  private readonly grids = new Map<string, { mine: string; cluster: string }>();

  constructor(
    private readonly etcd: EtcdClient,
    /** every key under it, without a trailing slash */
    private readonly prefix: string,
    readonly node: string,
    /** the liveness lease's TTL, seconds */
    private readonly ttl: number,
    private readonly onBadKey: (key: string) => void = () => undefined,
  ) {}

  private key(network: string, kind: "blocks" | "nodes" | "owners", name = ""): string {
    return `${this.prefix}/${network}/${kind}/${name}`;
  }

  private gridKey(network: string): string {
    return `${this.prefix}/${network}/grid`;
  }

  private ownerKey(network: string, node: string, cidr: string): string {
    return this.key(network, "owners", `${node}/${cidr}`);
  }

  useGrid(network: string, grid: string, bound: CallBound = {}): Promise<void> {
    return this.call(() => this.agreeGrid(network, grid, bound));
  }

  private async agreeGrid(network: string, grid: string, bound: CallBound): Promise<void> {
    const key = this.gridKey(network);
    for (let attempt = 0; attempt < 5; attempt++) {
      const kv = await this.etcd.get(key, bound);
      // the cluster's, or one this node's is part of (it lacks ranges others have: it names its blocks alike)
      if (kv && gridExtends(kv.value, grid)) {
        this.grids.set(network, { mine: grid, cluster: kv.value });
        return;
      }
      if (kv && !gridExtends(grid, kv.value)) throw new GridMismatch(network, grid, kv.value);
      // none yet, or this node's adds ranges: recorded unless another node changed it meanwhile
      const compare = kv ? { key, modRevision: kv.modRevision } : { key, createRevision: 0 };
      try {
        await this.etcd.txn({ compare: [compare], success: [{ put: key, value: grid }] }, bound);
      } catch (e) {
        if (!(e instanceof EtcdError && e.indeterminate)) throw e;
      }
      // read back on the next round, whatever the answer was
    }
    throw new RegistryError(`the block grid of ${network} kept changing`);
  }

  /** etcd's errors as the registry's (the message says which kind: unavailable, timeout, rejected). */
  private async call<T>(f: () => Promise<T>): Promise<T> {
    try {
      return await f();
    } catch (e) {
      if (e instanceof EtcdError) throw new RegistryError(e.message, { cause: e });
      throw e;
    }
  }

  private record(kv: KeyValue): BlockRecord | undefined {
    try {
      const v = JSON.parse(kv.value) as BlockValue;
      if (typeof v.node === "string" && Number.isInteger(v.set))
        return { node: v.node, set: v.set, claimed: Number(v.claimed) || 0, version: String(kv.modRevision) };
    } catch {
      // below
    }
    this.onBadKey(kv.key);
    return undefined;
  }

  claim(network: string, set: number, cidr: string, bound: CallBound = {}): Promise<boolean> {
    return this.call(async () => {
      const key = this.key(network, "blocks", cidr);
      const value: BlockValue = { node: this.node, set, claimed: Date.now() };
      // twice at most: once more if the cluster's grid moved since useGrid (another node extended it)
      for (let attempt = 0; ; attempt++) {
        const agreed = this.grids.get(network);
        if (agreed === undefined) throw new RegistryError(`no block grid agreed for ${network} yet`);
        let t: Awaited<ReturnType<EtcdClient["txn"]>>;
        try {
          t = await this.etcd.txn(
            {
              compare: [
                { key, createRevision: 0 },
                { key: this.gridKey(network), value: agreed.cluster },
              ],
              success: [
                { put: key, value: JSON.stringify(value) },
                { put: this.ownerKey(network, this.node, cidr), value: "" },
              ],
              failure: [{ get: this.gridKey(network) }],
            },
            bound,
          );
        } catch (e) {
          // a lost answer: the write may have committed; etcd says whose it is now
          if (e instanceof EtcdError && e.indeterminate) {
            const kv = await this.etcd.get(key, bound);
            return kv !== undefined && this.record(kv)?.node === this.node;
          }
          throw e;
        }
        if (t.succeeded) return true;
        const now = t.results[0]?.type === "get" ? t.results[0].kv?.value : undefined;
        if (now === agreed.cluster) return false; // the block is taken
        if (attempt > 0) throw new GridMismatch(network, agreed.mine, now ?? "none");
        await this.agreeGrid(network, agreed.mine, bound); // throws GridMismatch if this node's no longer fits
      }
    });
  }

  owner(network: string, cidr: string, bound: CallBound = {}): Promise<BlockRecord | undefined> {
    return this.call(async () => {
      const kv = await this.etcd.get(this.key(network, "blocks", cidr), bound);
      return kv && this.record(kv);
    });
  }

  blocks(network: string, bound: CallBound = {}): Promise<Map<string, BlockRecord>> {
    return this.call(async () => {
      const prefix = this.key(network, "blocks");
      const out = new Map<string, BlockRecord>();
      for (const kv of await this.etcd.range(prefix, bound)) {
        const r = this.record(kv);
        if (r) out.set(kv.key.slice(prefix.length), r);
      }
      return out;
    });
  }

  ownedBy(network: string, node: string, bound: CallBound = {}): Promise<string[]> {
    return this.call(async () => {
      const prefix = this.ownerKey(network, node, "");
      return (await this.etcd.range(prefix, bound)).map((kv) => kv.key.slice(prefix.length));
    });
  }

  release(network: string, cidr: string, record: BlockRecord, bound: CallBound = {}): Promise<boolean> {
    return this.call(async () => {
      const key = this.key(network, "blocks", cidr);
      const txn = () =>
        this.etcd.txn(
          {
            compare: [{ key, modRevision: Number(record.version) }],
            success: [{ delete: key }, { delete: this.ownerKey(network, record.node, cidr) }],
          },
          bound,
        );
      try {
        return (await txn()).succeeded;
      } catch (e) {
        // a lost answer: gone now means this release (or a later one) freed it. Still there does not mean it
        // will not apply later: the caller must not allocate from the block again before `keep`
        if (e instanceof EtcdError && e.indeterminate) {
          const kv = await this.etcd.get(key, bound);
          return kv === undefined;
        }
        throw e;
      }
    });
  }

  keep(network: string, cidr: string, record: BlockRecord, bound: CallBound = {}): Promise<boolean> {
    return this.call(async () => {
      const key = this.key(network, "blocks", cidr);
      const value: BlockValue = { node: record.node, set: record.set, claimed: record.claimed };
      const txn = () =>
        this.etcd.txn(
          {
            compare: [{ key, modRevision: Number(record.version) }],
            success: [{ put: key, value: JSON.stringify(value) }],
          },
          bound,
        );
      try {
        return (await txn()).succeeded;
      } catch (e) {
        // a lost answer: a new version of this node's record means it applied
        if (e instanceof EtcdError && e.indeterminate) {
          const kv = await this.etcd.get(key, bound);
          return kv !== undefined && kv.modRevision !== Number(record.version) && this.record(kv)?.node === this.node;
        }
        throw e;
      }
    });
  }

  heartbeat(bound: CallBound = {}): Promise<boolean> {
    return this.call(async () => {
      if (this.leaseId) {
        const { ttl } = await this.etcd.leaseKeepAliveOnce(this.leaseId, bound);
        if (ttl > 0) return false;
        this.leaseId = null;
      }
      const id = (await this.etcd.leaseGrant(this.ttl, bound)).id;
      await this.etcd.put(this.liveKey(this.node), JSON.stringify({ since: Date.now() }), { ...bound, lease: id });
      this.leaseId = id;
      return true;
    });
  }

  private liveKey(node: string): string {
    return `${this.prefix}/_nodes/${node}`;
  }

  alive(node: string, bound: CallBound = {}): Promise<boolean> {
    return this.call(async () => (await this.etcd.get(this.liveKey(node), bound)) !== undefined);
  }

  liveNodes(bound: CallBound = {}): Promise<Set<string>> {
    return this.call(async () => {
      const prefix = this.liveKey("");
      return new Set((await this.etcd.range(prefix, bound)).map((kv) => kv.key.slice(prefix.length)));
    });
  }

  publish(network: string, used: Record<string, number>, bound: CallBound = {}): Promise<void> {
    return this.call(async () => {
      if (!this.leaseId) throw new RegistryError("no liveness lease yet");
      await this.etcd.put(this.key(network, "nodes", this.node), JSON.stringify({ used, at: Date.now() }), {
        ...bound,
        lease: this.leaseId,
      });
    });
  }

  usage(network: string, bound: CallBound = {}): Promise<Map<string, Record<string, number>>> {
    return this.call(async () => {
      const prefix = this.key(network, "nodes");
      const out = new Map<string, Record<string, number>>();
      for (const kv of await this.etcd.range(prefix, bound)) {
        try {
          out.set(kv.key.slice(prefix.length), (JSON.parse(kv.value) as { used: Record<string, number> }).used ?? {});
        } catch {
          this.onBadKey(kv.key);
        }
      }
      return out;
    });
  }
}
