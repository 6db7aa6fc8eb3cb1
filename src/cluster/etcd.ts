// A small etcd v3 client over etcd's JSON gateway (grpc-gateway: POST /v3/... with JSON bodies; keys and values
// in base64, 64-bit integers as decimal strings), on node:http / node:https with keep-alive connections.
//
// What it does and what it promises:
// - Several endpoints, one in use at a time. A request that certainly did not reach etcd (connection refused,
//   TLS handshake failed, "no leader", "too many requests", a proposal dropped) moves on to the next endpoint, in
//   rounds, with a short backoff between rounds, until the call's time is up: elections and dead members are
//   ridden through. The endpoint that answered is kept for the next calls.
// - Every request has its own timeout (`requestTimeoutMs`, also sent to etcd as Grpc-Timeout so it stops waiting
//   too), every call a total bound (`timeoutMs`).
// - A request that may have reached etcd but got no answer (timed out, connection lost mid-way, "request timed
//   out") is retried on another endpoint only when it cannot change anything (reads, lease keep-alives). A write
//   fails at once with `indeterminate: true`: it may have committed (a lost reply is not a failed write). The
//   caller reads back, e.g. an owner token stored as the value. No write is ever sent twice by this client.
// - Errors are EtcdError with `kind`: "unavailable" or "timeout" (the cluster cannot answer now: try later) or
//   "rejected" (etcd, or the TLS handshake, said no: trying again will not help).
// - Every request carries the gRPC metadata hasleader=true: a member cut off from the leader says "no leader" at
//   once instead of holding the request until its own 5 s + 2 x election timeout.
//
// Keys and values are strings, UTF-8 on the wire. Revisions are numbers (exact below 2^53 writes); lease IDs are
// int64 and stay decimal strings. Tested under Node; the TLS material is given as PEM text (see readTlsFiles).
import { readFileSync } from "node:fs";
import * as http from "node:http";
import * as https from "node:https";

type EtcdErrorKind = "unavailable" | "timeout" | "rejected";

interface EtcdAttempt {
  endpoint: string;
  error: string;
}

export class EtcdError extends Error {
  override readonly name = "EtcdError";
  constructor(
    /** "unavailable" / "timeout": retry later; "rejected": etcd or TLS refused this request */
    readonly kind: EtcdErrorKind,
    message: string,
    /** a write that may have been applied although no answer came back: read back before trying again */
    readonly indeterminate: boolean,
    /** the endpoints tried for this call, in order, and what each said */
    readonly attempts: EtcdAttempt[],
    /** etcd's gRPC status code when etcd answered (5: not found, 9: failed precondition, 14: unavailable, ...) */
    readonly grpcCode?: number,
  ) {
    super(message);
  }

  /** true for "unavailable" and "timeout" */
  get retryable(): boolean {
    return this.kind !== "rejected";
  }
}

interface TlsMaterial {
  /** PEM text */
  ca?: string | Buffer;
  cert?: string | Buffer;
  key?: string | Buffer;
}

/** Reads PEM files into TlsMaterial. */
export function readTlsFiles(paths: { ca?: string; cert?: string; key?: string }): TlsMaterial {
  const read = (p?: string) => (p === undefined ? undefined : readFileSync(p));
  return { ca: read(paths.ca), cert: read(paths.cert), key: read(paths.key) };
}

export interface EtcdClientOptions {
  /** client URLs, e.g. https://10.0.0.1:2379; tried in this order first */
  endpoints: string[];
  /** for https endpoints: CA to trust (default: the system's), client certificate and key */
  tls?: TlsMaterial;
  /** bound on one HTTP request to one endpoint; default 2000 ms */
  requestTimeoutMs?: number;
  /** bound on a whole call, failovers and retries included; default 5000 ms */
  timeoutMs?: number;
}

interface CallOptions {
  /** overrides the client's timeoutMs for this call */
  timeoutMs?: number;
}

