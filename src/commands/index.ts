// The CNI verbs local-ipam answers.
import { E } from "../cni/errors.js";
import type { Commands } from "../cni/skel.js";
import { cmdAdd } from "./add.js";
import { cmdCheck } from "./check.js";
import { cmdDel } from "./del.js";

export const commands: Commands = {
  ADD: cmdAdd,
  DEL: cmdDel,
  CHECK: cmdCheck,
  GC: () => {
    throw E.notYetImplemented("GC");
  },
  STATUS: () => {
    throw E.notYetImplemented("STATUS");
  },
};
