// A real etcd cluster for tests: 1 or 3 members (any count works) started as child processes on 127.0.0.1, on
// ports found free, with data dirs in a temporary directory, optionally with TLS and client-certificate auth.
//
//   const cluster = await EtcdCluster.start({ members: 3, tls: true });
//   cluster.endpoints        // client URLs, in member order
//   cluster.clientTls        // { ca, cert, key } file paths (TLS only)
//   await cluster.leader()   // index of the member that leads now
//   await cluster.kill(i)    // SIGKILL by pid, resolved once the process is gone
//   await cluster.restart(i) // same flags and data dir; resolved once the member reports healthy
//   await cluster.stop()     // SIGKILL every member it started, by pid, and remove the temp dir
//
// Readiness is always polled with a bound, never assumed after a fixed sleep. Members are started one after the
// other, each once the previous one's peer port answers: started together, etcd 3.4's bootstrap probe of its
// peers (1 s per peer that accepts but does not answer yet) makes about one start in three take 1-3 s.
//
// Cleanup on failure: a start that fails kills what it started and removes its directory before throwing; every
// member is spawned under `setpriv --pdeathsig KILL`, so it dies with the test process even when that process is
// killed; and an exit hook kills whatever a test left running (a stop() skipped by a crashed afterAll) and removes
// the directories. Set ETCD_HARNESS_KEEP=1 to keep the directory (member logs: <dir>/mN.log) for a post-mortem.
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import * as http from "node:http";
import * as https from "node:https";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface StartOptions {
  /** number of members; default 1 */
  members?: number;
  /** TLS on client and peer URLs, with client-certificate auth on both; default false */
  tls?: boolean;
  /** raft heartbeat in ms; default 50 */
  heartbeatMs?: number;
  /** raft election timeout in ms; default 500 */
  electionMs?: number;
  /** bound on each wait for readiness (ports, health, leader); default 20 s */
  readyTimeoutMs?: number;
  /** parent of the temporary directory; default os.tmpdir() */
  baseDir?: string;
  /** for the harness's own tests: picks the 2 x members ports (client, peer per member); default: ports found free */
  pickPorts?: (count: number) => Promise<number[]>;
}

/** Paths of PEM files. */
export interface TlsFiles {
  ca: string;
  cert: string;
  key: string;
}

interface Member {
  name: string;
  clientUrl: string;
  peerUrl: string;
  dataDir: string;
  log: string;
  args: string[];
  proc?: ChildProcess;
  /** resolves when the current process has exited */
  exited?: Promise<void>;
  alive: boolean;
}

interface Response {
  status: number;
  body: string;
}

const ETCD = "etcd";
const ETCDCTL = "etcdctl";
const START_ATTEMPTS = 4;

const live = new Set<EtcdCluster>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on("exit", () => {
    for (const c of live) c.killAllSync();
  });
}

export class EtcdCluster {
  /** the temporary directory: data dirs, logs, certificates */
  readonly dir: string;
  readonly tls: boolean;
  /** client-side certificate files for TLS clusters: the CA, a client certificate and its key */
  readonly clientTls: TlsFiles | undefined;
  /** the certificate the members present to each other (and to the harness's own peer probes) */
  private readonly peerTls: TlsFiles | undefined;
  private readonly members: Member[] = [];
  private readonly readyTimeoutMs: number;
  private stopped = false;

  private constructor(dir: string, tls: boolean, readyTimeoutMs: number) {
    this.dir = dir;
    this.tls = tls;
    this.readyTimeoutMs = readyTimeoutMs;
    if (tls) {
      this.clientTls = {
        ca: join(dir, "tls/ca.crt"),
        cert: join(dir, "tls/client.crt"),
        key: join(dir, "tls/client.key"),
      };
      this.peerTls = {
        ca: join(dir, "tls/ca.crt"),
        cert: join(dir, "tls/server.crt"),
        key: join(dir, "tls/server.key"),
      };
    }
  }

  static async start(opts: StartOptions = {}): Promise<EtcdCluster> {
    const n = opts.members ?? 1;
    if (!Number.isInteger(n) || n < 1) throw new Error(`members: ${n}`);
    if (spawnSync(ETCD, ["--version"]).status !== 0) {
      throw new Error("etcd not found: apt-get install etcd-server etcd-client");
    }
    installExitHook();
    const dir = mkdtempSync(join(opts.baseDir ?? tmpdir(), "local-ipam-etcd-"));
    const cluster = new EtcdCluster(dir, opts.tls ?? false, opts.readyTimeoutMs ?? 20_000);
    live.add(cluster);
    try {
      if (cluster.tls) makeCertificates(join(dir, "tls"));
      for (let attempt = 1; ; attempt++) {
        try {
          const ports = await (opts.pickPorts ?? freePorts)(2 * n);
          await cluster.boot(ports, opts.heartbeatMs ?? 50, opts.electionMs ?? 500, attempt);
          return cluster;
        } catch (e) {
          // a port found free was taken by someone else before etcd bound it: new ports, clean data dirs
          const lostRace = cluster.members.some((m) => readLog(m.log).includes("address already in use"));
          await cluster.killAll();
          if (!lostRace || attempt >= START_ATTEMPTS) throw e;
          for (const m of cluster.members) {
            rmSync(m.dataDir, { recursive: true, force: true });
            rmSync(m.log, { force: true });
          }
          cluster.members.length = 0;
        }
      }
    } catch (e) {
      await cluster.stop();
      throw e;
    }
  }

