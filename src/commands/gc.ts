// GC (CNI 1.1): remove every lease whose attachment the runtime no longer knows. The list comes in
// cni.dev/valid-attachments (libcni >= 1.2 also sends it as cni.dev/attachments). No list at all means "no
// information": nothing is removed. Only lease files are touched, never lock, last_reserved_ip.N or our own state.
import { goTrim, ownerKey } from "../allocator/store.js";
import { E } from "../cni/errors.js";
import type { CmdArgs } from "../cni/skel.js";
import { loadIpamConfig } from "../config/ipam.js";
import { NetworkStore } from "../store/disk.js";
import { lockTimeoutMs } from "../store/lock.js";

const KEYS = ["cni.dev/valid-attachments", "cni.dev/attachments"];

export interface Attachment {
  containerID: string;
  ifname: string;
}

/** The runtime's list of live attachments, or null when the config carries none. */
export function validAttachments(config: unknown): Attachment[] | null {
  const obj = config as Record<string, unknown>;
  const key = KEYS.find((k) => obj[k] !== undefined && obj[k] !== null);
  if (!key) return null;
  const list = obj[key];
  if (!Array.isArray(list)) throw E.badAttachments(key, "not a list");
  return list.map((a, i) => {
    const entry = a as Record<string, unknown>;
    if (!a || typeof a !== "object" || typeof entry.containerID !== "string" || typeof entry.ifname !== "string")
      throw E.badAttachments(key, `entry ${i} needs the strings containerID and ifname`);
    return { containerID: entry.containerID, ifname: entry.ifname };
  });
}

export function cmdGc(args: CmdArgs): null {
  const conf = loadIpamConfig(args.config, "");
  const attachments = validAttachments(args.config);
  if (attachments === null) return null;
  const store = NetworkStore.openExisting(conf.dataDir, conf.name, lockTimeoutMs(process.env));
  if (!store) return null;
  const keep = new Set(attachments.map((a) => ownerKey(a.containerID, a.ifname)));
  const keepLegacy = new Set(attachments.map((a) => goTrim(a.containerID)));
  const errors: string[] = [];
  store.releaseWindowMs = conf.reuseDelayMs;
  try {
    for (const { name, owner } of store.scan()) {
      if (owner === null) continue; // not a regular file: not ours to judge
      const live = owner.includes("\r\n") ? keep.has(owner) : keepLegacy.has(owner);
      if (live) continue;
      const err = store.removeReporting(name, owner);
      if (err) errors.push(err);
      else if (conf.reuseDelayMs > 0) store.noteRelease(name);
    }
    store.commit();
  } finally {
    store.close();
  }
  if (errors.length > 0) throw E.gcFailed(errors);
  return null;
}
