// Entry point: dispatch only. A CNI runtime sets CNI_COMMAND; everything else lives in the rooms below.
import { commands } from "./commands/index.js";
import { pluginMain } from "./cni/skel.js";
import { VERSION } from "./version.js";

process.exit(pluginMain(process.env, commands, `CNI local-ipam plugin v${VERSION}`));
