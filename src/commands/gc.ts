// GC (CNI 1.1): remove every lease whose attachment the runtime no longer knows. The list comes in
// cni.dev/valid-attachments (libcni >= 1.2 also sends it as cni.dev/attachments). No list at all means "no
// information": nothing is removed. Only lease files are touched, never lock, last_reserved_ip.N or our own state.
import type { CmdArgs } from "../cni/skel.js";
import { loadIpamConfig } from "../config/ipam.js";
import { E } from "../errors.js";
import { goDecode, goErrorText, HardError, type Schema, TypeError_ } from "../go/json.js";
import { goTrim } from "../go/strings.js";
import { type NetworkStore, ownerKey } from "../store/network.js";
import { openStore } from "./common.js";

const KEYS = ["cni.dev/valid-attachments", "cni.dev/attachments"] as const;

interface Attachment {
  containerID: string;
  ifname: string;
}

const attachments: Schema = {
  t: "slice",
  goType: "[]types.GCAttachment",
  elem: {
    t: "struct",
    goType: "types.GCAttachment",
    name: "GCAttachment",
    fields: { containerID: { t: "string" }, ifname: { t: "string" } },
  },
};
const gcSchema: Schema = {
  t: "struct",
  goType: "types.NetConf",
  name: "NetConf",
  fields: { [KEYS[0]]: attachments, [KEYS[1]]: attachments },
};

/** The runtime's list of live attachments, or null when the config carries none. */
export function validAttachments(config: unknown): Attachment[] | null {
  let decoded: Record<string, Partial<Attachment>[] | undefined>;
  try {
    decoded = goDecode(config, gcSchema) as typeof decoded;
  } catch (e) {
    if (e instanceof TypeError_ || e instanceof HardError) throw E.badAttachments(KEYS[0], goErrorText(e));
    throw e;
  }
  const key = decoded[KEYS[0]] ? KEYS[0] : KEYS[1];
  const list = decoded[key];
  if (!list) return null;
  // an entry without both would match no lease, and GC would remove that container's addresses: refuse it
  return list.map((a, i) => {
    if (!a?.containerID || !a.ifname)
      throw E.badAttachments(key, `entry ${i} needs the strings containerID and ifname`);
    return { containerID: a.containerID, ifname: a.ifname };
  });
}

/** The lease owners GC must keep: (id, ifname) keys, and container IDs for legacy id-only leases. */
function keepSet(list: Attachment[]): { keys: Set<string>; legacy: Set<string> } {
  return {
    keys: new Set(list.map((a) => ownerKey(a.containerID, a.ifname))),
    legacy: new Set(list.map((a) => goTrim(a.containerID))),
  };
}

/** A lease GC removed, or could not remove. */
export interface Collected {
  name: string;
  owner: string;
  error: string | null;
}

/**
 * One GC pass over a network, under its lock (the store is open): every lease file `isStale` judges by its owner
 * text ("<id>\r\n<ifname>", or a legacy bare id) is removed, only while it still has that owner. CNI GC and the
 * operator's `local-ipam gc` (which the node agent runs for runtimes that never call GC) both come here.
 */
export function collectLeases(store: NetworkStore, isStale: (owner: string, name: string) => boolean): Collected[] {
  const out: Collected[] = [];
  for (const { name, owner } of store.scan()) {
    if (owner === null || !isStale(owner, name)) continue; // not a regular file: not ours to judge
    out.push({ name, owner, error: store.removeLease(name, owner) });
  }
  store.commit();
  return out;
}

export function cmdGc(args: CmdArgs): null {
  const conf = loadIpamConfig(args.config, "");
  const list = validAttachments(args.config);
  if (list === null) return null;
  const store = openStore(conf, args.env, { create: false });
  if (!store) return null;
  const keep = keepSet(list);
  let collected: Collected[];
  try {
    collected = collectLeases(store, (owner) =>
      owner.includes("\r\n") ? !keep.keys.has(owner) : !keep.legacy.has(owner),
    );
  } finally {
    store.close();
  }
  const errors = collected.flatMap((c) => (c.error ? [c.error] : []));
  if (errors.length > 0) throw E.gcFailed(errors);
  return null;
}