  private async boot(ports: number[], heartbeatMs: number, electionMs: number, attempt: number): Promise<void> {
    const scheme = this.tls ? "https" : "http";
    const n = ports.length / 2;
    for (let i = 0; i < n; i++) {
      const name = `m${i + 1}`;
      this.members.push({
        name,
        clientUrl: `${scheme}://127.0.0.1:${ports[2 * i]}`,
        peerUrl: `${scheme}://127.0.0.1:${ports[2 * i + 1]}`,
        dataDir: join(this.dir, `${name}.etcd`),
        log: join(this.dir, `${name}.log`),
        args: [],
        alive: false,
      });
    }
    const initialCluster = this.members.map((m) => `${m.name}=${m.peerUrl}`).join(",");
    const token = `local-ipam-${process.pid}-${Date.now()}-${attempt}`;
    for (const m of this.members) {
      m.args = [
        "--name",
        m.name,
        "--data-dir",
        m.dataDir,
        "--listen-client-urls",
        m.clientUrl,
        "--advertise-client-urls",
        m.clientUrl,
        "--listen-peer-urls",
        m.peerUrl,
        "--initial-advertise-peer-urls",
        m.peerUrl,
        "--initial-cluster",
        initialCluster,
        "--initial-cluster-token",
        token,
        "--initial-cluster-state",
        "new",
        "--heartbeat-interval",
        String(heartbeatMs),
        "--election-timeout",
        String(electionMs),
        "--logger",
        "zap",
        "--log-outputs",
        "stderr",
      ];
      if (this.tls) {
        const s = this.peerTls!;
        m.args.push(
          "--cert-file",
          s.cert,
          "--key-file",
          s.key,
          "--trusted-ca-file",
          s.ca,
          "--client-cert-auth",
          "--peer-cert-file",
          s.cert,
          "--peer-key-file",
          s.key,
          "--peer-trusted-ca-file",
          s.ca,
          "--peer-client-cert-auth",
        );
      }
    }
    // one after the other: the next once the previous one's peer listener answers HTTP
    for (let i = 0; i < n; i++) {
      this.spawnMember(i);
      const m = this.members[i]!;
      await this.until(`${m.name}'s peer port to answer`, [i], async () => {
        const r = await this.get(m.peerUrl + "/members", this.peerTls);
        return r ? true : undefined;
      });
    }
    await this.waitHealthy();
  }

  private spawnMember(i: number): void {
    const m = this.members[i]!;
    const fd = openSync(m.log, "a");
    const setpriv = existsSync("/usr/bin/setpriv");
    // setpriv sets PR_SET_PDEATHSIG and execs etcd: same pid, and etcd dies with us even if we are SIGKILLed
    const [cmd, args] = setpriv ? ["/usr/bin/setpriv", ["--pdeathsig", "KILL", ETCD, ...m.args]] : [ETCD, m.args];
    const proc = spawn(cmd, args, { stdio: ["ignore", fd, fd], env: { PATH: process.env.PATH ?? "/usr/bin:/bin" } });
    closeSync(fd);
    m.proc = proc;
    m.alive = true;
    m.exited = new Promise((resolve) => {
      proc.once("exit", () => {
        m.alive = false;
        resolve();
      });
      proc.once("error", () => {
        m.alive = false;
        resolve();
      });
    });
  }

  get size(): number {
    return this.members.length;
  }

  /** Client URLs, member i at index i. */
  get endpoints(): string[] {
    return this.members.map((m) => m.clientUrl);
  }

  /** Peer URLs, member i at index i. */
  get peerUrls(): string[] {
    return this.members.map((m) => m.peerUrl);
  }

  alive(i: number): boolean {
    return this.member(i).alive;
  }

  pid(i: number): number | undefined {
    return this.member(i).proc?.pid;
  }

  /** The member's log so far (zap JSON lines). */
  log(i: number): string {
    return readLog(this.member(i).log);
  }

  private member(i: number): Member {
    const m = this.members[i];
    if (!m) throw new Error(`no member ${i} (cluster of ${this.members.length})`);
    return m;
  }