export interface KeyValue {
  key: string;
  value: string;
  createRevision: number;
  modRevision: number;
  /** number of changes since creation: 1 for a new key */
  version: number;
  /** the lease the key is attached to, if any */
  lease?: string;
}

type CompareOp = "=" | "!=" | "<" | ">";

/** One condition of a txn. A key that does not exist has createRevision, modRevision and version 0:
 * `{ key, createRevision: 0 }` means "absent". `op` defaults to "=". */
export type Compare =
  | { key: string; createRevision: number; op?: CompareOp }
  | { key: string; modRevision: number; op?: CompareOp }
  | { key: string; version: number; op?: CompareOp }
  | { key: string; value: string; op?: CompareOp };

type TxnOp =
  | { put: string; value: string; lease?: string }
  | { get: string }
  | { range: string }
  | { delete: string }
  | { deletePrefix: string };

type TxnResult =
  | { type: "put" }
  | { type: "get"; kv: KeyValue | undefined }
  | { type: "range"; kvs: KeyValue[] }
  | { type: "delete"; deleted: number };

interface TxnRequest {
  compare: Compare[];
  success?: TxnOp[];
  failure?: TxnOp[];
}

interface TxnResponse {
  /** whether every compare held (and `success` ran) */
  succeeded: boolean;
  /** the store's revision after the txn */
  revision: number;
  /** one per op of the branch that ran, in order */
  results: TxnResult[];
}

interface Endpoint {
  url: string;
  secure: boolean;
  host: string;
  port: number;
  base: string;
}

/** How one attempt ended: ok, or a failure that says whether the request may have been acted on. */
type Outcome =
  | { ok: true; body: string }
  | {
      ok: false;
      /** notSent: etcd certainly did not act on it; lost: it may have; rejected: etcd answered no */
      how: "notSent" | "lost" | "rejected";
      timeout: boolean;
      /** a TLS failure (bad certificate, wrong CA): the endpoint refused us, or we refused it */
      tls?: boolean;
      message: string;
      grpcCode?: number;
    };

const DEFAULT_REQUEST_TIMEOUT_MS = 2000;
/** The least time left worth starting another round of attempts with, after a backoff. */
const MIN_ATTEMPT_MS = 50;
const DEFAULT_TIMEOUT_MS = 5000;

export class EtcdClient {
  private readonly endpoints: Endpoint[];
  private readonly httpAgent: http.Agent;
  private readonly httpsAgent: https.Agent;
  private readonly requestTimeoutMs: number;
  private readonly timeoutMs: number;
  /** index of the endpoint that answered last */
  private current = 0;
  private closed = false;

  constructor(opts: EtcdClientOptions) {
    if (opts.endpoints.length === 0) throw new Error("etcd: no endpoints");
    this.endpoints = opts.endpoints.map(parseEndpoint);
    this.requestTimeoutMs = opts.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    this.timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    const common = {
      keepAlive: true,
      keepAliveMsecs: 10_000,
      maxSockets: 16,
      maxFreeSockets: 4,
      scheduling: "lifo" as const,
    };
    this.httpAgent = new http.Agent(common);
    this.httpsAgent = new https.Agent({ ...common, ca: opts.tls?.ca, cert: opts.tls?.cert, key: opts.tls?.key });
  }

  /** The endpoint calls go to first: the one that answered last. */
  get activeEndpoint(): string {
    return this.endpoints[this.current]!.url;
  }

  /** The key's current value, or undefined. */
  async get(key: string, opts?: CallOptions): Promise<KeyValue | undefined> {
    const r = await this.call("/v3/kv/range", { key: b64(key) }, false, opts);
    return r.kvs?.[0] ? toKv(r.kvs[0]) : undefined;
  }

  /** Every key that starts with `prefix`, in key order (byte order of their UTF-8). */
  async range(prefix: string, opts?: CallOptions): Promise<KeyValue[]> {
    const r = await this.call("/v3/kv/range", prefixRange(prefix), false, opts);
    return (r.kvs ?? []).map(toKv);
  }

