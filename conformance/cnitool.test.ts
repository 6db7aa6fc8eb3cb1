// Real clients: our cnitool on Debian's libcni drives conflists from a temporary NETCONFPATH, with real network
// namespaces and Debian's bridge plugin. Every scenario runs with local-ipam and again with host-local in the
// list, and the outcomes are compared. Root only (namespaces, bridges): CI runs as root.
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { HOST_LOCAL, LOCAL_IPAM, ROOT, removeDir, tempDir } from "../test/helpers.js";

const CNITOOL = join(ROOT, "conformance", "cnitool", "cnitool");
const PLUGINS = "/usr/lib/cni";
const PREFIX = "lipamct"; // names of our namespaces and bridges, so cleanup can find leftovers

let root: string;
let netconf: string;
let bin: string;
let data: string;
let cache: string;
const namespaces = new Set<string>();
const bridges = new Set<string>();

function sh(cmd: string, args: string[]): { status: number | null; out: string } {
  const r = spawnSync(cmd, args, { encoding: "utf8" });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

function netnsAdd(name: string): string {
  expect(sh("ip", ["netns", "add", name]).status).toBe(0);
  namespaces.add(name);
  return `/var/run/netns/${name}`;
}
function netnsDel(name: string): void {
  sh("ip", ["netns", "del", name]);
  namespaces.delete(name);
}

function cleanupNetwork(): void {
  for (const ns of [...namespaces]) netnsDel(ns);
  for (const br of [...bridges]) sh("ip", ["link", "del", br]);
  bridges.clear();
}

interface ToolResult {
  status: number | null;
  json: any;
  stdout: string;
  stderr: string;
}
function cnitool(command: string, network: string, netns?: string, env: Record<string, string> = {}): ToolResult {
  const r = spawnSync(CNITOOL, netns ? [command, network, netns] : [command, network], {
    encoding: "utf8",
    env: { PATH: process.env.PATH, NETCONFPATH: netconf, CNI_PATH: bin, CNI_CACHE_DIR: cache, ...env },
  });
  let json: any;
  try {
    json = r.stdout.trim() ? JSON.parse(r.stdout) : undefined;
  } catch {
    json = undefined;
  }
  return { status: r.status, json, stdout: r.stdout, stderr: r.stderr };
}

type Ipam = "local-ipam" | "host-local";
/** Writes a conflist; `bridge` false makes a list holding the IPAM plugin alone (its own ipam block). */
function conflist(
  name: string,
  ipamType: Ipam,
  ipam: object,
  opts: { version?: string; bridge?: string; capabilities?: object } = {},
): void {
  const dataDir = join(data, ipamType);
  const ipamBlock = { type: ipamType, dataDir, ...ipam };
  const plugin = opts.bridge
    ? {
        type: "bridge",
        bridge: opts.bridge,
        isGateway: true,
        ipam: ipamBlock,
        ...(opts.capabilities ? { capabilities: opts.capabilities } : {}),
      }
    : { type: ipamType, ipam: ipamBlock, ...(opts.capabilities ? { capabilities: opts.capabilities } : {}) };
  if (opts.bridge) bridges.add(opts.bridge);
  writeFileSync(
    join(netconf, `10-${name}.conflist`),
    JSON.stringify({ cniVersion: opts.version ?? "1.0.0", name, plugins: [plugin] }),
  );
}

function leases(ipamType: Ipam, network: string): string[] {
  const dir = join(data, ipamType, network);
  return existsSync(dir)
    ? readdirSync(dir)
        .filter((f) => f !== "lock" && !f.startsWith("last_reserved_ip"))
        .sort()
    : [];
}

/** The addresses a result hands out (what must match between the two plugins). */
const addrs = (r: ToolResult): string[] => (r.json?.ips ?? []).map((i: any) => i.address);

/** The IPv4/IPv6 addresses eth0 really carries inside a namespace. */
function addressesIn(ns: string, family: "-4" | "-6"): string[] {
  const out = sh("ip", ["netns", "exec", ns, "ip", "-j", family, "addr", "show", "dev", "eth0"]).out;
  const info = JSON.parse(out) as { addr_info: { local: string; prefixlen: number; scope: string }[] }[];
  return info.flatMap((l) => l.addr_info.filter((a) => a.scope === "global").map((a) => `${a.local}/${a.prefixlen}`));
}

beforeAll(() => {
  if (process.getuid?.() !== 0) throw new Error("the cnitool suite needs root (network namespaces, bridges)");
  for (const p of [HOST_LOCAL, `${PLUGINS}/bridge`, LOCAL_IPAM]) if (!existsSync(p)) throw new Error(`${p} is missing`);
  const build = sh(join(ROOT, "conformance", "cnitool", "build.sh"), []);
  if (build.status !== 0) throw new Error(`building cnitool failed: ${build.out}`);
  // leftovers of an earlier, killed run
  for (const ns of sh("ip", ["netns", "list"]).out.split("\n"))
    if (ns.startsWith(PREFIX)) sh("ip", ["netns", "del", ns.split(" ")[0]!]);
  root = tempDir("local-ipam-cnitool-");
  [netconf, bin, data, cache] = ["net.d", "bin", "data", "cache"].map((d) => join(root, d)) as [
    string,
    string,
    string,
    string,
  ];
  for (const d of [netconf, bin, data, cache]) mkdirSync(d);
  for (const p of ["bridge", "loopback", "host-local"]) symlinkSync(`${PLUGINS}/${p}`, join(bin, p));
  symlinkSync(LOCAL_IPAM, join(bin, "local-ipam"));
});
afterEach(() => cleanupNetwork());
afterAll(() => {
  cleanupNetwork();
  if (root) removeDir(root);
});

/** One pod lifecycle on a bridge network, recorded so the two plugins can be compared. */
function bridgeLifecycle(ipamType: Ipam, version: string, n: number) {
  const network = `br-${ipamType}-${version.replace(/\./g, "")}`;
  const bridge = `${PREFIX}${ipamType === "local-ipam" ? "l" : "h"}${version.replace(/\./g, "")}`;
  conflist(network, ipamType, { subnet: "10.199.0.0/24", routes: [{ dst: "0.0.0.0/0" }] }, { version, bridge });
  const nss = Array.from({ length: n }, (_, i) => netnsAdd(`${PREFIX}-${i}`));
  const added = nss.map((ns) => cnitool("add", network, ns));
  for (const a of added) expect(a.status, a.stdout + a.stderr).toBe(0);
  const inNs = nss.map((_, i) => addressesIn(`${PREFIX}-${i}`, "-4"));
  const ping = sh("ip", [
    "netns",
    "exec",
    `${PREFIX}-0`,
    "ping",
    // sends until the first reply (a first packet may go while the veth is still coming up), for at most 5 s
    "-c",
    "1",
    "-w",
    "5",
    addrs(added[1]!)[0]!.split("/")[0]!,
  ]);
  const checks = nss.map((ns) => cnitool("check", network, ns).status);
  const during = leases(ipamType, network);
  const cachedDuring = readdirSync(join(cache, "results")).filter((f) => f.startsWith(`${network}-`)).length;
  const dels = nss.map((ns) => cnitool("del", network, ns).status);
  const cachedAfter = readdirSync(join(cache, "results")).filter((f) => f.startsWith(`${network}-`)).length;
  return {
    addresses: added.map(addrs),
    routes: added.map((a) => a.json.routes),
    inNs,
    ping: ping.status,
    checks,
    during,
    cachedDuring,
    dels,
    after: leases(ipamType, network),
    cachedAfter,
  };
}

describe("cnitool with bridge: local-ipam and host-local side by side", () => {
  for (const version of ["0.3.1", "0.4.0", "1.0.0"]) {
    it(`cniVersion ${version}: three pods get distinct addresses, reach each other, CHECK and DEL through the result cache`, () => {
      const ours = bridgeLifecycle("local-ipam", version, 3);
      cleanupNetwork();
      const ref = bridgeLifecycle("host-local", version, 3);
      expect(ours.addresses).toEqual([["10.199.0.2/24"], ["10.199.0.3/24"], ["10.199.0.4/24"]]);
      expect(ours.inNs).toEqual(ours.addresses); // the interface really carries the address
      expect(ours.ping).toBe(0);
      // libcni itself refuses CHECK below 0.4.0
      expect(ours.checks).toEqual(version === "0.3.1" ? [1, 1, 1] : [0, 0, 0]);
      expect(ours.during).toEqual(["10.199.0.2", "10.199.0.3", "10.199.0.4"]);
      expect([ours.cachedDuring, ours.cachedAfter]).toEqual([3, 0]);
      expect(ours.dels).toEqual([0, 0, 0]);
      expect(ours.after).toEqual([]);
      expect(ours).toEqual(ref);
    });
  }
});

let scenarios = 0;
/** Runs one scenario on a network of its own, so leases and cached results never carry over. */
function scenario(ipamType: Ipam, run: (network: string) => unknown): unknown {
  const network = `sc${++scenarios}-${ipamType}`;
  try {
    return run(network);
  } finally {
    cleanupNetwork();
  }
}

describe("capability args, CNI_ARGS and dual stack through libcni", () => {
  it("CAP_ARGS ips with the ips capability gives the asked-for address", () => {
    const go = (t: Ipam) =>
      scenario(t, (net) => {
        conflist(net, t, { subnet: "10.198.1.0/24" }, { bridge: `${PREFIX}c${t[0]}`, capabilities: { ips: true } });
        const ns = netnsAdd(`${PREFIX}-cap`);
        const r = cnitool("add", net, ns, { CAP_ARGS: '{"ips":["10.198.1.77/24"]}' });
        const inNs = addressesIn(`${PREFIX}-cap`, "-4");
        const del = cnitool("del", net, ns, { CAP_ARGS: '{"ips":["10.198.1.77/24"]}' }).status;
        return { status: r.status, addrs: addrs(r), inNs, del, after: leases(t, net) };
      });
    const ours = go("local-ipam");
    expect(ours).toEqual({ status: 0, addrs: ["10.198.1.77/24"], inNs: ["10.198.1.77/24"], del: 0, after: [] });
    expect(ours).toEqual(go("host-local"));
  });
  it("CAP_ARGS ipRanges with the ipRanges capability takes the runtime's range first", () => {
    const go = (t: Ipam) =>
      scenario(t, (net) => {
        conflist(net, t, { subnet: "10.198.2.0/24" }, { capabilities: { ipRanges: true } });
        const r = cnitool("add", net, netnsAdd(`${PREFIX}-rng`), {
          CAP_ARGS: '{"ipRanges":[[{"subnet":"10.198.3.0/24","rangeStart":"10.198.3.50"}]]}',
        });
        return { status: r.status, addrs: addrs(r) };
      });
    const ours = go("local-ipam");
    expect(ours).toEqual({ status: 0, addrs: ["10.198.3.50/24", "10.198.2.2/24"] });
    expect(ours).toEqual(go("host-local"));
  });
  it("CNI_ARGS as Kubernetes sends them, and an IP= request", () => {
    const go = (t: Ipam) =>
      scenario(t, (net) => {
        conflist(net, t, { subnet: "10.198.4.0/24" });
        const k8s =
          "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-0;K8S_POD_INFRA_CONTAINER_ID=0123abcd;K8S_POD_UID=7e4f";
        const a = cnitool("add", net, netnsAdd(`${PREFIX}-k1`), { CNI_ARGS: k8s });
        const b = cnitool("add", net, netnsAdd(`${PREFIX}-k2`), { CNI_ARGS: `${k8s};IP=10.198.4.200` });
        const c = cnitool("add", net, netnsAdd(`${PREFIX}-k3`), { CNI_ARGS: "K8S_POD_NAME=web-1" });
        return { a: [a.status, addrs(a)], b: [b.status, addrs(b)], c: [c.status, c.json] };
      });
    const ours = go("local-ipam") as any;
    expect(ours.a).toEqual([0, ["10.198.4.2/24"]]);
    expect(ours.b).toEqual([0, ["10.198.4.200/24"]]);
    expect(ours.c).toEqual([1, { code: 999, msg: 'ARGS: unknown args ["K8S_POD_NAME=web-1"]' }]);
    expect(ours).toEqual(go("host-local"));
  });
  it("dual stack on a bridge: both families inside the namespace", () => {
    const go = (t: Ipam) =>
      scenario(t, (net) => {
        conflist(
          net,
          t,
          { ranges: [[{ subnet: "10.198.6.0/24" }], [{ subnet: "fd00:198:6::/64" }]] },
          { bridge: `${PREFIX}d${t[0]}` },
        );
        const ns = netnsAdd(`${PREFIX}-ds`);
        const r = cnitool("add", net, ns);
        return {
          status: r.status,
          addrs: addrs(r),
          v4: addressesIn(`${PREFIX}-ds`, "-4"),
          v6: addressesIn(`${PREFIX}-ds`, "-6"),
          check: cnitool("check", net, ns).status,
        };
      });
    const ours = go("local-ipam");
    expect(ours).toEqual({
      status: 0,
      addrs: ["10.198.6.2/24", "fd00:198:6::2/64"],
      v4: ["10.198.6.2/24"],
      v6: ["fd00:198:6::2/64"],
      check: 0,
    });
    expect(ours).toEqual(go("host-local"));
  });
  it("CHECK and DEL get the cached prevResult: a lease removed behind the runtime's back fails CHECK", () => {
    const go = (t: Ipam) =>
      scenario(t, (net) => {
        conflist(net, t, { subnet: "10.198.7.0/24" }, { bridge: `${PREFIX}p${t[0]}` });
        const ns = netnsAdd(`${PREFIX}-pr`);
        cnitool("add", net, ns);
        spawnSync("rm", ["-f", join(data, t, net, "10.198.7.2")]);
        const check = cnitool("check", net, ns);
        const del = cnitool("del", net, ns);
        return { check: [check.status, check.json?.code], del: del.status };
      });
    const ours = go("local-ipam");
    expect(ours).toEqual({ check: [1, 999], del: 0 });
    expect(ours).toEqual(go("host-local"));
  });
});

describe("a list holding the IPAM plugin alone", () => {
  it("ADD, CHECK, DEL in every version from 0.3.1 to 1.0.0, same as host-local", () => {
    for (const version of ["0.3.1", "0.4.0", "1.0.0"]) {
      const go = (t: Ipam) =>
        scenario(t, (net) => {
          conflist(net, t, { ranges: [[{ subnet: "10.197.0.0/24" }], [{ subnet: "fd00:197::/64" }]] }, { version });
          const ns = netnsAdd(`${PREFIX}-al`);
          const a = cnitool("add", net, ns);
          return {
            v: version,
            add: [a.status, a.json?.ips],
            check: cnitool("check", net, ns).status,
            del: cnitool("del", net, ns).status,
            after: leases(t, net),
          };
        });
      const ours = go("local-ipam") as any;
      expect(ours.add[0]).toBe(0);
      expect(ours.after).toEqual([]);
      expect(ours).toEqual(go("host-local"));
    }
  });
  it("1.1.0 (local-ipam only): ADD, CHECK, DEL", () => {
    conflist("alone11", "local-ipam", { subnet: "10.197.1.0/24" }, { version: "1.1.0" });
    const ns = netnsAdd(`${PREFIX}-11`);
    const a = cnitool("add", "alone11", ns);
    expect([a.status, a.json.cniVersion, addrs(a)]).toEqual([0, "1.1.0", ["10.197.1.2/24"]]);
    expect(cnitool("check", "alone11", ns).status).toBe(0);
    expect(cnitool("del", "alone11", ns).status).toBe(0);
    expect(leases("local-ipam", "alone11")).toEqual([]);
  });
  it("cnitool gc after a namespace was deleted without DEL frees only that lease", () => {
    conflist("gcnet", "local-ipam", { subnet: "10.197.2.0/24" }, { version: "1.1.0" });
    const keep = netnsAdd(`${PREFIX}-gk`);
    const lost = netnsAdd(`${PREFIX}-gl`);
    expect(cnitool("add", "gcnet", keep).status).toBe(0);
    expect(cnitool("add", "gcnet", lost).status).toBe(0);
    expect(leases("local-ipam", "gcnet")).toEqual(["10.197.2.2", "10.197.2.3"]);
    netnsDel(`${PREFIX}-gl`); // the pod died, no DEL ever came
    const gc = cnitool("gc", "gcnet");
    expect([gc.status, gc.stdout]).toEqual([0, ""]);
    expect(leases("local-ipam", "gcnet")).toEqual(["10.197.2.2"]);
    expect(cnitool("check", "gcnet", keep).status).toBe(0);
  });
  it("cnitool status on a full pool: ready by default (said on stderr), error 50 when the operator opts in", () => {
    conflist("stnet", "local-ipam", { subnet: "10.197.3.0/30" }, { version: "1.1.0" }); // one address
    expect(cnitool("status", "stnet")).toMatchObject({ status: 0, stdout: "", stderr: "" });
    expect(cnitool("add", "stnet", netnsAdd(`${PREFIX}-s1`)).status).toBe(0);
    const ready = cnitool("status", "stnet");
    expect([ready.status, ready.stdout]).toEqual([0, ""]);
    expect(ready.stderr).toContain("range set 0 (10.197.3.1-10.197.3.2) has no free address");
    conflist(
      "stnet",
      "local-ipam",
      { subnet: "10.197.3.0/30", statusOnExhaustion: "unavailable" },
      { version: "1.1.0" },
    );
    const unavailable = cnitool("status", "stnet");
    expect(unavailable.status).toBe(1);
    expect(unavailable.json).toMatchObject({
      code: 50,
      msg: "no IP addresses available in range set 0: 10.197.3.1-10.197.3.2",
    });
  });
});