  /** The index of the member that is leader now, by the members' own status: polls until one alive member says it
   * leads (the one with the highest term if two do, as a deposed leader may not know it yet). */
  async leader(timeoutMs = this.readyTimeoutMs): Promise<number> {
    return this.until(
      "a leader",
      [],
      async () => {
        const statuses = await Promise.all(this.members.map((m, i) => (m.alive ? this.status(i) : undefined)));
        let best: { i: number; term: bigint } | undefined;
        statuses.forEach((s, i) => {
          if (s && s.leader !== "0" && s.leader === s.memberId && (!best || s.term > best.term))
            best = { i, term: s.term };
        });
        return best?.i;
      },
      timeoutMs,
    );
  }

  /** Member i's view: its id, the leader it knows ("0": none), its raft term; undefined when it does not answer. */
  async status(i: number): Promise<{ memberId: string; leader: string; term: bigint } | undefined> {
    const m = this.member(i);
    const r = await this.post(m.clientUrl + "/v3/maintenance/status", "{}", this.clientTls);
    if (r?.status !== 200) return undefined;
    const j = JSON.parse(r.body);
    return {
      memberId: String(j.header?.member_id ?? ""),
      leader: String(j.leader ?? "0"),
      term: BigInt(j.raftTerm ?? 0),
    };
  }

  /** SIGKILL member i by pid; resolves once it has exited. */
  async kill(i: number): Promise<void> {
    const m = this.member(i);
    if (!m.alive || !m.proc?.pid) return;
    try {
      process.kill(m.proc.pid, "SIGKILL");
    } catch {
      // already gone
    }
    await m.exited;
  }

  /** Start member i again with its flags and data dir; by default waits until it reports healthy, which needs a
   * quorum of members up. */
  async restart(i: number, opts: { waitHealthy?: boolean } = {}): Promise<void> {
    const m = this.member(i);
    if (this.stopped) throw new Error("cluster stopped");
    if (m.alive) throw new Error(`${m.name} is running`);
    this.spawnMember(i);
    if (opts.waitHealthy ?? true) await this.waitHealthy([i]);
  }

  /** Polls /health of the given members (default: all alive ones) until each says true. */
  async waitHealthy(indices?: number[], timeoutMs = this.readyTimeoutMs): Promise<void> {
    const which = indices ?? this.members.flatMap((m, i) => (m.alive ? [i] : []));
    await this.until(
      `${which.map((i) => this.members[i]!.name).join(", ")} to be healthy`,
      which,
      async () => {
        const ok = await Promise.all(which.map((i) => this.healthy(i)));
        return ok.every(Boolean) ? true : undefined;
      },
      timeoutMs,
    );
  }

  async healthy(i: number): Promise<boolean> {
    const r = await this.get(this.member(i).clientUrl + "/health", this.clientTls);
    if (r?.status !== 200) return false;
    try {
      return JSON.parse(r.body).health === "true";
    } catch {
      return false;
    }
  }

  /** Runs etcdctl (API v3) against the given members (default: all), with the client certificate on TLS clusters.
   * Returns stdout; throws with stderr on a non-zero exit. */
  etcdctl(args: string[], opts: { members?: number[]; input?: string } = {}): string {
    const eps = (opts.members ?? this.members.map((_, i) => i)).map((i) => this.member(i).clientUrl);
    const tlsArgs = this.clientTls
      ? ["--cacert", this.clientTls.ca, "--cert", this.clientTls.cert, "--key", this.clientTls.key]
      : [];
    const r = spawnSync(ETCDCTL, [`--endpoints=${eps.join(",")}`, "--command-timeout=5s", ...tlsArgs, ...args], {
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin", ETCDCTL_API: "3" },
      input: opts.input,
      encoding: "utf8",
      timeout: 20_000,
    });
    if (r.status !== 0) throw new Error(`etcdctl ${args.join(" ")}: ${r.error ?? r.stderr}`);
    return r.stdout;
  }

  /** SIGKILL every member it started (by pid), wait for them, remove the temporary directory. Idempotent. */
  async stop(): Promise<void> {
    this.stopped = true;
    await this.killAll();
    if (!process.env.ETCD_HARNESS_KEEP) rmSync(this.dir, { recursive: true, force: true });
    live.delete(this);
  }

  private async killAll(): Promise<void> {
    await Promise.all(this.members.map((_, i) => this.kill(i)));
  }

  /** For the exit hook: no waiting possible there. */
  killAllSync(): void {
    for (const m of this.members) {
      if (m.alive && m.proc?.pid) {
        try {
          process.kill(m.proc.pid, "SIGKILL");
        } catch {
          // gone
        }
      }
    }
    if (!process.env.ETCD_HARNESS_KEEP) rmSync(this.dir, { recursive: true, force: true });
  }

