// The DaemonSet's image, run with podman as a node would run it: host directories (temp dirs here) bind-mounted at
// the paths the manifest uses. The agent inside installs the plugin and the conflist (from --pod-cidr, and from a
// Node served by a stand-in API server over the host's loopback), and stops cleanly on SIGTERM.
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FakeKubeApi } from "../test/fake-kube.js";
import { LOCAL_IPAM, removeDir, run, tempDir } from "../test/helpers.js";

const ROOT = join(__dirname, "..");
const IMAGE_TAR = join(ROOT, "dist", "local-ipam-image.tar");
const IS_ROOT = process.getuid?.() === 0;
const VERSION = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")).version;
const TAG = `localhost/local-ipam:${VERSION}`;

let dir: string;
let containersConf: string;
let loadedHere = false;
const containers: string[] = [];

function podman(args: string[], timeout = 120_000): { status: number | null; out: string; err: string } {
  const r = spawnSync("podman", args, {
    encoding: "utf8",
    timeout,
    env: { ...process.env, CONTAINERS_CONF: containersConf },
  });
  return { status: r.status, out: r.stdout ?? "", err: r.stderr ?? "" };
}

async function until(what: string, cond: () => boolean, timeoutMs = 60_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Starts the image detached; returns the container's name. */
function runImage(name: string, mounts: [string, string][], args: string[], network = "none"): string {
  const full = `local-ipam-imgtest-${process.pid}-${name}`;
  containers.push(full);
  const r = podman([
    "--runtime",
    "runc",
    "--cgroup-manager=cgroupfs",
    "run",
    "-d",
    "--name",
    full,
    "--network",
    network,
    ...mounts.flatMap(([host, inside]) => ["-v", `${host}:${inside}`]),
    TAG,
    ...args,
  ]);
  expect(r.status, r.err).toBe(0);
  return full;
}

/** SIGTERM (podman stop), then the exit code and the log. */
function stopImage(name: string): { code: number; log: string } {
  expect(podman(["stop", "-t", "20", name]).status).toBe(0);
  const code = Number(podman(["inspect", name, "--format", "{{.State.ExitCode}}"]).out.trim());
  return { code, log: podman(["logs", name]).err + podman(["logs", name]).out };
}

// Root only: podman runs the image with runc and bind mounts of root's directories.
describe.skipIf(!IS_ROOT)("the image", () => {
  beforeAll(() => {
    dir = tempDir("local-ipam-image-");
    containersConf = join(dir, "containers.conf");
    // runc cannot set podman's default ulimits in this sandbox (environment.md); nothing else is configured
    writeFileSync(containersConf, "[containers]\ndefault_ulimits = []\n");
    const inputs = [LOCAL_IPAM, join(ROOT, "dist", "local-ipam-agent")];
    const stale = !existsSync(IMAGE_TAR) || inputs.some((f) => statSync(IMAGE_TAR).mtimeMs < statSync(f).mtimeMs);
    if (stale) {
      const b = spawnSync(join(ROOT, "scripts", "build-image.sh"), { encoding: "utf8", timeout: 600_000 });
      expect(b.status, b.stderr).toBe(0);
    }
    loadedHere = podman(["image", "exists", TAG]).status !== 0;
    const load = podman(["load", "-i", IMAGE_TAR]);
    expect(load.status, load.err).toBe(0);
  });
  afterAll(() => {
    for (const c of containers) podman(["rm", "-f", "-t", "0", c]);
    if (loadedHere) podman(["rmi", TAG]);
    removeDir(dir);
  });

  it("installs the plugin and the conflist for --pod-cidr into bind-mounted host dirs, then stops on SIGTERM", async () => {
    const bin = join(dir, "a-bin");
    const conf = join(dir, "a-net.d");
    for (const d of [bin, conf]) mkdirSync(d, { mode: 0o755 });
    const name = runImage(
      "static",
      [
        [bin, "/opt/cni/bin"],
        [conf, "/etc/cni/net.d"],
      ],
      ["--bin-dir=/opt/cni/bin", "--conf-dir=/etc/cni/net.d", "--pod-cidr=10.70.0.0/24", "--metrics-addr=127.0.0.1:0"],
    );
    await until("the conflist", () => existsSync(join(conf, "10-local-ipam.conflist")));
    expect(readFileSync(join(bin, "local-ipam")).equals(readFileSync(LOCAL_IPAM))).toBe(true);
    expect(statSync(join(bin, "local-ipam")).mode & 0o777).toBe(0o755);
    const list = JSON.parse(readFileSync(join(conf, "10-local-ipam.conflist"), "utf8"));
    expect(list.plugins[0].ipam).toMatchObject({ type: "local-ipam", ranges: [[{ subnet: "10.70.0.0/24" }]] });
    const ipam = { ...list.plugins[0].ipam, dataDir: join(dir, "a-data") };
    const add = run(
      join(bin, "local-ipam"),
      { command: "ADD" },
      { ...list.plugins[0], ipam, name: list.name, cniVersion: "1.0.0" },
    );
    expect(add.json.ips[0].address).toBe("10.70.0.2/24");
    const { code, log } = stopImage(name);
    expect(code).toBe(0);
    expect(log).toContain('signal="SIGTERM"');
    expect(log).toMatch(/ stopped\n/);
  });

  it("follows a Node's pod CIDRs from the API (TLS, token) as it does outside the image", async () => {
    const bin = join(dir, "b-bin");
    const conf = join(dir, "b-net.d");
    for (const d of [bin, conf]) mkdirSync(d, { mode: 0o755 });
    const api = new FakeKubeApi(dir, "image-node", "tok");
    await api.start();
    try {
      const name = runImage(
        "api",
        [
          [bin, "/opt/cni/bin"],
          [conf, "/etc/cni/net.d"],
          [dir, dir], // the kubeconfig and its CA, at the same path
        ],
        [
          "--node=image-node",
          `--kubeconfig=${api.kubeconfig()}`,
          "--bin-dir=/opt/cni/bin",
          "--conf-dir=/etc/cni/net.d",
          "--metrics-addr=127.0.0.1:0",
        ],
        "host",
      );
      await until("the watch", () => api.watching === 1);
      api.setPodCIDRs(["10.71.0.0/24", "fd00:71::/64"]);
      await until("the conflist", () => existsSync(join(conf, "10-local-ipam.conflist")));
      const list = JSON.parse(readFileSync(join(conf, "10-local-ipam.conflist"), "utf8"));
      expect(list.plugins[0].ipam.ranges).toEqual([[{ subnet: "10.71.0.0/24" }], [{ subnet: "fd00:71::/64" }]]);
      expect(stopImage(name).code).toBe(0);
    } finally {
      await api.stop();
    }
  });

  it("is small for what it holds: the plugin, the agent, Node.js and its libraries", () => {
    const size = statSync(IMAGE_TAR).size;
    expect(size).toBeLessThan(64 << 20);
    const files = podman([
      "run",
      "--rm",
      "--network",
      "none",
      "--entrypoint",
      "/usr/local/bin/local-ipam",
      TAG,
      "--version",
    ]);
    expect(files.out).toMatch(new RegExp(`^local-ipam ${VERSION.replace(/\./g, "\\.")} `));
  });
});
