// containerd's CRI, driven over its unix socket as kubelet drives it (src/cri), running pods on a bridge network
// whose addresses come from the IPAM plugin under test: RunPodSandbox, PodSandboxStatus, ListPodSandbox,
// StopPodSandbox, RemovePodSandbox, and a containerd SIGKILLed in the middle of a RunPodSandbox. Each network gets
// a containerd of its own (conformance/containerd/harness.ts) with a conflist and bin dir made here.
//
// The IPAM plugin is one parameter, LOCAL_IPAM_CRI_IPAM="<type>[:<dir holding its binary>]": by default local-ipam
// from dist/, put in place with `local-ipam install` (binary and conflist, as the node agent does);
// `LOCAL_IPAM_CRI_IPAM=host-local:/usr/lib/cni` runs the same tests on Debian's host-local, with a conflist written
// here. With local-ipam, the node agent's GC runs against this containerd too.
// Root only (containerd, namespaces, bridges, cgroups): CI runs as root.
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { isIP } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { GrpcError, Status } from "../src/cri/index.js";
import { AgentProcess, until } from "../test/agent-process.js";
import { LOCAL_IPAM, removeDir } from "../test/helpers.js";
import { armGate, clearHeld, disarmGate, gatePlugin, heldAdds, installGate } from "./containerd/cni-gate.js";
import { ContainerdHarness, ownedTempDir, reapStale, waitFor } from "./containerd/harness.js";
import { ensurePrerequisites } from "./containerd/prerequisites.js";

const IS_ROOT = process.getuid?.() === 0;
const DEBIAN_PLUGINS = "/usr/lib/cni";

/** The IPAM plugin under test: the `type` in the conflist's ipam block, and the directory holding that binary. */
interface IpamUnderTest {
  type: string;
  binDir: string;
}
function ipamUnderTest(spec = process.env.LOCAL_IPAM_CRI_IPAM ?? `local-ipam:${dirname(LOCAL_IPAM)}`): IpamUnderTest {
  const i = spec.indexOf(":");
  return i < 0 ? { type: spec, binDir: DEBIAN_PLUGINS } : { type: spec.slice(0, i), binDir: spec.slice(i + 1) };
}
const IPAM = ipamUnderTest();

// ---- host state this file changes, restored at the end --------------------------------------------------------

const bridges = new Set<string>();
const workDirs = new Set<string>();
/**
 * The bridge plugin with isGateway turns IP forwarding on; we put it back as it was. The values first seen are kept
 * in a file until restored, so that a run after a killed one restores the machine's, not the killed run's.
 */
const FORWARDING = ["/proc/sys/net/ipv4/ip_forward", "/proc/sys/net/ipv6/conf/all/forwarding"];
const SYSCTL_RECORD = join(tmpdir(), "local-ipam-cri-sysctls.json");
const savedSysctls = new Map<string, string>();

function saveSysctls(): void {
  let recorded: Record<string, string> | undefined;
  try {
    recorded = JSON.parse(readFileSync(SYSCTL_RECORD, "utf8")) as Record<string, string>;
  } catch {
    recorded = undefined;
  }
  for (const p of FORWARDING) {
    const value = recorded?.[p] ?? (existsSync(p) ? readFileSync(p, "utf8") : undefined);
    if (value !== undefined) savedSysctls.set(p, value);
  }
  writeFileSync(SYSCTL_RECORD, JSON.stringify(Object.fromEntries(savedSysctls)));
}