  /** Sets the key; returns the store's revision after the write. */
  async put(key: string, value: string, opts: CallOptions & { lease?: string } = {}): Promise<{ revision: number }> {
    const body: Record<string, string> = { key: b64(key), value: b64(value) };
    if (opts.lease !== undefined) body.lease = opts.lease;
    const r = await this.call("/v3/kv/put", body, true, opts);
    return { revision: num(r.header?.revision) };
  }

  /** Deletes the key, or with `prefix: true` every key starting with it; returns how many went. */
  async deleteRange(
    key: string,
    opts: CallOptions & { prefix?: boolean } = {},
  ): Promise<{ deleted: number; revision: number }> {
    const r = await this.call("/v3/kv/deleterange", opts.prefix ? prefixRange(key) : { key: b64(key) }, true, opts);
    return { deleted: num(r.deleted), revision: num(r.header?.revision) };
  }

  /** If every compare holds, runs `success`, else `failure`; atomically. */
  async txn(req: TxnRequest, opts?: CallOptions): Promise<TxnResponse> {
    const success = req.success ?? [];
    const failure = req.failure ?? [];
    const body = {
      compare: req.compare.map(toCompare),
      success: success.map(toRequestOp),
      failure: failure.map(toRequestOp),
    };
    const writes = [...success, ...failure].some((op) => "put" in op || "delete" in op || "deletePrefix" in op);
    const r = await this.call("/v3/kv/txn", body, writes, opts);
    const succeeded = r.succeeded === true;
    const ops = succeeded ? success : failure;
    const responses: any[] = r.responses ?? [];
    const results = ops.map((op, i): TxnResult => {
      const res = responses[i] ?? {};
      if ("put" in op) return { type: "put" };
      if ("get" in op) {
        const kv = res.response_range?.kvs?.[0];
        return { type: "get", kv: kv ? toKv(kv) : undefined };
      }
      if ("range" in op) return { type: "range", kvs: (res.response_range?.kvs ?? []).map(toKv) };
      return { type: "delete", deleted: num(res.response_delete_range?.deleted) };
    });
    return { succeeded, revision: num(r.header?.revision), results };
  }

  /** A new lease of `ttl` seconds. `id` (decimal, 1..2^63-1) picks the ID: a grant whose answer was lost can then
   * be told apart by asking for that lease (leaseKeepAliveOnce), and granting it again is refused. */
  async leaseGrant(ttl: number, opts: CallOptions & { id?: string } = {}): Promise<{ id: string; ttl: number }> {
    const body: Record<string, string | number> = { TTL: ttl };
    if (opts.id !== undefined) body.ID = opts.id;
    const r = await this.call("/v3/lease/grant", body, true, opts);
    if (r.error) throw new EtcdError("rejected", `etcd: lease grant: ${r.error}`, false, []);
    return { id: String(r.ID), ttl: num(r.TTL) };
  }

  /** Renews the lease once; returns its TTL in seconds, 0 when the lease no longer exists (expired or revoked). */
  async leaseKeepAliveOnce(id: string, opts?: CallOptions): Promise<{ ttl: number }> {
    // A streaming RPC behind the gateway: one JSON request in, {"result": ...} lines out; the stream ends when the
    // request body does. A failure after the status line comes as {"error": {...}} in the body.
    const r = await this.call("/v3/lease/keepalive", { ID: id }, false, opts);
    // no result line at all is no answer, not an expired lease
    if (!r.result)
      throw new EtcdError("unavailable", "etcd: /v3/lease/keepalive: the stream ended without an answer", false, []);
    return { ttl: num(r.result.TTL) };
  }

  /** Revokes the lease and deletes every key attached to it. An unknown lease is rejected (grpcCode 5). */
  async leaseRevoke(id: string, opts?: CallOptions): Promise<void> {
    await this.call("/v3/lease/revoke", { ID: id }, true, opts);
  }

