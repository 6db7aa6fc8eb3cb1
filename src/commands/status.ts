// STATUS (CNI 1.1): can this plugin serve an ADD? It fails for what really stops every ADD: a config that does not
// load, a data directory that cannot be read or written, a lock that cannot be had within the bound. A full range
// set is different: runtimes turn a failing STATUS into NetworkReady=false, kubelet then marks the node NotReady
// and, five minutes later, evicts every pod on it, which frees addresses, and the node flaps. So by default a full
// set is reported on stderr and STATUS succeeds; "statusOnExhaustion": "unavailable" makes it error 50 instead.
import { canServe, poolCounts } from "../allocator/pool.js";
import type { CmdArgs } from "../cni/skel.js";
import { type IpamConfig, loadIpamConfig } from "../config/ipam.js";
import { CniError, Code, E, NOTE } from "../errors.js";
import { formatRangeSet } from "../net/range.js";
import { Dir, probeWritable } from "../store/files.js";
import type { NetworkStore } from "../store/network.js";
import { askAgent, ownedRangeSets } from "./cluster.js";
import { openStore, policyOf } from "./common.js";

/** A set is nearly full below this share of free addresses (a warning only). */
const NEARLY_FULL = 0.05;

export function cmdStatus(args: CmdArgs): null {
  const conf = loadIpamConfig(args.config, "");
  let store: NetworkStore | null;
  try {
    store = openStore(conf, args.env, { create: false });
    if (!store) {
      const dir = nearestDir(conf.dataDir); // nothing leased yet: ADD will create the directories
      try {
        probeWritable(dir);
      } catch (e) {
        throw unusable(e);
      } finally {
        dir.close();
      }
      // a cluster network with no directory has no block yet either: only the agent can serve an ADD
      if (conf.cluster)
        agentServes(
          conf,
          conf.rangeSets.map((_, i) => i),
          args.notes,
        );
      return null;
    }
  } catch (e) {
    throw unusable(e);
  }
  try {
    try {
      // a named probe (platforms without O_TMPFILE) changed the directory: the index must be stamped anew
      if (probeWritable(store.net)) store.touched();
    } catch (e) {
      throw unusable(e);
    }
    const policy = policyOf(conf);
    const exhausted: { index: number; set: string }[] = [];
    const sets = conf.cluster ? ownedRangeSets(conf, store.readBlocks()) : conf.rangeSets;
    sets.forEach((set, index) => {
      if (!canServe(set, store, policy)) {
        exhausted.push({ index, set: formatRangeSet(set) });
        return;
      }
      if (conf.cluster) return; // a node's blocks are small and nearly full by design: the agent keeps headroom
      const counts = poolCounts(set, store, { ...policy, reclaimBefore: () => null });
      if (counts.total > 0n && Number(counts.free) < Number(counts.total) * NEARLY_FULL)
        args.notes.push(NOTE.statusNearlyFull(index, formatRangeSet(set), String(counts.free), String(counts.total)));
    });
    store.commit(); // keeps a rebuilt index for the next call
    if (conf.cluster && exhausted.length > 0) {
      agentServes(
        conf,
        exhausted.map((x) => x.index),
        args.notes,
      );
    } else if (exhausted.length > 0) {
      if (conf.statusOnExhaustion === "unavailable") throw E.statusExhausted(exhausted, conf.reclaimAfterReboot);
      for (const x of exhausted) args.notes.push(NOTE.statusFull(x.index, x.set));
    }
  } finally {
    store.close();
  }
  return null;
}

/**
 * A cluster network whose blocks on this node cannot serve `sets`: ready while the node agent answers (it claims a
 * block at the next ADD), error 50 while it does not.
 */
function agentServes(conf: IpamConfig, sets: number[], notes: string[]): void {
  const cluster = conf.cluster!;
  try {
    askAgent(conf.name, cluster, { op: "ping" }, 2000);
  } catch (e) {
    if (e instanceof CniError) throw E.statusUnusable(e.msg);
    throw e;
  }
  for (const i of sets) notes.push(NOTE.statusNeedsBlock(i, conf.name));
}

/** An I/O failure or a lock timeout: ADD could not work either, which STATUS reports as error 50. */
function unusable(e: unknown): unknown {
  if (e instanceof CniError && (e.code === Code.IOFailure || e.code === Code.TryAgainLater))
    return E.statusUnusable(e.msg);
  return e;
}

/** The data directory, or its nearest existing ancestor (where ADD would create it). */
function nearestDir(path: string): Dir {
  for (let p = path; ; ) {
    try {
      const d = Dir.open(null, p, null, true);
      if (d) return d;
    } catch (e) {
      throw unusable(e);
    }
    const slash = p.replace(/\/+$/, "").lastIndexOf("/");
    if (slash < 0) return Dir.open(null, ".", null, true)!;
    p = slash === 0 ? "/" : p.slice(0, slash);
  }
}
