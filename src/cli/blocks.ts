// `local-ipam blocks`: the node agent's only way to change which blocks of a cluster network this node allocates
// from. Under the network's lock it adds blocks (after the agent's etcd claim committed), removes them (only while
// no lease lies inside: a lease made after that check is impossible, as ADD reads the file under the same lock),
// or drops them whatever they hold (another node owns them in etcd), and reports every block's use.
import { freeCounts } from "../allocator/pool.js";
import {
  allocatableInBlock,
  type Block,
  blockCount,
  blockInRange,
  blockName,
  blockOf,
  parseBlockName,
  rangeOfBlock,
  restrictToBlocks,
} from "../cluster/blocks.js";
import type { IpamConfig } from "../config/ipam.js";
import { broadcastOf, formatCIDR, formatIP } from "../net/ip.js";
import { formatRange, rangeIndexFor } from "../net/range.js";
import { platform } from "../platform/index.js";
import { lockTimeoutMs } from "../store/lock.js";
import { NetworkStore } from "../store/network.js";
import { UsageError } from "./flags.js";

interface BlocksChange {
  add: string[];
  remove: string[];
  drop: string[];
}

/** A block named on the command line, checked against the config: a range set it exists in, aligned, sized. */
function checkedBlock(conf: IpamConfig, flag: string, text: string): Block {
  const b = parseBlockName(text);
  const set = b && conf.rangeSets[b.set];
  if (!b || !set || rangeOfBlock(set, b.cidr) < 0)
    throw new UsageError(`--${flag}: ${JSON.stringify(text)} is not a block of ${conf.name} (SET:CIDR, of blockSize)`);
  return b;
}

function namedBlock(flag: string, text: string): Block {
  const b = parseBlockName(text);
  if (!b) throw new UsageError(`--${flag}: ${JSON.stringify(text)} is not a block (SET:CIDR)`);
  return b;
}

const same = (a: Block, b: Block) => blockName(a) === blockName(b);

/** Applies the change under the lock and returns the report (as `--json` prints it). */
export function runBlocks(conf: IpamConfig, change: BlocksChange): object {
  if (!conf.cluster) throw new UsageError(`${conf.name} is not a cluster network (no ipam.cluster)`);
  const adds = change.add.map((t) => checkedBlock(conf, "add", t));
  // a block leaves the file whatever its shape: one the config no longer describes (its blockSize or ranges
  // changed) must still be returnable
  const removes = change.remove.map((t) => namedBlock("remove", t));
  const drops = change.drop.map((t) => namedBlock("drop", t));
  const store = NetworkStore.open(conf.dataDir, conf.name, {
    create: true,
    lockTimeoutMs: lockTimeoutMs(platform().env()),
    reuseDelayMs: conf.reuseDelayMs,
  })!;
  try {
    let blocks = store.readBlocks();
    const before = blocks.map(blockName).sort().join();
    const added: string[] = [];
    const removed: string[] = [];
    const refused: { block: string; leases: number; cooling: number }[] = [];
    const dropped: { block: string; leases: number }[] = [];
    const leasesIn = (b: Block) => store.countLeased(b.cidr.ip, broadcastOf(b.cidr.ip, b.cidr.prefix));
    // an address released less than reuseDelay ago must not be handed out by another node either
    const coolingIn = (b: Block) => store.coolingBetween(b.cidr.ip, broadcastOf(b.cidr.ip, b.cidr.prefix));
    for (const b of adds) {
      if (blocks.some((x) => same(x, b))) continue;
      blocks.push(b);
      added.push(blockName(b));
    }
    for (const b of removes) {
      if (!blocks.some((x) => same(x, b))) continue;
      const n = leasesIn(b);
      const cooling = coolingIn(b);
      if (n > 0 || cooling > 0) {
        refused.push({ block: blockName(b), leases: n, cooling });
        continue;
      }
      blocks = blocks.filter((x) => !same(x, b));
      removed.push(blockName(b));
    }
    for (const b of drops) {
      if (!blocks.some((x) => same(x, b))) continue;
      blocks = blocks.filter((x) => !same(x, b));
      dropped.push({ block: blockName(b), leases: leasesIn(b) });
    }
    if (blocks.map(blockName).sort().join() !== before) store.writeBlocks(blocks);
    store.commit();
    return { ...report(conf, store, blocks), added, removed, refused, dropped };
  } finally {
    store.close();
  }
}

/** Per range set: its ranges and block size, the owned blocks with their use, and the free addresses in them. */
function report(conf: IpamConfig, store: NetworkStore, blocks: Block[]): object {
  return {
    network: conf.name,
    agentSocket: conf.cluster!.agentSocket,
    rangeSets: conf.rangeSets.map((set, index) => {
      const mine = blocks.filter((b) => b.set === index);
      const counts = freeCounts(
        restrictToBlocks(
          set,
          mine.map((b) => b.cidr),
        ),
        store,
      );
      return {
        index,
        family: set[0]!.rangeStart.v6 ? 6 : 4,
        ranges: set.map((r) => ({
          range: formatRange(r),
          subnet: formatCIDR(r.subnet),
          start: formatIP(r.rangeStart),
          end: formatIP(r.rangeEnd),
          blockSize: r.blockSize,
          blocks: String(blockCount(r)),
        })),
        // per block: two binary searches each (a node may own thousands of one-address blocks)
        owned: mine.map((b) => {
          let size = 0n;
          let used = 0;
          for (const r of set) {
            const iv = blockInRange(r, b.cidr);
            if (!iv) continue;
            size += iv.to - iv.from + 1n;
            used += store.countLeased({ v6: r.rangeStart.v6, n: iv.from }, { v6: r.rangeStart.v6, n: iv.to });
          }
          const allocatable = allocatableInBlock(set, b.cidr);
          const free = allocatable > BigInt(used) ? allocatable - BigInt(used) : 0n;
          const cooling = store.coolingBetween(b.cidr.ip, broadcastOf(b.cidr.ip, b.cidr.prefix));
          // a block the config's grid does not have (an older blockSize): the grid blocks that hold its leases,
          // which the agent claims so that no other node hands those addresses out
          const fits = rangeOfBlock(set, b.cidr) >= 0;
          const cover = new Set<string>();
          if (!fits && used > 0)
            store.forEachLeased(b.cidr.ip, broadcastOf(b.cidr.ip, b.cidr.prefix), (n) => {
              const ip = { v6: b.cidr.ip.v6, n };
              const r = set[rangeIndexFor(set, ip)];
              if (r) cover.add(blockName({ set: index, cidr: blockOf(r, ip) }));
            });
          return {
            block: blockName(b),
            size: String(size),
            used,
            free: String(free),
            cooling,
            fits,
            ...(cover.size > 0 ? { cover: [...cover].sort() } : {}),
          };
        }),
        free: String(counts.free),
        used: counts.used,
      };
    }),
  };
}
