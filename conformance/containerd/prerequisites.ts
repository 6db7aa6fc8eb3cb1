// What the containerd suite needs on the machine, installed from Debian when missing (as conformance/podman.sh
// does): containerd 1.6 with its CRI plugin, runc, busybox-static for the pause image, the reference CNI plugins,
// ip, ping and nsenter.
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";

const NEEDS: [path: string, pkg: string][] = [
  ["/usr/bin/containerd", "containerd"],
  ["/usr/bin/ctr", "containerd"],
  ["/usr/bin/containerd-shim-runc-v2", "containerd"],
  ["/usr/sbin/runc", "runc"],
  ["/bin/busybox", "busybox-static"],
  ["/usr/lib/cni/bridge", "containernetworking-plugins"],
  ["/usr/lib/cni/loopback", "containernetworking-plugins"],
  ["/usr/lib/cni/host-local", "containernetworking-plugins"],
  ["/usr/bin/ping", "iputils-ping"],
  ["/usr/bin/nsenter", "util-linux"],
  ["/usr/sbin/ip", "iproute2"],
];

/** Installs the missing packages (root only); throws naming what is still missing. */
export function ensurePrerequisites(): void {
  const missing = [...new Set(NEEDS.filter(([p]) => !existsSync(p)).map(([, pkg]) => pkg))];
  if (missing.length === 0) return;
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  const install = () =>
    spawnSync("apt-get", ["install", "-y", "-qq", "--no-install-recommends", ...missing], { env, encoding: "utf8" });
  if (install().status !== 0) {
    spawnSync("apt-get", ["update", "-qq"], { env });
    const r = install();
    if (r.status !== 0) throw new Error(`cannot install ${missing.join(" ")}: ${r.stderr}`);
  }
  const still = NEEDS.filter(([p]) => !existsSync(p)).map(([p]) => p);
  if (still.length) throw new Error(`still missing after apt-get install: ${still.join(" ")}`);
}