function sh(cmd: string, args: string[]): { status: number | null; out: string } {
  const r = spawnSync(cmd, args, { encoding: "utf8", timeout: 30_000 });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

function hostCleanup(): void {
  for (const br of bridges) sh("ip", ["link", "del", br]);
  bridges.clear();
  for (const d of workDirs) removeDir(d);
  workDirs.clear();
  for (const [path, value] of savedSysctls) {
    try {
      writeFileSync(path, value);
    } catch {
      // read-only /proc/sys: nothing was changed either
    }
  }
  if (savedSysctls.size > 0) rmSync(SYSCTL_RECORD, { force: true });
}

// ---- one network, one containerd ------------------------------------------------------------------------------

interface Net {
  network: string;
  bridge: string;
  work: string;
  binDir: string;
  confDir: string;
  dataDir: string;
  gateDir: string;
  harness: ContainerdHarness;
}

async function startNet(
  network: string,
  bridge: string,
  ranges: { subnet: string }[][],
  opts: { gate?: boolean } = {},
): Promise<Net> {
  const work = ownedTempDir("local-ipam-cri-");
  workDirs.add(work);
  const [binDir, confDir, dataDir, gateDir] = ["bin", "net.d", "data", "gate"].map((d) => join(work, d)) as [
    string,
    string,
    string,
    string,
  ];
  for (const d of [binDir, confDir, dataDir, gateDir]) mkdirSync(d);
  for (const p of ["bridge", "loopback"]) symlinkSync(join(DEBIAN_PLUGINS, p), join(binDir, p));
  const ipamBin = join(IPAM.binDir, IPAM.type);
  if (!existsSync(ipamBin)) throw new Error(`the IPAM plugin ${ipamBin} is missing`);
  if (opts.gate) installGate(binDir);

  sh("ip", ["link", "del", bridge]); // a leftover of a killed run
  bridges.add(bridge);
  const conflistName = `10-${network}.conflist`;
  if (IPAM.type === "local-ipam") {
    // as the node agent does it: the binary and a conflist from a template, for the node's pod CIDRs
    const template = {
      cniVersion: "1.0.0",
      name: network,
      plugins: [
        {
          type: "bridge",
          bridge,
          isGateway: true,
          ipMasq: false,
          ipam: { type: "local-ipam", dataDir, ranges: "{{ranges}}", routes: "{{routes}}" },
        },
        ...(opts.gate ? [gatePlugin(gateDir)] : []),
      ],
    };
    writeFileSync(join(work, "template.json"), JSON.stringify(template, null, 2));
    const cidrs = ranges.flatMap((set) => ["--pod-cidr", set[0]!.subnet]);
    const r = sh(ipamBin, [
      "install",
      "--bin-dir",
      binDir,
      "--conf-dir",
      confDir,
      "--conf-name",
      conflistName,
      "--conflist",
      join(work, "template.json"),
      ...cidrs,
    ]);
    if (r.status !== 0) throw new Error(`local-ipam install failed: ${r.out}`);
  } else {
    symlinkSync(ipamBin, join(binDir, IPAM.type));
    const routes = ranges.map((r) => ({ dst: r[0]!.subnet.includes(":") ? "::/0" : "0.0.0.0/0" }));
    const plugins: object[] = [
      { type: "bridge", bridge, isGateway: true, ipMasq: false, ipam: { type: IPAM.type, dataDir, ranges, routes } },
    ];
    if (opts.gate) plugins.push(gatePlugin(gateDir));
    writeFileSync(
      join(confDir, conflistName),
      JSON.stringify({ cniVersion: "1.0.0", name: network, plugins }, null, 2),
    );
  }

  const harness = await ContainerdHarness.start({ cniBinDir: binDir, cniConfDir: confDir });
  return { network, bridge, work, binDir, confDir, dataDir, gateDir, harness };
}

async function stopNet(net: Net | undefined): Promise<void> {
  if (!net) return;
  disarmGate(net.gateDir); // a held ADD (a failed crash test) goes on, so containerd can stop
  try {
    await net.harness.stop();
  } finally {
    sh("ip", ["link", "del", net.bridge]);
    bridges.delete(net.bridge);
    removeDir(net.work);
    workDirs.delete(net.work);
  }
}

interface Lease {
  ip: string;
  id: string;
  ifname: string;
}
/** The IPAM plugin's lease files: one per address, named by it, holding "<container id>\r\n<ifname>". */
function leases(net: Net): Lease[] {
  const dir = join(net.dataDir, net.network);
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => isIP(f) !== 0)
    .map((ip) => {
      const [id = "", ifname = ""] = readFileSync(join(dir, ip), "utf8").split(/\r?\n/);
      return { ip, id, ifname };
    })
    .sort((a, b) => a.ip.localeCompare(b.ip));
}

/** Interfaces enslaved to the bridge: one veth per live pod. */
function bridgePorts(bridge: string): string[] {
  const r = sh("ip", ["-j", "link", "show", "master", bridge]);
  return r.status === 0 ? (JSON.parse(r.out || "[]") as { ifname: string }[]).map((l) => l.ifname) : [];
}

/** Global addresses on eth0 inside a pod's network namespace. */
function podAddresses(netns: string): string[] {
  const r = sh("nsenter", [`--net=${netns}`, "ip", "-j", "addr", "show", "dev", "eth0"]);
  expect(r.status, r.out).toBe(0);
  const links = JSON.parse(r.out) as { addr_info: { local: string; scope: string }[] }[];
  return links.flatMap((l) => l.addr_info.filter((a) => a.scope === "global").map((a) => a.local)).sort();
}