  /** Closes idle connections and refuses further calls. */
  close(): void {
    this.closed = true;
    this.httpAgent.destroy();
    this.httpsAgent.destroy();
  }

  private async call(path: string, body: object, write: boolean, opts?: CallOptions): Promise<any> {
    if (this.closed) throw new EtcdError("rejected", "etcd: client closed", false, []);
    const payload = JSON.stringify(body);
    const deadline = Date.now() + (opts?.timeoutMs ?? this.timeoutMs);
    const attempts: EtcdAttempt[] = [];
    const n = this.endpoints.length;
    let backoff = 20;
    let timedOut = false;
    let lastCode: number | undefined;
    for (;;) {
      // one round: every endpoint once, from the one in use
      const start = this.current;
      let allTls = true;
      for (let k = 0; k < n; k++) {
        if (this.closed) throw new EtcdError("rejected", "etcd: client closed", false, attempts);
        const remaining = deadline - Date.now();
        if (remaining <= 0) {
          // the time ran out between attempts (a backoff overslept): the kind is what the attempts met
          throw new EtcdError(
            timedOut || attempts.length === 0 ? "timeout" : "unavailable",
            `etcd: ${path}: no answer within the call's time: ${summary(attempts)}`,
            false,
            attempts,
            lastCode,
          );
        }
        const idx = (start + k) % n;
        const ep = this.endpoints[idx]!;
        const out = await this.attempt(ep, path, payload, Math.min(this.requestTimeoutMs, remaining));
        if (out.ok) {
          this.current = idx;
          return parseBody(out.body, path, ep, attempts);
        }
        attempts.push({ endpoint: ep.url, error: out.message });
        if (out.grpcCode !== undefined) lastCode = out.grpcCode;
        timedOut ||= out.timeout;
        if (!out.tls) allTls = false;
        if (out.how === "rejected") {
          throw new EtcdError("rejected", `etcd: ${path}: ${out.message}`, false, attempts, out.grpcCode);
        }
        if (out.how === "lost" && write) {
          throw new EtcdError(
            out.timeout ? "timeout" : "unavailable",
            `etcd: ${path}: ${out.message} (the write may have been applied)`,
            true,
            attempts,
            out.grpcCode,
          );
        }
      }
      if (allTls) {
        // every endpoint refused the TLS handshake, or presented a certificate we do not trust
        throw new EtcdError(
          "rejected",
          `etcd: ${path}: TLS failed on every endpoint: ${summary(attempts)}`,
          false,
          attempts,
        );
      }
      // another round only with room for an answer: an attempt started with a few ms left only adds a timeout
      if (Date.now() + backoff + MIN_ATTEMPT_MS >= deadline) {
        throw new EtcdError(
          timedOut ? "timeout" : "unavailable",
          `etcd: ${path}: no endpoint could serve: ${summary(attempts)}`,
          false,
          attempts,
          lastCode,
        );
      }
      await new Promise((r) => setTimeout(r, backoff));
      backoff = Math.min(backoff * 2, 200);
    }
  }

