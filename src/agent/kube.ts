// The little of the Kubernetes API the agent needs: its own Node object, read and watched. Credentials come from
// the pod's service account (in-cluster) or a kubeconfig file; no client library (a Node lookup is two GETs).
import { readFileSync } from "node:fs";
import * as http from "node:http";
import * as https from "node:https";
import { dirname, resolve } from "node:path";
import { parse as parseYaml } from "yaml";

const SERVICE_ACCOUNT = "/var/run/secrets/kubernetes.io/serviceaccount";

export interface KubeConfig {
  /** https://host:port (http:// only for tests and local proxies) */
  server: string;
  ca?: Buffer;
  insecureSkipTlsVerify?: boolean;
  /** a bearer token, or a file holding one (read on every request: service-account tokens are rotated) */
  token?: string;
  tokenFile?: string;
  cert?: Buffer;
  key?: Buffer;
  basic?: { username: string; password: string };
}

export class KubeError extends Error {
  constructor(
    message: string,
    /** the HTTP status, when the API answered */
    readonly status?: number,
  ) {
    super(message);
  }
}

/** The pod's own service account, or null when not running in a pod. */
export function inClusterConfig(env: NodeJS.ProcessEnv = process.env): KubeConfig | null {
  const host = env.KUBERNETES_SERVICE_HOST;
  const port = env.KUBERNETES_SERVICE_PORT;
  if (!host || !port) return null;
  let ca: Buffer;
  try {
    ca = readFileSync(`${SERVICE_ACCOUNT}/ca.crt`);
  } catch (e) {
    throw new KubeError(`in a pod, but ${SERVICE_ACCOUNT}/ca.crt is unreadable: ${(e as Error).message}`);
  }
  return {
    server: `https://${host.includes(":") ? `[${host}]` : host}:${port}`,
    ca,
    tokenFile: `${SERVICE_ACCOUNT}/token`,
  };
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);

/** The current context of a kubeconfig: its cluster's server and CA, its user's credentials. */
export function kubeconfigFile(path: string): KubeConfig {
  let doc: unknown;
  try {
    doc = parseYaml(readFileSync(path, "utf8"));
  } catch (e) {
    throw new KubeError(`kubeconfig ${path}: ${(e as Error).message}`);
  }
  const bad = (what: string) => new KubeError(`kubeconfig ${path}: ${what}`);
  if (!isObj(doc)) throw bad("not a mapping");
  const named = (list: unknown, name: unknown, key: string): Obj => {
    const found = Array.isArray(list) ? list.find((e) => isObj(e) && e.name === name) : undefined;
    if (!isObj(found) || !isObj(found[key])) throw bad(`no ${key} named ${JSON.stringify(name)}`);
    return found[key] as Obj;
  };
  const ctx = named(doc.contexts, doc["current-context"], "context");
  const cluster = named(doc.clusters, ctx.cluster, "cluster");
  const user = ctx.user === undefined ? {} : named(doc.users, ctx.user, "user");
  const base = dirname(resolve(path));
  const file = (p: unknown) => readFileSync(resolve(base, String(p)));
  const data = (v: unknown) => Buffer.from(String(v), "base64");
  const pick = (o: Obj, dataKey: string, fileKey: string) =>
    o[dataKey] !== undefined ? data(o[dataKey]) : o[fileKey] !== undefined ? file(o[fileKey]) : undefined;
  if (typeof cluster.server !== "string") throw bad("the cluster has no server");
  if (user.exec !== undefined || user["auth-provider"] !== undefined)
    throw bad("exec and auth-provider credentials are not supported: use a token or a client certificate");
  const conf: KubeConfig = {
    server: cluster.server.replace(/\/+$/, ""),
    ca: pick(cluster, "certificate-authority-data", "certificate-authority"),
    insecureSkipTlsVerify: cluster["insecure-skip-tls-verify"] === true,
    cert: pick(user, "client-certificate-data", "client-certificate"),
    key: pick(user, "client-key-data", "client-key"),
  };
  if (typeof user.token === "string") conf.token = user.token;
  else if (typeof user.tokenFile === "string") conf.tokenFile = resolve(base, user.tokenFile);
  if (typeof user.username === "string")
    conf.basic = { username: user.username, password: String(user.password ?? "") };
  return conf;
}

export interface NodeInfo {
  name: string;
  podCIDRs: string[];
  resourceVersion: string;
}

/** A Node object's pod CIDRs: spec.podCIDRs, or the older single spec.podCIDR. */
function nodeInfo(obj: unknown): NodeInfo {
  if (!isObj(obj) || !isObj(obj.metadata)) throw new KubeError("the API answered with something that is not a Node");
  const spec = isObj(obj.spec) ? obj.spec : {};
  const list = Array.isArray(spec.podCIDRs) ? spec.podCIDRs.filter((c) => typeof c === "string") : [];
  if (list.length === 0 && typeof spec.podCIDR === "string" && spec.podCIDR !== "") list.push(spec.podCIDR);
  return {
    name: String(obj.metadata.name ?? ""),
    podCIDRs: list as string[],
    resourceVersion: String(obj.metadata.resourceVersion ?? ""),
  };
}

