// Entry point of the operator CLI inside the native executable: the host runs this script instead of the plugin's
// when the binary is started with arguments and without CNI_COMMAND, so a CNI ADD never loads the CLI's code.
import { setErrnoArch } from "../errors.js";
import { setPlatform } from "../platform/index.js";
import { nativePlatform } from "../platform/native.js";
import { runCli } from "./index.js";

const p = nativePlatform();
setPlatform(p);
setErrnoArch(p.arch);
p.exit(runCli(p.argv().slice(1)));
