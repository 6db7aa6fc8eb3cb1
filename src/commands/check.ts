// CHECK: succeeds when any lease in the network is held by (id, ifname), or by the legacy id-only key.
import { LeaseView } from "../allocator/allocator.js";
import { E } from "../cni/errors.js";
import type { CmdArgs } from "../cni/skel.js";
import { loadIpamConfig } from "../config/ipam.js";
import { NetworkStore } from "../store/disk.js";
import { lockTimeoutMs } from "../store/lock.js";

export function cmdCheck(args: CmdArgs): null {
  const conf = loadIpamConfig(args.config, args.args);
  const store = NetworkStore.open(conf.dataDir, conf.name, lockTimeoutMs(process.env));
  try {
    const held = new LeaseView(store).heldBy(args.containerId, args.ifname).length > 0;
    store.commit(); // keeps a rebuilt index for the next call
    if (!held) throw E.notFound(args.containerId);
  } finally {
    store.close();
  }
  return null;
}
