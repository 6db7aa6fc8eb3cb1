// The node agent as a process (dist/local-ipam-agent on Node, running dist/local-ipam): the conflist following its
// Node's pod CIDRs through a stand-in API server, GC against a fake CRI runtime whose every listing the test
// allows one at a time, /metrics and /healthz, SIGTERM. containerd's real CRI is conformance/containerd.test.ts.
import { existsSync, mkdirSync, readdirSync, readFileSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { Writer } from "../../src/cri/proto.js";
import { AgentProcess, until } from "../agent-process.js";
import { FakeServer } from "../fake-cri.js";
import { FakeKubeApi } from "../fake-kube.js";
import { LOCAL_IPAM, removeDir, run, tempDir } from "../helpers.js";

let dir: string;
const stops: (() => Promise<unknown>)[] = [];
beforeEach(() => {
  dir = tempDir();
});
afterEach(async () => {
  for (const stop of stops.splice(0).reverse()) await stop();
  removeDir(dir);
});

const dirs = () => {
  const bin = join(dir, "bin");
  const conf = join(dir, "net.d");
  for (const d of [bin, conf]) mkdirSync(d, { mode: 0o755 });
  return { bin, conf };
};
const conflistOf = (conf: string) => JSON.parse(readFileSync(join(conf, "10-local-ipam.conflist"), "utf8"));

describe("the conflist follows the Node's pod CIDRs", () => {
  it("waits while the Node has none, writes them when they come, rewrites when they change, survives a 410", async () => {
    const { bin, conf } = dirs();
    const api = new FakeKubeApi(dir, "node-a", "s3cret");
    await api.start();
    stops.push(() => api.stop());
    const agent = await new AgentProcess(
      ["--node", "node-a", "--kubeconfig", api.kubeconfig(), "--bin-dir", bin, "--conf-dir", conf],
      stops,
    ).started();
    expect(readFileSync(join(bin, "local-ipam")).equals(readFileSync(LOCAL_IPAM))).toBe(true);
    await until("the watch", () => api.watching === 1);
    expect(agent.log).toContain("the Node has no pod CIDRs yet: waiting");
    expect(readdirSync(conf)).toEqual([]);

    api.setPodCIDRs(["10.60.1.0/24", "fd00:60:1::/64"]);
    await until("the conflist", () => existsSync(join(conf, "10-local-ipam.conflist")));
    expect(conflistOf(conf).plugins[0].ipam.ranges).toEqual([
      [{ subnet: "10.60.1.0/24" }],
      [{ subnet: "fd00:60:1::/64" }],
    ]);

    api.expireWatches(); // 410: the agent reads the Node again and watches from there
    await until("a new read and watch", () => api.seen.get === 2 && api.watching === 1);
    api.setPodCIDRs(["10.60.2.0/24"]);
    await until("the new CIDR", () => JSON.stringify(conflistOf(conf).plugins[0].ipam.ranges).includes("10.60.2.0/24"));
    // the plugin it installed serves the conflist it wrote
    const list = conflistOf(conf);
    const add = run(
      join(bin, "local-ipam"),
      { command: "ADD" },
      {
        ...list.plugins[0],
        name: list.name,
        cniVersion: list.cniVersion,
        ipam: { ...list.plugins[0].ipam, dataDir: join(dir, "data") },
      },
    );
    expect(add.json.ips[0].address).toBe("10.60.2.2/24");
    expect(await agent.metric("local_ipam_agent_installs_total", { result: "ok" })).toBe(3); // binary, then 2 conflists
    expect(await agent.metric("local_ipam_agent_api_errors_total", { api: "kubernetes" })).toBe(0);
    expect(await agent.stop()).toBe(0);
  });
  it("counts API errors and keeps trying: a wrong token is refused, and nothing is written", async () => {
    const { conf } = dirs();
    const api = new FakeKubeApi(dir, "node-b", "right");
    await api.start();
    stops.push(() => api.stop());
    api.podCIDRs = ["10.61.0.0/24"];
    const agent = await new AgentProcess(
      ["--node", "node-b", "--kubeconfig", api.kubeconfig("wrong"), "--conf-dir", conf],
      stops,
    ).started();
    await until("two refusals", () => api.seen.unauthorized >= 2, 60_000);
    expect(await agent.metric("local_ipam_agent_api_errors_total", { api: "kubernetes" })).toBeGreaterThanOrEqual(1);
    expect(agent.log).toMatch(/Kubernetes API .*401 Unauthorized/);
    expect(readdirSync(conf)).toEqual([]);
  });
  it("with --node but no API (no kubeconfig, not in a pod) leaves the conflist alone", async () => {
    const { conf } = dirs();
    const mine =
      '{"cniVersion":"1.0.0","name":"mine","plugins":[{"type":"bridge","ipam":{"type":"local-ipam","subnet":"10.62.0.0/24"}}]}';
    writeFileSync(join(conf, "10-local-ipam.conflist"), mine);
    const agent = await new AgentProcess(["--node", "node-c", "--conf-dir", conf], stops).started();
    expect(agent.log).toContain("no Kubernetes API and no --pod-cidr: the conflist is left alone");
    expect((await agent.get("/healthz")).text).toBe("ok\n");
    expect(await agent.stop()).toBe(0);
    expect(readFileSync(join(conf, "10-local-ipam.conflist"), "utf8")).toBe(mine);
    expect(agent.log).toContain("stopped");
  });
});

// ---- GC against a fake CRI runtime ----

const UNAVAILABLE = 14;
const listing = (ids: string[]) => new Writer().repeatedMessage(1, ids, (w, id) => w.string(1, id).int(3, 0)).finish();

describe("GC of leases whose sandbox the CRI runtime no longer lists", () => {
  async function setup(ipam: object = { ranges: [[{ subnet: "10.63.0.0/24" }]] }) {
    const { conf } = dirs();
    const data = join(dir, "data");
    const conflist = {
      cniVersion: "1.0.0",
      name: "crinet",
      plugins: [{ type: "bridge", ipam: { type: "local-ipam", dataDir: data, ...ipam } }],
    };
    writeFileSync(join(conf, "10-crinet.conflist"), JSON.stringify(conflist));
    const netconf = { ...conflist.plugins[0], name: "crinet", cniVersion: "1.0.0" };
    const add = (id: string) => run(LOCAL_IPAM, { command: "ADD", containerId: id }, netconf).json.ips[0].address;
    const cri = new FakeServer(join(dir, "cri.sock"));
    await cri.listen();
    stops.push(() => cri.kill());
    return { conf, net: join(data, "crinet"), add, cri };
  }
  const age = (path: string, seconds: number) => {
    const t = Date.now() / 1000 - seconds;
    utimesSync(path, t, t);
  };

  it("releases after 3 listings in a row without the sandbox; keeps live pods, young leases, and counts nothing while the runtime is down", async () => {
    const { conf, net, add, cri } = await setup();
    add("live");
    add("gone");
    add("young");
    age(join(net, "10.63.0.2"), 3600);
    age(join(net, "10.63.0.3"), 3600);
    writeFileSync(join(net, "10.63.0.9"), "legacy-gone"); // an id-only lease of an older host-local
    age(join(net, "10.63.0.9"), 3600);
    // every listing the test does not allow fails as a runtime that is not there: those must count for nothing
    let allowed = 0;
    cri.reply = (path) => {
      if (path !== "/runtime.v1.RuntimeService/ListPodSandbox") return { status: 12 };
      if (allowed === 0) return { status: UNAVAILABLE, message: "not now" };
      allowed--;
      return { message: listing(["live"]) };
    };
    const agent = await new AgentProcess(
      [
        "--conf-dir",
        conf,
        "--cri-socket",
        cri.socket,
        "--gc-interval",
        "20ms",
        "--gc-misses",
        "3",
        "--gc-grace",
        "10m",
      ],
      stops,
    ).started();
    const okRuns = () => agent.metric("local_ipam_agent_gc_runs_total", { result: "ok" });
    await until(
      "skipped cycles",
      async () => (await agent.metric("local_ipam_agent_gc_runs_total", { result: "skipped" })) >= 5,
    );
    for (let n = 1; n <= 3; n++) {
      expect(readdirSync(net)).toEqual(expect.arrayContaining(["10.63.0.3", "10.63.0.9"]));
      allowed = 1;
      await until(`listing ${n}`, async () => (await okRuns()) === n);
    }
    const left = readdirSync(net).filter((f) => f.startsWith("10."));
    expect(left.sort()).toEqual(["10.63.0.2", "10.63.0.4"]); // live, and young (written just now)
    expect(await agent.metric("local_ipam_agent_leases_released_total", { network: "crinet" })).toBe(2);
    expect(await agent.metric("local_ipam_agent_api_errors_total", { api: "cri" })).toBeGreaterThanOrEqual(5);
    expect(agent.log).toMatch(/released a leaked lease .*address="10\.63\.0\.3" container="gone" ifname="eth0"/);
    expect(agent.log).toMatch(/released a leaked lease .*address="10\.63\.0\.9" container="legacy-gone"/);
    // the pool metrics come from the plugin: 253 addresses, 2 leased
    expect(await agent.metric("local_ipam_addresses", { network: "crinet", state: "used" })).toBe(2);
    expect(await agent.stop()).toBe(0);
  });
  it("with the runtime's socket gone, releases nothing however long it waits", async () => {
    const { conf, net, add, cri } = await setup();
    add("gone");
    age(join(net, "10.63.0.2"), 3600);
    await cri.kill();
    const agent = await new AgentProcess(
      ["--conf-dir", conf, "--cri-socket", cri.socket, "--gc-interval", "10ms", "--gc-misses", "1", "--gc-grace", "1s"],
      stops,
    ).started();
    await until(
      "20 skipped cycles",
      async () => (await agent.metric("local_ipam_agent_gc_runs_total", { result: "skipped" })) >= 20,
    );
    expect(readdirSync(net)).toContain("10.63.0.2");
    expect(await agent.metric("local_ipam_agent_gc_runs_total", { result: "ok" })).toBe(0);
    expect(agent.log).toContain("the CRI runtime cannot be listed: nothing is released");
  });
});

describe("the process", () => {
  it("refuses bad flags with status 2", async () => {
    for (const args of [["--bogus"], ["--gc-misses", "0"], ["--gc-interval", "soon"], ["--metrics-addr", "nope"]]) {
      const a = new AgentProcess(args, stops);
      expect(await a.exit, args.join(" ")).toBe(2);
    }
  });
  it("needs --node to follow a Node", async () => {
    const api = new FakeKubeApi(dir, "n", "t");
    await api.start();
    stops.push(() => api.stop());
    const a = new AgentProcess(["--kubeconfig", api.kubeconfig()], stops);
    expect(await a.exit).toBe(2);
    expect(a.log).toContain("--node (or $NODE_NAME) is needed");
  });
});
