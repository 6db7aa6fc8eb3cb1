// STATUS (CNI 1.1): success when every range set can serve an ADD, with a free address or a lease from before
// the last boot that ADD would take over; error 50 naming the exhausted range sets otherwise.
import { LeaseView, canServe } from "../allocator/allocator.js";
import { E } from "../cni/errors.js";
import type { CmdArgs } from "../cni/skel.js";
import { loadIpamConfig } from "../config/ipam.js";
import { formatRangeSet } from "../net/range.js";
import { NetworkStore, bootTimeMs } from "../store/disk.js";
import { lockTimeoutMs } from "../store/lock.js";

export function cmdStatus(args: CmdArgs): null {
  const conf = loadIpamConfig(args.config, "");
  const store = NetworkStore.openExisting(conf.dataDir, conf.name, lockTimeoutMs(process.env));
  if (!store) return null; // nothing leased yet
  try {
    const view = new LeaseView(store);
    const staleBefore = conf.reclaimAfterReboot ? bootTimeMs() : null;
    const exhausted = conf.rangeSets
      .map((set, index) => ({ index, set }))
      .filter(({ set }) => !canServe(set, view, store, staleBefore));
    store.commit(); // keeps a rebuilt index for the next call
    if (exhausted.length > 0) throw E.statusExhausted(exhausted.map((x) => ({ index: x.index, set: formatRangeSet(x.set) })));
  } finally {
    store.close();
  }
  return null;
}
