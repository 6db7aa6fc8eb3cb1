// Entry point: dispatch only. A CNI runtime sets CNI_COMMAND; run with arguments and without it, the binary is
// the operator CLI. The CLI is a bundle of its own (dist/cli.cjs, embedded in the executable beside this one and
// required only here): in the plugin's bundle, its mere presence cost every plugin start 2.5-3 ms.
import { commands } from "./commands/index.js";
import { writeAll } from "./cni/output.js";
import { pluginMain } from "./cni/skel.js";
import { VERSION } from "./version.js";

/** The CLI bundle's path: next to this bundle (built by build.sh; tests and tsc see the source). */
declare const __LOCAL_IPAM_CLI__: string | undefined;
const CLI_BUNDLE = typeof __LOCAL_IPAM_CLI__ === "string" ? __LOCAL_IPAM_CLI__ : "./cli/index.js";

const args = process.argv.slice(2);
if ((process.env.CNI_COMMAND ?? "") === "" && args.length > 0) {
  Promise.resolve()
    .then(() => (require(CLI_BUNDLE) as typeof import("./cli/index.js")).runCli(args))
    .then(
      (status) => process.exit(status),
      (e: unknown) => {
        writeAll(2, `local-ipam: ${e instanceof Error ? e.message : String(e)}\n`);
        process.exit(1);
      },
    );
} else {
  process.exit(pluginMain(process.env, commands, `CNI local-ipam plugin v${VERSION}`));
}
