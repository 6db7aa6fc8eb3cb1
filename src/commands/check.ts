// CHECK: succeeds when any lease in the network is held by (id, ifname), or by the legacy id-only key.
import type { CmdArgs } from "../cni/skel.js";
import { loadIpamConfig } from "../config/ipam.js";
import { E } from "../errors.js";
import { openStore } from "./common.js";

export function cmdCheck(args: CmdArgs): null {
  const conf = loadIpamConfig(args.config, args.args);
  const store = openStore(conf, args.env, { create: true })!;
  try {
    const held = store.getByID(args.containerId, args.ifname).length > 0;
    store.commit(); // keeps a rebuilt index for the next call
    if (!held) throw E.notFound(args.containerId);
  } finally {
    store.close();
  }
  return null;
}
