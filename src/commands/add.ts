// ADD: one address from every range set (a requested one where asked), all or nothing: whatever fails, at
// whatever step, every lease this ADD made is removed again before the error is printed.
import { Allocator } from "../allocator/allocator.js";
import { type Result, resultFor } from "../cni/result.js";
import type { CmdArgs } from "../cni/skel.js";
import { loadIpamConfig } from "../config/ipam.js";
import { CniError, E } from "../errors.js";
import { type Addr, formatIP } from "../net/ip.js";
import { rangeSetContains } from "../net/range.js";
import { openStore, policyOf, readResolvConf } from "./common.js";

export function cmdAdd(args: CmdArgs): unknown {
  const conf = loadIpamConfig(args.config, args.args);
  const result: Result = { ips: [], routes: conf.routes, dns: {} };
  if (conf.resolvConf) result.dns = readResolvConf(conf.resolvConf);

  const store = openStore(conf, args.env, { create: true, leaseFor: { id: args.containerId, ifname: args.ifname } })!;
  try {
    const policy = policyOf(conf);
    const requested: Addr[] = [...conf.requested];
    try {
      for (const [idx, set] of conf.rangeSets.entries()) {
        const i = requested.findIndex((ip) => rangeSetContains(set, ip));
        const wanted = i >= 0 ? requested.splice(i, 1)[0]! : null;
        try {
          result.ips.push(
            new Allocator(set, idx, store, policy, args.notes).get(args.containerId, args.ifname, wanted),
          );
        } catch (e) {
          if (e instanceof CniError) throw E.failedRange(idx, e);
          throw e;
        }
      }
      if (requested.length > 0) throw E.leftoverRequested(requested.map(formatIP));
      store.commit();
    } catch (e) {
      args.notes.length = 0;
      store.rollback();
      try {
        store.commit();
      } catch {
        /* the error that made us roll back is the one to report */
      }
      throw e;
    }
  } finally {
    store.close();
  }
  return resultFor(result, conf.cniVersion);
}
