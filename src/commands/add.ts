// ADD: one address from every range set (a requested one where asked), all or nothing: whatever fails, at
// whatever step, every lease this ADD made is removed again before the error is printed.
import { Allocator } from "../allocator/allocator.js";
import { type Result, resultFor } from "../cni/result.js";
import type { CmdArgs } from "../cni/skel.js";
import type { IpamConfig } from "../config/ipam.js";
import { loadIpamConfig } from "../config/ipam.js";
import { CniError, E } from "../errors.js";
import { type Addr, formatIP } from "../net/ip.js";
import { formatRangeSet, rangeSetContains } from "../net/range.js";
import { platform } from "../platform/index.js";
import { claimBlock, ownedRangeSets, ownsAddress } from "./cluster.js";
import { openStore, policyOf, readResolvConf } from "./common.js";

export function cmdAdd(args: CmdArgs): unknown {
  const conf = loadIpamConfig(args.config, args.args);
  const result: Result = { ips: [], routes: conf.routes, dns: {} };
  if (conf.resolvConf) result.dns = readResolvConf(conf.resolvConf);
  if (!conf.cluster) {
    allocate(conf, args, result);
    return resultFor(result, conf.cniVersion);
  }
  // a cluster network: when this node's blocks cannot serve, the lock is let go, the agent claims a block, and
  // the whole ADD is tried again, until the claim timeout
  const p = platform();
  const deadline = p.monotonicMs() + conf.cluster.claimTimeoutMs;
  for (;;) {
    const need = allocate(conf, args, result);
    if (!need) return resultFor(result, conf.cniVersion);
    const left = deadline - p.monotonicMs();
    if (left <= 0) throw E.failedRange(need.set, E.claimFailed(conf.name, "the claim timeout passed"));
    try {
      claimBlock(conf, need.set, need.ip, left, need.error);
    } catch (e) {
      if (e instanceof CniError) throw E.failedRange(need.set, e);
      throw e;
    }
    result.ips = [];
  }
}

/** A cluster network's range set that needs a block first: the one holding `ip` if one was asked for. */
interface NeedBlock {
  set: number;
  ip: Addr | null;
  /** what to report if the pool has no block left */
  error: CniError;
}

/**
 * One allocation under the network's lock, all or nothing: every lease this attempt made is removed again on any
 * failure. Null when done; for a cluster network whose blocks cannot serve a range set, what it needs.
 */
function allocate(conf: IpamConfig, args: CmdArgs, result: Result): NeedBlock | null {
  const store = openStore(conf, args.env, { create: true, leaseFor: { id: args.containerId, ifname: args.ifname } })!;
  try {
    const policy = policyOf(conf);
    const requested: Addr[] = [...conf.requested];
    const blocks = conf.cluster ? store.readBlocks() : null;
    const sets = blocks ? ownedRangeSets(conf, blocks) : conf.rangeSets;
    let need: NeedBlock | null = null;
    try {
      for (const [idx, set] of sets.entries()) {
        const i = requested.findIndex((ip) => rangeSetContains(set, ip));
        const wanted = i >= 0 ? requested.splice(i, 1)[0]! : null;
        if (blocks && wanted && !ownsAddress(conf, blocks, idx, wanted)) {
          need = { set: idx, ip: wanted, error: E.requestedTaken(formatIP(wanted), formatRangeSet(set)) };
          throw need.error;
        }
        try {
          result.ips.push(
            new Allocator(set, idx, store, policy, args.notes).get(args.containerId, args.ifname, wanted),
          );
        } catch (e) {
          if (blocks && e instanceof CniError && e.msg === E.exhausted(formatRangeSet(set)).msg)
            need = { set: idx, ip: null, error: e };
          if (e instanceof CniError) throw E.failedRange(idx, e);
          throw e;
        }
      }
      if (requested.length > 0) throw E.leftoverRequested(requested.map(formatIP));
      store.commit();
      return null;
    } catch (e) {
      args.notes.length = 0;
      store.rollback();
      try {
        store.commit();
      } catch {
        /* the error that made us roll back is the one to report */
      }
      if (need) return need;
      throw e;
    }
  } finally {
    store.close();
  }
}
