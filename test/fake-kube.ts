// A stand-in for the Kubernetes API server, for the agent's Node lookup only (the real one cannot run here): one
// Node object over HTTPS with a bearer token, GET and watch (newline-delimited events), on a loopback port found
// free. The certificate is made by openssl at start, for 127.0.0.1.
import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import * as https from "node:https";
import type { AddressInfo } from "node:net";
import { join } from "node:path";

export class FakeKubeApi {
  private server: https.Server | undefined;
  private readonly watchers = new Set<import("node:http").ServerResponse>();
  private version = 100;
  podCIDRs: string[] = [];
  /** requests by kind, for assertions */
  readonly seen = { get: 0, watch: 0, unauthorized: 0 };
  caFile = "";
  port = 0;

  constructor(
    private readonly dir: string,
    readonly nodeName: string,
    readonly token: string,
  ) {}

  private node(): object {
    return {
      apiVersion: "v1",
      kind: "Node",
      metadata: { name: this.nodeName, resourceVersion: String(this.version) },
      spec: this.podCIDRs.length > 0 ? { podCIDR: this.podCIDRs[0], podCIDRs: this.podCIDRs } : {},
    };
  }

  async start(): Promise<void> {
    const key = join(this.dir, "api.key");
    const cert = join(this.dir, "api.crt");
    execFileSync(
      "openssl",
      [
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        key,
        "-out",
        cert,
        "-days",
        "1",
        "-subj",
        "/CN=fake-apiserver",
        "-addext",
        "subjectAltName=IP:127.0.0.1",
      ],
      { stdio: "ignore" },
    );
    this.caFile = cert;
    const server = https.createServer({ key: readFileSync(key), cert: readFileSync(cert) }, (req, res) => {
      if (req.headers.authorization !== `Bearer ${this.token}`) {
        this.seen.unauthorized++;
        res.writeHead(401, { "Content-Type": "application/json" });
        res.end(JSON.stringify({ kind: "Status", code: 401, message: "Unauthorized" }));
        return;
      }
      const url = new URL(req.url ?? "/", "https://127.0.0.1");
      if (url.pathname === `/api/v1/nodes/${this.nodeName}`) {
        this.seen.get++;
        res.writeHead(200, { "Content-Type": "application/json" }).end(JSON.stringify(this.node()));
        return;
      }
      if (
        url.pathname === "/api/v1/nodes" &&
        url.searchParams.get("watch") === "true" &&
        url.searchParams.get("fieldSelector") === `metadata.name=${this.nodeName}`
      ) {
        this.seen.watch++;
        res.writeHead(200, { "Content-Type": "application/json" });
        res.flushHeaders();
        this.watchers.add(res);
        res.on("close", () => this.watchers.delete(res));
        return;
      }
      res.writeHead(404).end();
    });
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(0, "127.0.0.1", () => resolve());
    });
    this.server = server;
    this.port = (server.address() as AddressInfo).port;
  }

  /** A kubeconfig for this server; with a wrong token when asked. */
  kubeconfig(token = this.token): string {
    const path = join(this.dir, `kubeconfig-${token}.yaml`);
    writeFileSync(
      path,
      [
        "apiVersion: v1",
        "kind: Config",
        "current-context: test",
        "clusters:",
        "- name: fake",
        "  cluster:",
        `    server: https://127.0.0.1:${this.port}`,
        `    certificate-authority: ${this.caFile}`,
        "contexts:",
        "- name: test",
        "  context: {cluster: fake, user: agent}",
        "users:",
        "- name: agent",
        "  user:",
        `    token: ${token}`,
        "",
      ].join("\n"),
    );
    return path;
  }

  /** Changes the Node and tells every watcher. */
  setPodCIDRs(cidrs: string[]): void {
    this.podCIDRs = cidrs;
    this.version++;
    const line = `${JSON.stringify({ type: "MODIFIED", object: this.node() })}\n`;
    for (const w of this.watchers) w.write(line);
  }

  /** Ends every watch with 410 Gone, as an API server that compacted past the watcher's version. */
  expireWatches(): void {
    const line = `${JSON.stringify({ type: "ERROR", object: { kind: "Status", code: 410, message: "too old resource version" } })}\n`;
    for (const w of this.watchers) w.end(line);
  }

  get watching(): number {
    return this.watchers.size;
  }

  async stop(): Promise<void> {
    for (const w of this.watchers) w.destroy();
    const server = this.server;
    this.server = undefined;
    if (server) {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  }
}
