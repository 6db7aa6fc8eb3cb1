// Entry point of the plugin inside the native executable: dispatch only. (Run with arguments and without
// CNI_COMMAND, the executable runs the operator CLI instead: cli/main.ts.)
import { readStdin, writeAll } from "./cni/io.js";
import { pluginMain } from "./cni/skel.js";
import { commands } from "./commands/index.js";
import { setErrnoArch } from "./errors.js";
import { setPlatform } from "./platform/index.js";
import { nativePlatform } from "./platform/native.js";
import { VERSION } from "./version.js";

const p = nativePlatform();
setPlatform(p);
setErrnoArch(p.arch);
p.exit(
  pluginMain(
    { env: p.env(), readStdin, stdout: (t) => writeAll(1, t), stderr: (t) => writeAll(2, t) },
    commands,
    `CNI local-ipam plugin v${VERSION}`,
  ),
);
