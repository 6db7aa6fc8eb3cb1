// DEL: release every lease of (id, ifname); an unknown container or network is success. Idempotent.
import type { CmdArgs } from "../cni/skel.js";
import { loadIpamConfig } from "../config/ipam.js";
import { openStore } from "./common.js";

export function cmdDel(args: CmdArgs): null {
  const conf = loadIpamConfig(args.config, args.args);
  const store = openStore(conf, args.env, { create: true });
  if (!store) return null;
  try {
    // host-local releases once per range set; with two or more, legacy id-only leases go too
    for (let i = 0; i < conf.rangeSets.length; i++) store.releaseByID(args.containerId, args.ifname);
    store.commit();
  } finally {
    store.close();
  }
  return null;
}
