// The CNI verbs local-ipam answers.
import type { Commands } from "../cni/skel.js";
import { cmdAdd } from "./add.js";
import { cmdCheck } from "./check.js";
import { cmdDel } from "./del.js";
import { cmdGc } from "./gc.js";
import { cmdStatus } from "./status.js";

export const commands: Commands = { ADD: cmdAdd, DEL: cmdDel, CHECK: cmdCheck, GC: cmdGc, STATUS: cmdStatus };