  /** Polls `probe` every 25 ms until it returns a value, for at most `timeoutMs`; fails early, with the log's
   * tail, when one of `watch` exits meanwhile. */
  private async until<T>(
    what: string,
    watch: number[],
    probe: () => Promise<T | undefined>,
    timeoutMs = this.readyTimeoutMs,
  ): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const dead = watch.find((i) => !this.members[i]!.alive);
      if (dead !== undefined) {
        const m = this.members[dead]!;
        throw new Error(`waiting for ${what}: ${m.name} exited; log tail:\n${tail(readLog(m.log))}`);
      }
      const v = await probe();
      if (v !== undefined) return v;
      if (Date.now() > deadline) {
        const logs = watch.map((i) => `${this.members[i]!.name}:\n${tail(readLog(this.members[i]!.log))}`).join("\n");
        throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}\n${logs}`);
      }
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  private get(url: string, tls: TlsFiles | undefined): Promise<Response | undefined> {
    return request("GET", url, undefined, tls);
  }

  private post(url: string, body: string, tls: TlsFiles | undefined): Promise<Response | undefined> {
    return request("POST", url, body, tls);
  }
}

/** One HTTP(S) request on a connection of its own; undefined on any connection error or after 1 s. */
function request(
  method: string,
  url: string,
  body: string | undefined,
  tls: TlsFiles | undefined,
): Promise<Response | undefined> {
  return new Promise((resolve) => {
    const u = new URL(url);
    const opts: https.RequestOptions = {
      method,
      host: u.hostname,
      port: u.port,
      path: u.pathname,
      agent: false,
      timeout: 1000,
    };
    if (tls)
      Object.assign(opts, { ca: readFileSync(tls.ca), cert: readFileSync(tls.cert), key: readFileSync(tls.key) });
    const req = (u.protocol === "https:" ? https : http).request(opts, (res) => {
      let data = "";
      res.setEncoding("utf8");
      res.on("data", (d) => (data += d));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: data }));
      res.on("error", () => resolve(undefined));
    });
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", () => resolve(undefined));
    req.end(body);
  });
}

/** `n` distinct ports that were free a moment ago: bound to 127.0.0.1:0 all at once, read, closed. */
export async function freePorts(n: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from(
      { length: n },
      () =>
        new Promise<ReturnType<typeof createServer>>((resolve, reject) => {
          const s = createServer();
          s.once("error", reject);
          s.listen(0, "127.0.0.1", () => resolve(s));
        }),
    ),
  );
  const ports = servers.map((s) => (s.address() as { port: number }).port);
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  return ports;
}

function readLog(path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return "";
  }
}

function tail(text: string, lines = 15): string {
  return text.trimEnd().split("\n").slice(-lines).join("\n");
}

/** A CA, a server certificate (also used between peers, so it carries clientAuth too: etcd's gateway and its peers
 * dial with it) and a client certificate, all with SANs 127.0.0.1 and localhost, EC P-256, valid for 2 days. */
function makeCertificates(dir: string): void {
  const run = (args: string[]) => {
    const r = spawnSync("openssl", args, { cwd: dir, encoding: "utf8" });
    if (r.status !== 0) throw new Error(`openssl ${args.join(" ")}: ${r.error ?? r.stderr}`);
  };
  mkdirSync(dir, { recursive: true });
  const san = "subjectAltName=IP:127.0.0.1,DNS:localhost";
  writeFileSync(
    join(dir, "server.ext"),
    `basicConstraints=CA:false\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth,clientAuth\n${san}\n`,
  );
  writeFileSync(
    join(dir, "client.ext"),
    `basicConstraints=CA:false\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n${san}\n`,
  );
  const key = (name: string) =>
    run(["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", `${name}.key`]);
  key("ca");
  run([
    "req",
    "-x509",
    "-new",
    "-key",
    "ca.key",
    "-subj",
    "/CN=local-ipam test CA",
    "-days",
    "2",
    "-sha256",
    "-addext",
    "keyUsage=critical,keyCertSign,cRLSign",
    "-out",
    "ca.crt",
  ]);
  for (const [name, cn] of [
    ["server", "etcd"],
    ["client", "local-ipam-test-client"],
  ] as const) {
    key(name);
    run(["req", "-new", "-key", `${name}.key`, "-subj", `/CN=${cn}`, "-out", `${name}.csr`]);
    run([
      "x509",
      "-req",
      "-in",
      `${name}.csr`,
      "-CA",
      "ca.crt",
      "-CAkey",
      "ca.key",
      "-CAcreateserial",
      "-days",
      "2",
      "-sha256",
      "-extfile",
      `${name}.ext`,
      "-out",
      `${name}.crt`,
    ]);
  }
}