  /** One HTTP request to one endpoint. Never throws. */
  private attempt(ep: Endpoint, path: string, payload: string, timeoutMs: number): Promise<Outcome> {
    return new Promise((resolve) => {
      let settled = false;
      // whether the request can have reached etcd: once the connection (and TLS handshake) is up
      let sent = false;
      let timer: NodeJS.Timeout | undefined;
      const done = (o: Outcome) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve(o);
      };
      const mod = ep.secure ? https : http;
      const req = mod.request({
        host: ep.host,
        port: ep.port,
        path: ep.base + path,
        method: "POST",
        agent: ep.secure ? this.httpsAgent : this.httpAgent,
        headers: {
          "content-type": "application/json",
          "content-length": Buffer.byteLength(payload),
          // gRPC metadata through the gateway: fail fast on a member without a leader; and etcd's own deadline
          "grpc-metadata-hasleader": "true",
          "grpc-timeout": `${Math.max(1, Math.floor(timeoutMs))}m`,
        },
      });
      timer = setTimeout(() => {
        const message = `no answer within ${timeoutMs} ms${sent ? "" : " (not connected)"}`;
        done({ ok: false, how: sent ? "lost" : "notSent", timeout: true, message });
        req.destroy();
      }, timeoutMs);
      req.on("socket", (socket) => {
        if (req.reusedSocket) sent = true;
        else socket.once(ep.secure ? "secureConnect" : "connect", () => (sent = true));
      });
      req.on("error", (err: NodeJS.ErrnoException) => {
        const code = err.code ?? "";
        const message = `${code || "error"}: ${err.message}`;
        if (isTlsError(err)) {
          // TLS 1.3: the server checks our certificate after our side of the handshake is done, and its alert
          // arrives after "secureConnect"; either way nothing went past TLS
          done({ ok: false, how: "notSent", timeout: false, tls: true, message });
        } else {
          done({ ok: false, how: sent ? "lost" : "notSent", timeout: false, message });
        }
      });
      req.on("response", (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("error", (err) => done({ ok: false, how: "lost", timeout: false, message: `response: ${err.message}` }));
        res.on("close", () => {
          if (!res.complete) done({ ok: false, how: "lost", timeout: false, message: "connection closed mid-answer" });
        });
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8");
          const status = res.statusCode ?? 0;
          if (status === 200 && !streamError(text)) done({ ok: true, body: text });
          else done(classifyAnswer(status, text));
        });
      });
      req.end(payload);
    });
  }
}

function parseEndpoint(url: string): Endpoint {
  const u = new URL(url);
  if (u.protocol !== "http:" && u.protocol !== "https:") throw new Error(`etcd: endpoint ${url}: http or https only`);
  const secure = u.protocol === "https:";
  const host = u.hostname.startsWith("[") ? u.hostname.slice(1, -1) : u.hostname;
  return { url, secure, host, port: u.port ? Number(u.port) : 2379, base: u.pathname.replace(/\/+$/, "") };
}

/** A 200 whose body is a streaming RPC's error line. */
function streamError(text: string): boolean {
  return text.startsWith('{"error"');
}

/** An answer other than success: etcd's gRPC status (or the gateway's HTTP status) decides. */
function classifyAnswer(status: number, text: string): Outcome {
  let code: number | undefined;
  let message = `HTTP ${status}`;
  try {
    const j = JSON.parse(text.split("\n")[0]!);
    const e = typeof j.error === "object" && j.error !== null ? j.error : j; // stream errors nest one level down
    code = typeof e.code === "number" ? e.code : typeof e.grpc_code === "number" ? e.grpc_code : undefined;
    message = String(e.message ?? e.error ?? message);
  } catch {
    if (text.trim()) message += `: ${text.trim().slice(0, 200)}`;
  }
  const fail = (how: "notSent" | "lost" | "rejected", timeout = false): Outcome => ({
    ok: false,
    how,
    timeout,
    message,
    grpcCode: code,
  });
  if (code === undefined) return status >= 500 ? fail("lost") : fail("rejected");
  switch (code) {
    case 14: // Unavailable
      // "no leader" is answered before anything is proposed; "request timed out", "leader changed", ... after
      return /no leader|not capable/.test(message) ? fail("notSent") : fail("lost", /timed out/.test(message));
    case 8: // ResourceExhausted: "too many requests" is refused up front; "database space exceeded" is final
      return /too many requests/.test(message) ? fail("notSent") : fail("rejected");
    case 4: // DeadlineExceeded
      return fail("lost", true);
    case 1: // Canceled
      return fail("lost");
    case 2: // Unknown: a proposal raft dropped was never in the log; anything else may have been
      if (/proposal dropped/.test(message)) return fail("notSent");
      return fail("lost", /deadline exceeded|timed out/.test(message));
    default:
      // InvalidArgument, NotFound, AlreadyExists, PermissionDenied, FailedPrecondition, OutOfRange, Unimplemented,
      // Internal, Unauthenticated, ...
      return fail("rejected");
  }
}

