// DEL: release every lease of (id, ifname); an unknown container is success. Idempotent.
import { LeaseView, releaseById } from "../allocator/allocator.js";
import type { CmdArgs } from "../cni/skel.js";
import { loadIpamConfig } from "../config/ipam.js";
import { NetworkStore } from "../store/disk.js";
import { lockTimeoutMs } from "../store/lock.js";

export function cmdDel(args: CmdArgs): null {
  const conf = loadIpamConfig(args.config, args.args);
  const store = NetworkStore.open(conf.dataDir, conf.name, lockTimeoutMs(process.env));
  try {
    // host-local releases once per range set; with two or more, legacy id-only leases go too
    store.releaseWindowMs = conf.reuseDelayMs;
    releaseById(store, new LeaseView(store), args.containerId, args.ifname, conf.rangeSets.length, conf.reuseDelayMs > 0);
    store.commit();
  } finally {
    store.close();
  }
  return null;
}
