// deploy/local-ipam.yaml, checked for what it must hold (no API server runs here to apply it): the RBAC the agent
// needs and no more, a DaemonSet that reaches every node with the least privilege that works, flags the agent
// accepts, host paths mounted where the conflist expects them, and a conflist template that installs and loads.
import { spawnSync } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { parseAllDocuments } from "yaml";
import { LOCAL_IPAM, removeDir, run, tempDir } from "../helpers.js";

const ROOT = join(__dirname, "..", "..");
const docs = parseAllDocuments(readFileSync(join(ROOT, "deploy", "local-ipam.yaml"), "utf8")).map((d) => d.toJS());
const byKind = (kind: string): any => {
  const found = docs.filter((d) => d?.kind === kind);
  expect(found, kind).toHaveLength(1);
  return found[0];
};
const ds = byKind("DaemonSet");
const pod = ds.spec.template.spec;
const agent = pod.containers[0];

let dir: string;
beforeEach(() => {
  dir = tempDir();
});
afterEach(() => removeDir(dir));

describe("deploy/local-ipam.yaml", () => {
  it("holds a ServiceAccount, a ClusterRole to get and watch nodes only, its binding, the template and the DaemonSet", () => {
    expect(docs.map((d) => d.kind).sort()).toEqual(
      ["ClusterRole", "ClusterRoleBinding", "ConfigMap", "DaemonSet", "ServiceAccount"].sort(),
    );
    expect(byKind("ClusterRole").rules).toEqual([{ apiGroups: [""], resources: ["nodes"], verbs: ["get", "watch"] }]);
    const binding = byKind("ClusterRoleBinding");
    expect(binding.roleRef).toMatchObject({ kind: "ClusterRole", name: "local-ipam" });
    expect(binding.subjects).toEqual([{ kind: "ServiceAccount", name: "local-ipam", namespace: "kube-system" }]);
    expect(pod.serviceAccountName).toBe(byKind("ServiceAccount").metadata.name);
    expect(ds.spec.selector.matchLabels).toEqual(ds.spec.template.metadata.labels);
  });
  it("runs on every node, before the pod network exists, node-critical, with requests and a memory limit", () => {
    expect(pod.hostNetwork).toBe(true);
    expect(pod.tolerations).toContainEqual({ operator: "Exists" });
    expect(pod.priorityClassName).toBe("system-node-critical");
    expect(agent.resources.requests).toMatchObject({ cpu: expect.any(String), memory: expect.any(String) });
    expect(agent.resources.limits.memory).toBeDefined();
    expect(agent.livenessProbe.httpGet).toMatchObject({ path: "/healthz", port: 9617 });
  });
  it("with the least privilege that works: root for root's directories, no capabilities, no escalation, read-only root", () => {
    expect(agent.securityContext).toMatchObject({
      runAsUser: 0,
      privileged: false,
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ["ALL"] },
    });
    expect(agent.securityContext.capabilities.add).toBeUndefined();
    expect(pod.hostPID ?? false).toBe(false);
    expect(pod.hostIPC ?? false).toBe(false);
  });
  it("mounts each host path at the same path, the CRI socket as a socket", () => {
    const volumes = Object.fromEntries(pod.volumes.map((v: { name: string }) => [v.name, v]));
    const mounts = agent.volumeMounts.filter((m: { name: string }) => volumes[m.name].hostPath);
    const paths = mounts.map((m: { name: string; mountPath: string }) => [m.mountPath, volumes[m.name].hostPath.path]);
    for (const [inside, outside] of paths) expect(inside).toBe(outside);
    expect(paths.map((p: string[]) => p[0]).sort()).toEqual(
      [
        "/etc/cni/net.d",
        "/opt/cni/bin",
        "/run/containerd/containerd.sock",
        "/run/local-ipam",
        "/var/lib/cni/networks",
      ].sort(),
    );
    expect(volumes["cri-socket"].hostPath.type).toBe("Socket");
  });
  it("passes only flags the agent knows, pointing at mounted paths; the node name comes from the downward API", () => {
    const help = spawnSync(process.execPath, [join(LOCAL_IPAM, "..", "local-ipam-agent"), "--help"], {
      encoding: "utf8",
    }).stdout;
    for (const arg of agent.args as string[]) {
      const flag = arg.split("=")[0]!;
      expect(help, flag).toContain(`  ${flag} `);
    }
    const value = (flag: string) => (agent.args as string[]).find((a) => a.startsWith(`${flag}=`))!.split("=")[1];
    const mounted = agent.volumeMounts.map((m: { mountPath: string }) => m.mountPath);
    expect(mounted).toContain(value("--bin-dir"));
    expect(mounted).toContain(value("--conf-dir"));
    expect(mounted).toContain(value("--cri-socket"));
    expect(value("--conflist")!.startsWith(mounted.find((m: string) => m === "/etc/local-ipam"))).toBe(true);
    expect(agent.env).toContainEqual({ name: "NODE_NAME", valueFrom: { fieldRef: { fieldPath: "spec.nodeName" } } });
  });
  it("names the image ./build.sh image makes", () => {
    const version = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")).version;
    expect(agent.image).toBe(`localhost/local-ipam:${version}`);
  });
  it("carries a conflist template that local-ipam install renders and the plugin serves", () => {
    const template = join(dir, "conflist.json");
    writeFileSync(template, byKind("ConfigMap").data["conflist.json"]);
    const conf = join(dir, "net.d");
    mkdirSync(conf, { mode: 0o755 });
    const r = spawnSync(
      LOCAL_IPAM,
      [
        "install",
        "--conf-dir",
        conf,
        "--conflist",
        template,
        "--pod-cidr",
        "10.80.0.0/24",
        "--pod-cidr",
        "fd00:80::/64",
      ],
      { encoding: "utf8" },
    );
    expect(r.stderr).toBe("");
    const list = JSON.parse(readFileSync(join(conf, "10-local-ipam.conflist"), "utf8"));
    const ipam = { ...list.plugins[0].ipam, dataDir: join(dir, "data") };
    const add = run(
      LOCAL_IPAM,
      { command: "ADD" },
      { ...list.plugins[0], ipam, name: list.name, cniVersion: list.cniVersion },
    );
    expect(add.json.ips.map((i: { address: string }) => i.address)).toEqual(["10.80.0.2/24", "fd00:80::2/64"]);
  });
});