/** Addresses still in duplicate address detection cannot be used yet; IPv6 ping waits for them explicitly. */
function tentative(dev: string, netns?: string): string[] {
  const cmd = ["ip", "-6", "-j", "addr", "show", "dev", dev, "tentative"];
  const r = netns ? sh("nsenter", [`--net=${netns}`, ...cmd]) : sh(cmd[0]!, cmd.slice(1));
  return (JSON.parse(r.out || "[]") as { addr_info?: { local: string }[] }[]).flatMap((l) =>
    (l.addr_info ?? []).map((a) => a.local),
  );
}

/** One ping from the host: the first reply ends it, `-w 5` bounds it. */
function ping(ip: string): number | null {
  return sh("ping", [isIP(ip) === 6 ? "-6" : "-4", "-n", "-c", "1", "-w", "5", ip]).status;
}

function inSubnet24(ip: string, subnet: string): boolean {
  return ip.startsWith(subnet.split(".").slice(0, 3).join(".") + ".");
}

/** Last check of every network: stop() removes everything, and nothing of the run is left on the host. */
async function expectNothingLeft(net: Net): Promise<void> {
  await net.harness.stop();
  expect(net.harness.leftovers()).toEqual([]);
  expect(leases(net)).toEqual([]);
  expect(bridgePorts(net.bridge)).toEqual([]);
  const results = existsSync("/var/lib/cni/results") ? readdirSync("/var/lib/cni/results") : [];
  expect(results.filter((f) => f.startsWith(`${net.network}-`))).toEqual([]);
}

// ---- the suites -----------------------------------------------------------------------------------------------