function isTlsError(err: NodeJS.ErrnoException): boolean {
  const code = err.code ?? "";
  return (
    /^ERR_SSL_|^ERR_TLS_|CERT|^UNABLE_TO_|SELF_SIGNED|^DEPTH_ZERO/.test(code) ||
    (code === "EPROTO" && /alert|certificate|handshake/i.test(err.message))
  );
}

function parseBody(text: string, path: string, ep: Endpoint, attempts: EtcdAttempt[]): any {
  try {
    // streaming RPCs answer one JSON object per line
    return JSON.parse(text.split("\n")[0] || "{}");
  } catch {
    attempts.push({ endpoint: ep.url, error: `not JSON: ${text.slice(0, 200)}` });
    throw new EtcdError("rejected", `etcd: ${path}: answer is not JSON`, false, attempts);
  }
}

function summary(attempts: EtcdAttempt[]): string {
  if (attempts.length === 0) return "no attempt";
  // the last error of each endpoint
  const last = new Map<string, string>();
  for (const a of attempts) last.set(a.endpoint, a.error);
  return [...last].map(([ep, e]) => `${ep}: ${e}`).join("; ");
}

const b64 = (s: string) => Buffer.from(s, "utf8").toString("base64");
const unb64 = (s: string | undefined) => (s ? Buffer.from(s, "base64").toString("utf8") : "");

function num(v: unknown): number {
  if (v === undefined || v === null) return 0;
  const n = Number(v);
  if (!Number.isSafeInteger(n)) throw new EtcdError("rejected", `etcd: not a safe integer: ${String(v)}`, false, []);
  return n;
}

function toKv(kv: any): KeyValue {
  const out: KeyValue = {
    key: unb64(kv.key),
    value: unb64(kv.value),
    createRevision: num(kv.create_revision),
    modRevision: num(kv.mod_revision),
    version: num(kv.version),
  };
  if (kv.lease !== undefined && kv.lease !== "0") out.lease = String(kv.lease);
  return out;
}

/** The range of keys that start with `prefix`: [prefix, prefix with its last byte below 0xff incremented). */
function prefixRange(prefix: string): { key: string; range_end: string } {
  const bytes = Buffer.from(prefix, "utf8");
  let end = bytes.length;
  while (end > 0 && bytes[end - 1] === 0xff) end--;
  // no byte to increment (the empty prefix): up to the end of the keyspace, which etcd spells "\0"
  if (end === 0) return { key: b64(prefix || "\0"), range_end: b64("\0") };
  const rangeEnd = Buffer.from(bytes.subarray(0, end));
  rangeEnd[end - 1]! += 1;
  return { key: bytes.toString("base64"), range_end: rangeEnd.toString("base64") };
}

const RESULTS: Record<CompareOp, string> = { "=": "EQUAL", "!=": "NOT_EQUAL", "<": "LESS", ">": "GREATER" };

function toCompare(c: Compare): object {
  const base = { key: b64(c.key), result: RESULTS[c.op ?? "="] };
  if ("createRevision" in c) return { ...base, target: "CREATE", create_revision: String(c.createRevision) };
  if ("modRevision" in c) return { ...base, target: "MOD", mod_revision: String(c.modRevision) };
  if ("version" in c) return { ...base, target: "VERSION", version: String(c.version) };
  return { ...base, target: "VALUE", value: b64(c.value) };
}

function toRequestOp(op: TxnOp): object {
  if ("put" in op) {
    const put: Record<string, string> = { key: b64(op.put), value: b64(op.value) };
    if (op.lease !== undefined) put.lease = op.lease;
    return { request_put: put };
  }
  if ("get" in op) return { request_range: { key: b64(op.get) } };
  if ("range" in op) return { request_range: prefixRange(op.range) };
  if ("delete" in op) return { request_delete_range: { key: b64(op.delete) } };
  return { request_delete_range: prefixRange(op.deletePrefix) };
}