type NodeEvent =
  | { type: "ADDED" | "MODIFIED"; node: NodeInfo }
  | { type: "DELETED" }
  | { type: "BOOKMARK"; resourceVersion: string };

export class KubeClient {
  constructor(
    private readonly conf: KubeConfig,
    private readonly timeoutMs = 30_000,
  ) {}

  private request(path: string, signal?: AbortSignal): Promise<http.IncomingMessage> {
    const url = new URL(this.conf.server + path);
    const headers: Record<string, string> = { Accept: "application/json", "User-Agent": "local-ipam-agent" };
    let token = this.conf.token;
    if (this.conf.tokenFile) {
      try {
        token = readFileSync(this.conf.tokenFile, "utf8").trim();
      } catch (e) {
        return Promise.reject(new KubeError(`token file ${this.conf.tokenFile}: ${(e as Error).message}`));
      }
    }
    if (token) headers.Authorization = `Bearer ${token}`;
    else if (this.conf.basic)
      headers.Authorization = `Basic ${Buffer.from(`${this.conf.basic.username}:${this.conf.basic.password}`).toString("base64")}`;
    const tls = url.protocol === "https:";
    const options: https.RequestOptions = {
      method: "GET",
      headers,
      signal,
      ...(tls && {
        ca: this.conf.ca,
        cert: this.conf.cert,
        key: this.conf.key,
        rejectUnauthorized: !this.conf.insecureSkipTlsVerify,
      }),
    };
    return new Promise((resolvePromise, reject) => {
      const req = (tls ? https : http).request(url, options, (res) => {
        if (res.statusCode === 200) return resolvePromise(res);
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (c: string) => {
          if (body.length < 4096) body += c;
        });
        res.on("end", () => {
          let msg = body.trim().slice(0, 300);
          try {
            msg = (JSON.parse(body) as { message?: string }).message ?? msg;
          } catch {
            // not a Status object: the raw text
          }
          reject(new KubeError(`GET ${path}: ${res.statusCode} ${msg}`, res.statusCode));
        });
        res.on("error", reject);
      });
      // no answer at all within the bound (a watch, once answered, is bounded by timeoutSeconds instead)
      req.setTimeout(this.timeoutMs, () =>
        req.destroy(new KubeError(`GET ${path}: no answer in ${this.timeoutMs} ms`)),
      );
      req.on("error", (e) => reject(e instanceof KubeError ? e : new KubeError(`GET ${path}: ${e.message}`)));
      req.end();
    });
  }

  async getNode(name: string, signal?: AbortSignal): Promise<NodeInfo> {
    const res = await this.request(`/api/v1/nodes/${encodeURIComponent(name)}`, signal);
    let body = "";
    res.setEncoding("utf8");
    for await (const chunk of res) body += chunk;
    try {
      return nodeInfo(JSON.parse(body));
    } catch (e) {
      throw e instanceof KubeError ? e : new KubeError(`GET node ${name}: ${(e as Error).message}`);
    }
  }

  /**
   * Watches one Node from `resourceVersion` until the server ends the watch (after about `timeoutSeconds`) or
   * `signal` aborts it; each event goes to `onEvent`. A KubeError with status 410 means the version is too old:
   * read the Node again.
   */
  async watchNode(
    name: string,
    resourceVersion: string,
    onEvent: (e: NodeEvent) => void,
    opts: { signal?: AbortSignal; timeoutSeconds?: number } = {},
  ): Promise<void> {
    const q = new URLSearchParams({
      fieldSelector: `metadata.name=${name}`,
      watch: "true",
      resourceVersion,
      allowWatchBookmarks: "true",
      timeoutSeconds: String(opts.timeoutSeconds ?? 300),
    });
    const res = await this.request(`/api/v1/nodes?${q}`, opts.signal);
    res.setEncoding("utf8");
    let buffered = "";
    for await (const chunk of res) {
      buffered += chunk;
      let nl = buffered.indexOf("\n");
      while (nl >= 0) {
        const line = buffered.slice(0, nl).trim();
        buffered = buffered.slice(nl + 1);
        nl = buffered.indexOf("\n");
        if (line === "") continue;
        let ev: { type?: string; object?: Obj };
        try {
          ev = JSON.parse(line);
        } catch {
          throw new KubeError(`watch of node ${name}: not JSON: ${line.slice(0, 200)}`);
        }
        if (ev.type === "ERROR") {
          const code = Number(ev.object?.code ?? 0);
          throw new KubeError(`watch of node ${name}: ${String(ev.object?.message ?? "error")}`, code || undefined);
        }
        if (ev.type === "BOOKMARK") onEvent({ type: "BOOKMARK", resourceVersion: nodeInfo(ev.object).resourceVersion });
        else if (ev.type === "DELETED") onEvent({ type: "DELETED" });
        else if (ev.type === "ADDED" || ev.type === "MODIFIED") onEvent({ type: ev.type, node: nodeInfo(ev.object) });
      }
      if (buffered.length > 16 << 20) throw new KubeError(`watch of node ${name}: an event larger than 16 MiB`);
    }
  }
}