// Skipped unless root: containerd, runc, network namespaces, bridges and cgroups all need it.
describe.skipIf(!IS_ROOT)(`containerd CRI with bridge + ${IPAM.type}`, () => {
  beforeAll(() => {
    ensurePrerequisites();
    reapStale(); // what a killed earlier run left: its containerd, shims, mounts, cgroups, work dirs
    saveSysctls();
    process.on("exit", hostCleanup);
  });
  afterAll(() => {
    hostCleanup();
    process.off("exit", hostCleanup);
  });

  describe("IPv4", () => {
    let net: Net | undefined;
    beforeAll(async () => {
      net = await startNet("lipam-cri-v4", "lipamcri0", [[{ subnet: "10.99.0.0/24" }]]);
    });
    afterAll(() => stopNet(net));

    it("three sandboxes get distinct addresses, answer ping through the bridge, and each lease names its sandbox", async () => {
      const h = net!.harness;
      const v = await h.cri.version();
      expect([v.runtimeName, v.runtimeApiVersion]).toEqual(["containerd", "v1"]);

      // kubelet starts pods in parallel: three RunPodSandbox calls at once, three CNI ADDs racing
      const ids = await Promise.all(["web-0", "web-1", "web-2"].map((n) => h.runPod(n)));
      expect(new Set(ids).size).toBe(3);

      const statuses = await Promise.all(ids.map((id) => h.cri.podSandboxStatus(id)));
      const ips = statuses.map((s) => s.status.network.ip);
      for (const s of statuses) {
        expect(s.status.state).toBe("SANDBOX_READY");
        expect(s.status.network.additionalIps).toEqual([]);
        expect(inSubnet24(s.status.network.ip, "10.99.0.0"), s.status.network.ip).toBe(true);
      }
      expect(new Set(ips).size).toBe(3);
      expect(statuses.map((s) => s.status.metadata.name)).toEqual(["web-0", "web-1", "web-2"]);

      for (const [i, id] of ids.entries()) expect(podAddresses(await h.netnsPath(id))).toEqual([ips[i]]);
      for (const ip of ips) expect(ping(ip!), `ping ${ip}`).toBe(0);
      expect(bridgePorts(net!.bridge)).toHaveLength(3);

      const ls = leases(net!);
      expect(ls.map((l) => l.ip)).toEqual([...ips].sort((a, b) => a.localeCompare(b)));
      for (const [i, id] of ids.entries())
        expect(ls.find((l) => l.ip === ips[i])).toEqual({ ip: ips[i], id, ifname: "eth0" });

      const listed = await h.cri.listPodSandbox({ state: "SANDBOX_READY" });
      expect(listed.map((p) => p.id).sort()).toEqual([...ids].sort());
      expect(await h.cri.listPodSandbox({ state: "SANDBOX_NOTREADY" })).toEqual([]);

      // what we encoded reached containerd intact: labels (and a label filter), hostname, DNS config, cgroup parent
      expect(listed.find((p) => p.id === ids[0])!.labels).toMatchObject({
        [ContainerdHarness.LABEL]: h.id,
        "io.kubernetes.pod.name": "web-0",
      });
      expect(
        (await h.cri.listPodSandbox({ labelSelector: { "io.kubernetes.pod.name": "web-1" } })).map((p) => p.id),
      ).toEqual([ids[1]]);
      expect((await h.cri.listPodSandbox({ id: ids[2] })).map((p) => p.metadata.name)).toEqual(["web-2"]);
      expect(h.sandboxFile(ids[0]!, "hostname")).toBe("web-0\n");
      expect(h.sandboxFile(ids[0]!, "resolv.conf")).toMatch(/nameserver 10\.96\.0\.10[\s\S]*ndots:5/);
      expect(h.sandboxCgroups(ids[0]!).length).toBeGreaterThan(0);
    });

    it("StopPodSandbox frees each lease and unplugs the pod; RemovePodSandbox forgets it", async () => {
      const h = net!.harness;
      const ids = (await h.cri.listPodSandbox()).map((p) => p.id);
      expect(ids).toHaveLength(3);
      for (const [i, id] of ids.entries()) {
        await h.cri.stopPodSandbox(id);
        expect(leases(net!).map((l) => l.id)).not.toContain(id);
        expect(leases(net!)).toHaveLength(2 - i);
        expect((await h.cri.podSandboxStatus(id)).status.state).toBe("SANDBOX_NOTREADY");
        await h.cri.stopPodSandbox(id); // kubelet may stop more than once: idempotent
        await h.cri.removePodSandbox(id);
        await expect(h.cri.podSandboxStatus(id)).rejects.toMatchObject({ code: Status.NOT_FOUND });
      }
      expect(leases(net!)).toEqual([]);
      expect(bridgePorts(net!.bridge)).toEqual([]);
      expect(await h.cri.listPodSandbox()).toEqual([]);
    });

    it("stop() leaves nothing behind", () => expectNothingLeft(net!));
  });

  describe("dual stack", () => {
    let net: Net | undefined;
    beforeAll(async () => {
      net = await startNet("lipam-cri-ds", "lipamcri1", [[{ subnet: "10.99.1.0/24" }], [{ subnet: "fd00:99:1::/64" }]]);
    });
    afterAll(() => stopNet(net));

    it("each sandbox gets an IPv4 and an IPv6 address, both reachable, both leased, both freed", async () => {
      const h = net!.harness;
      const ids = await Promise.all(["ds-0", "ds-1"].map((n) => h.runPod(n)));
      const all: string[] = [];
      for (const id of ids) {
        const { status } = await h.cri.podSandboxStatus(id);
        const { ip, additionalIps } = status.network;
        // containerd puts IPv4 first (ip_pref unset), the other family in additional_ips
        expect(isIP(ip), ip).toBe(4);
        expect(inSubnet24(ip, "10.99.1.0")).toBe(true);
        expect(additionalIps).toHaveLength(1);
        expect(isIP(additionalIps[0]!), additionalIps[0]).toBe(6);
        expect(additionalIps[0]!.startsWith("fd00:99:1::")).toBe(true);
        const netns = await h.netnsPath(id);
        expect(podAddresses(netns)).toEqual([ip, additionalIps[0]!].sort());
        await waitFor(`DAD to finish in ${id}`, () => tentative("eth0", netns).length === 0, 30_000);
        all.push(ip, additionalIps[0]!);
        const mine = leases(net!).filter((l) => l.id === id);
        expect(mine.map((l) => l.ip).sort()).toEqual([ip, additionalIps[0]!].sort());
      }
      expect(new Set(all).size).toBe(4);
      await waitFor(`DAD to finish on ${net!.bridge}`, () => tentative(net!.bridge).length === 0, 30_000);
      for (const ip of all) expect(ping(ip), `ping ${ip}`).toBe(0);
      expect(leases(net!)).toHaveLength(4);

      for (const id of ids) await h.stopAndRemove(id);
      expect(leases(net!)).toEqual([]);
      expect(await h.cri.listPodSandbox()).toEqual([]);
    });

    it("stop() leaves nothing behind", () => expectNothingLeft(net!));
  });

  describe("containerd SIGKILLed while a RunPodSandbox is in flight", () => {
    let net: Net | undefined;
    beforeAll(async () => {
      // A gate plugin after bridge holds the ADD open once armed: the kill lands after the IPAM allocation,
      // before containerd has a result, every time.
      net = await startNet("lipam-cri-crash", "lipamcri2", [[{ subnet: "10.99.2.0/24" }]], { gate: true });
    });
    // a failed test must not leave the gate armed, or holding an ADD, for the next one
    const releaseGate = () => {
      if (!net) return;
      disarmGate(net.gateDir);
      for (const g of heldAdds(net.gateDir)) killGatePlugin(g.pid);
      clearHeld(net.gateDir);
    };
    afterEach(releaseGate);
    afterAll(async () => {
      releaseGate();
      await stopNet(net);
    });

    /** The gate runs as a child of containerd and outlives it: ended by its pid, checked against its command line. */
    function killGatePlugin(pid: number): void {
      try {
        if (readFileSync(`/proc/${pid}/cmdline`, "utf8").includes("local-ipam-test-gate")) process.kill(pid, "SIGKILL");
      } catch {
        // already gone
      }
    }

    it("after a restart, kubelet's list, stop and remove leave no lease", async () => {
      const n = net!;
      const h = n.harness;
      const survivor = await h.runPod("survivor"); // gate not armed: passes
      const survivorIp = (await h.cri.podSandboxStatus(survivor)).status.network.ip;

      armGate(n.gateDir);
      const inFlight = h.runPod("crashed").then(
        (id) => ({ id }),
        (error: unknown) => ({ error }),
      );
      const held = await waitFor("the crashed pod's CNI ADD to reach the gate", () => heldAdds(n.gateDir)[0], 60_000);
      // bridge and IPAM have run: the sandbox already holds an address that only a CNI DEL can give back
      expect(
        leases(n)
          .map((l) => l.id)
          .sort(),
      ).toEqual([survivor, held.containerId].sort());

      await h.kill9();
      const outcome = await inFlight;
      expect("error" in outcome, "RunPodSandbox must not succeed: containerd died during it").toBe(true);
      const error = (outcome as { error: unknown }).error;
      expect(error).toBeInstanceOf(GrpcError);
      expect((error as GrpcError).code).toBe(Status.UNAVAILABLE);
      killGatePlugin(held.pid);
      clearHeld(n.gateDir);
      disarmGate(n.gateDir);
      h.track(held.containerId);

      await h.restart();
      // containerd recorded the sandbox (and its netns) before the CNI ADD, so it lists it, not ready
      const listed = await h.cri.listPodSandbox();
      expect(listed.map((p) => [p.id, p.state]).sort()).toEqual(
        [
          [survivor, "SANDBOX_READY"],
          [held.containerId, "SANDBOX_NOTREADY"],
        ].sort(),
      );
      // the survivor's shim and address outlived the crash
      expect((await h.cri.podSandboxStatus(survivor)).status.network.ip).toBe(survivorIp);
      expect(ping(survivorIp)).toBe(0);

      // kubelet: a pod whose sandbox is not ready gets it stopped (CNI DEL without a cached result), then a new attempt
      await h.cri.stopPodSandbox(held.containerId);
      expect(leases(n).map((l) => l.id)).toEqual([survivor]);
      await h.cri.removePodSandbox(held.containerId);
      const retried = await h.runPod("crashed", { attempt: 1 });
      const retriedStatus = (await h.cri.podSandboxStatus(retried)).status;
      expect(retriedStatus.metadata.attempt).toBe(1);
      expect(retriedStatus.state).toBe("SANDBOX_READY");
      expect(
        leases(n)
          .map((l) => l.id)
          .sort(),
      ).toEqual([survivor, retried].sort());

      // the pods are deleted: list, stop and remove everything, as kubelet would
      const removed = await h.removeAllPods();
      expect(removed.sort()).toEqual([survivor, retried].sort());
      expect(leases(n)).toEqual([]);
      expect(bridgePorts(n.bridge)).toEqual([]);
      expect(await h.cri.listPodSandbox()).toEqual([]);
    });

    it("containerd killed for good with sandboxes running: stop() still removes everything of the run", async () => {
      const n = net!;
      const h = n.harness;
      const ids = [await h.runPod("orphan-0"), await h.runPod("orphan-1")];
      await h.kill9(); // two shims and two pause processes now belong to nobody
      await h.stop();
      expect(h.leftovers()).toEqual([]);
      // their namespaces are gone, so are their veths (the kernel dismantles a dead namespace asynchronously)...
      await waitFor("the orphans' veths to go", () => bridgePorts(n.bridge).length === 0, 60_000);
      // ...but no CNI DEL ever ran: the leases stay, as on a node whose runtime never comes back
      expect(
        leases(n)
          .filter((l) => ids.includes(l.id))
          .map((l) => l.id)
          .sort(),
      ).toEqual([...ids].sort());
    });
  });
  // The agent, as the DaemonSet runs it, against this containerd: the plugin it runs is the one install put in
  // the bin dir. Only for local-ipam (its conflists are the ones the agent collects for).
  describe.runIf(IPAM.type === "local-ipam")("the node agent's GC against containerd", () => {
    let net: Net | undefined;
    const stops: (() => Promise<unknown>)[] = [];
    beforeAll(async () => {
      net = await startNet("lipam-cri-gc", "lipamcri3", [[{ subnet: "10.99.3.0/24" }]]);
    });
    afterAll(async () => {
      for (const stop of stops.splice(0)) await stop();
      await stopNet(net);
    });
    const netDir = () => join(net!.dataDir, net!.network);
    /** A lease of a sandbox containerd never had (a missed DEL), last written `ageSeconds` ago. */
    const plant = (ip: string, ageSeconds: number) => {
      const id = createHash("sha256").update(ip).digest("hex"); // a sandbox ID's shape, one per address
      writeFileSync(join(netDir(), ip), `${id}\r\neth0`);
      const t = Date.now() / 1000 - ageSeconds;
      utimesSync(join(netDir(), ip), t, t);
      return id;
    };

    it("releases a leaked lease after 3 listings without its sandbox, keeps live and young ones; with containerd down, releases nothing", async () => {
      const n = net!;
      const h = n.harness;
      const live = await Promise.all(["gc-live-0", "gc-live-1"].map((name) => h.runPod(name)));
      plant("10.99.3.200", 3600);
      plant("10.99.3.201", 0); // young: within the grace
      const agent = await new AgentProcess(
        [
          "--conf-dir",
          n.confDir,
          "--cri-socket",
          h.socket,
          "--gc-interval",
          "100ms",
          "--gc-misses",
          "3",
          "--gc-grace",
          "10m",
        ],
        stops,
        join(n.binDir, "local-ipam"),
      ).started();
      const runs = (result: string) => agent.metric("local_ipam_agent_gc_runs_total", { result });

      await until("the leaked lease to go", () => !existsSync(join(netDir(), "10.99.3.200")), 60_000);
      expect(await runs("ok")).toBeGreaterThanOrEqual(3);
      expect(await agent.metric("local_ipam_agent_leases_released_total", { network: n.network })).toBe(1);
      const okThen = await runs("ok");
      await until("five more listings", async () => (await runs("ok")) >= okThen + 5, 60_000);
      expect(
        leases(n)
          .map((l) => l.id)
          .filter((id) => live.includes(id))
          .sort(),
      ).toEqual([...live].sort());
      expect(existsSync(join(netDir(), "10.99.3.201"))).toBe(true);
      expect(agent.log).toMatch(/released a leaked lease .*address="10\.99\.3\.200"/);

      // containerd gone: cycles are skipped, and an old leak stays where it is
      plant("10.99.3.202", 3600);
      await h.kill9();
      const skippedThen = await runs("skipped");
      await until("five skipped cycles", async () => (await runs("skipped")) >= skippedThen + 5, 60_000);
      expect(existsSync(join(netDir(), "10.99.3.202"))).toBe(true);
      expect(await agent.metric("local_ipam_agent_api_errors_total", { api: "cri" })).toBeGreaterThanOrEqual(5);

      // containerd back: the pods it still has keep their leases, the leak goes
      await h.restart();
      await until("the second leak to go", () => !existsSync(join(netDir(), "10.99.3.202")), 60_000);
      expect(
        leases(n)
          .map((l) => l.id)
          .filter((id) => live.includes(id))
          .sort(),
      ).toEqual([...live].sort());
      expect(await agent.stop()).toBe(0);
      rmSync(join(netDir(), "10.99.3.201")); // the young plant, which nothing owns
      for (const id of live) await h.stopAndRemove(id);
      expect(leases(n)).toEqual([]);
    });

    it("stop() leaves nothing behind", () => expectNothingLeft(net!));
  });
});
