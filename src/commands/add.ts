// ADD: one address from every range set (a requested one where asked), all or nothing.
import { Allocator, LeaseView, releaseById } from "../allocator/allocator.js";
import { ownerKey } from "../allocator/store.js";
import { AllocError, E } from "../cni/errors.js";
import { type Result, resultFor } from "../cni/result.js";
import type { CmdArgs } from "../cni/skel.js";
import { loadIpamConfig } from "../config/ipam.js";
import { parseResolvConf } from "../config/resolvconf.js";
import { type Addr, formatIP } from "../net/ip.js";
import { rangeSetContains } from "../net/range.js";
import { writeAll } from "../cni/output.js";
import { NetworkStore, bootTimeMs, readConfigFile } from "../store/disk.js";
import { lockTimeoutMs } from "../store/lock.js";

export function cmdAdd(args: CmdArgs): unknown {
  const conf = loadIpamConfig(args.config, args.args);
  const result: Result = { ips: [], routes: conf.routes, dns: {} };
  if (conf.resolvConf) result.dns = parseResolvConf(readConfigFile(conf.resolvConf));

  const store = NetworkStore.open(conf.dataDir, conf.name, lockTimeoutMs(process.env), ownerKey(args.containerId, args.ifname));
  try {
    const view = new LeaseView(store);
    store.releaseWindowMs = conf.reuseDelayMs;
    const options = {
      reclaimBefore: conf.reclaimAfterReboot ? bootTimeMs() : null,
      notes: [] as string[],
      reuseDelayMs: conf.reuseDelayMs,
    };
    const requested: Addr[] = [...conf.requested];
    let reserved = 0;
    // host-local releases by (id, ifname) once per range set already served; so do we, for the same leftovers
    const rollback = () => releaseById(store, view, args.containerId, args.ifname, reserved);
    for (const [idx, set] of conf.rangeSets.entries()) {
      const i = requested.findIndex((ip) => rangeSetContains(set, ip));
      const wanted = i >= 0 ? requested.splice(i, 1)[0]! : null;
      try {
        result.ips.push(new Allocator(set, idx, store, view, options).get(args.containerId, args.ifname, wanted));
      } catch (e) {
        rollback();
        if (e instanceof AllocError) throw E.failedRange(idx, e.message);
        throw e;
      }
      reserved++;
    }
    if (requested.length > 0) {
      rollback();
      throw E.leftoverRequested(requested.map(formatIP));
    }
    store.commit();
    for (const note of options.notes) writeAll(2, `${note}\n`);
  } finally {
    store.close();
  }
  return resultFor(result, conf.cniVersion);
}
