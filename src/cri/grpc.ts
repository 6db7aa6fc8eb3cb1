// Unary gRPC calls over HTTP/2 on a unix socket, with node:http2 and nothing else
// (https://github.com/grpc/grpc/blob/master/doc/PROTOCOL-HTTP2.md). One HTTP/2 session carries every call; when the
// peer goes away (runtime restarted, socket gone) the session is dropped and the next call opens a new one. Every
// call has a deadline, sent as grpc-timeout and enforced by a local timer, so a runtime that stopped answering
// never hangs a caller.
import * as http2 from "node:http2";
import * as net from "node:net";

/** gRPC status codes (https://grpc.github.io/grpc/core/md_doc_statuscodes.html). */
export const Status = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  DATA_LOSS: 15,
  UNAUTHENTICATED: 16,
} as const;

const STATUS_NAMES = Object.fromEntries(Object.entries(Status).map(([k, v]) => [v, k])) as Record<number, string>;

/** A call that did not end with grpc-status 0: the status code, its name and the server's message. */
export class GrpcError extends Error {
  readonly codeName: string;
  constructor(
    readonly code: number,
    readonly details: string,
    readonly method: string,
  ) {
    const codeName = STATUS_NAMES[code] ?? `CODE_${code}`;
    super(`${method}: ${codeName}: ${details}`);
    this.name = "GrpcError";
    this.codeName = codeName;
  }
}

interface ChannelOptions {
  /** Default deadline of each call, in milliseconds. */
  timeoutMs: number;
  /** Largest response message accepted (containerd's own default limit is 16 MiB). */
  maxResponseBytes?: number;
}

/** HTTP status to gRPC status when a response is not gRPC at all (PROTOCOL-HTTP2.md, "HTTP to gRPC Status Code Mapping"). */
function httpToGrpc(status: number): number {
  switch (status) {
    case 400:
      return Status.INTERNAL;
    case 401:
      return Status.UNAUTHENTICATED;
    case 403:
      return Status.PERMISSION_DENIED;
    case 404:
      return Status.UNIMPLEMENTED;
    case 429:
    case 502:
    case 503:
    case 504:
      return Status.UNAVAILABLE;
    default:
      return Status.UNKNOWN;
  }
}

/** grpc-message is percent-encoded UTF-8. */
function decodeGrpcMessage(raw: unknown): string {
  const s = Array.isArray(raw) ? raw.join(",") : typeof raw === "string" ? raw : "";
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/** grpc-timeout: at most 8 digits and a unit. */
function grpcTimeout(ms: number): string {
  const n = Math.max(1, Math.ceil(ms));
  return n < 1e8 ? `${n}m` : `${Math.min(99_999_999, Math.ceil(n / 1000))}S`;
}

export class Channel {
  private session: http2.ClientHttp2Session | undefined;
  private closed = false;
  private readonly maxResponseBytes: number;

  constructor(
    readonly socketPath: string,
    private readonly options: ChannelOptions,
  ) {
    this.maxResponseBytes = options.maxResponseBytes ?? 16 << 20;
  }

  /** Resolves once an HTTP/2 session is up (connected and SETTINGS exchanged), within `timeoutMs`. */
  async connect(timeoutMs = this.options.timeoutMs): Promise<void> {
    const session = this.getSession();
    if (session.connecting === false && !session.destroyed) return;
    await new Promise<void>((resolve, reject) => {
      const done = (err?: Error) => {
        clearTimeout(timer);
        session.off("connect", onConnect);
        session.off("close", onClose);
        session.off("error", onError);
        if (err) reject(err);
        else resolve();
      };
      const onConnect = () => done();
      const onError = (e: Error) =>
        done(new GrpcError(Status.UNAVAILABLE, `cannot connect to ${this.socketPath}: ${e.message}`, "connect"));
      const onClose = () =>
        done(new GrpcError(Status.UNAVAILABLE, `connection to ${this.socketPath} closed`, "connect"));
      const timer = setTimeout(() => {
        this.drop(session);
        done(
          new GrpcError(
            Status.DEADLINE_EXCEEDED,
            `no connection to ${this.socketPath} within ${timeoutMs} ms`,
            "connect",
          ),
        );
      }, timeoutMs);
      session.once("connect", onConnect);
      session.once("close", onClose);
      session.once("error", onError);
    });
  }

  /** The live session, or a new one. */
  private getSession(): http2.ClientHttp2Session {
    if (this.closed) throw new GrpcError(Status.CANCELLED, "client closed", "connect");
    const current = this.session;
    if (current && !current.closed && !current.destroyed) return current;
    const session = http2.connect("http://localhost", {
      createConnection: () => net.connect(this.socketPath),
      // gRPC servers (grpc-go) do not send large SETTINGS; keep our side modest too.
      settings: { enablePush: false },
    });
    // A long-lived agent must not be kept alive by an idle connection: in-flight calls hold the event loop
    // through their deadline timers instead.
    session.unref();
    // Without a listener an 'error' would be thrown; the calls on it see the failure through their streams.
    session.on("error", () => this.drop(session));
    // GOAWAY: the server finishes the calls it already has (Node then closes the session); new calls go elsewhere.
    session.on("goaway", () => this.forget(session));
    session.on("close", () => this.forget(session));
    this.session = session;
    return session;
  }

  /** Makes the next call open a fresh session. */
  private forget(session: http2.ClientHttp2Session): void {
    if (this.session === session) this.session = undefined;
  }

  /** Forgets a broken session and destroys it: the calls on it fail at once (UNAVAILABLE). */
  private drop(session: http2.ClientHttp2Session): void {
    this.forget(session);
    if (!session.destroyed) session.destroy();
  }

  /** One unary call: `path` is "/package.Service/Method"; returns the response message's bytes. */
  unary(path: string, request: Uint8Array, timeoutMs = this.options.timeoutMs): Promise<Uint8Array> {
    return new Promise<Uint8Array>((resolve, reject) => {
      let session: http2.ClientHttp2Session;
      try {
        session = this.getSession();
      } catch (e) {
        reject(e);
        return;
      }
      const frame = Buffer.allocUnsafe(5 + request.length);
      frame.writeUInt8(0, 0); // not compressed
      frame.writeUInt32BE(request.length, 1);
      frame.set(request, 5);

      let stream: http2.ClientHttp2Stream;
      try {
        stream = session.request(
          {
            ":method": "POST",
            ":path": path,
            "content-type": "application/grpc",
            te: "trailers",
            "grpc-timeout": grpcTimeout(timeoutMs),
            "user-agent": "local-ipam-cri/1",
          },
          { endStream: false },
        );
      } catch (e) {
        // The session died between getSession() and here.
        this.drop(session);
        reject(new GrpcError(Status.UNAVAILABLE, (e as Error).message, path));
        return;
      }

      const chunks: Buffer[] = [];
      let received = 0;
      let httpStatus = 0;
      let grpcStatus: number | undefined;
      let grpcMessage = "";
      let settled = false;

      const finish = (err: GrpcError | undefined, body?: Uint8Array) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (!stream.closed) stream.close(http2.constants.NGHTTP2_CANCEL);
        if (err) reject(err);
        else resolve(body!);
      };
      const timer = setTimeout(
        () => finish(new GrpcError(Status.DEADLINE_EXCEEDED, `no answer within ${timeoutMs} ms`, path)),
        timeoutMs,
      );

      const readStatus = (headers: http2.IncomingHttpHeaders) => {
        const s = headers["grpc-status"];
        if (s !== undefined) {
          grpcStatus = Number(Array.isArray(s) ? s[0] : s);
          grpcMessage = decodeGrpcMessage(headers["grpc-message"]);
        }
      };
      stream.on("response", (headers) => {
        httpStatus = Number(headers[":status"]);
        readStatus(headers); // a "trailers-only" response carries the status in its headers
      });
      stream.on("trailers", readStatus);
      stream.on("data", (chunk: Buffer) => {
        received += chunk.length;
        if (received > this.maxResponseBytes + 5) {
          finish(new GrpcError(Status.RESOURCE_EXHAUSTED, `response larger than ${this.maxResponseBytes} bytes`, path));
          return;
        }
        chunks.push(chunk);
      });
      stream.on("error", (e: Error) => {
        finish(new GrpcError(Status.UNAVAILABLE, e.message, path));
      });
      stream.on("close", () => {
        if (settled) return;
        if (grpcStatus === undefined) {
          if (httpStatus !== 0 && httpStatus !== 200) {
            finish(new GrpcError(httpToGrpc(httpStatus), `HTTP status ${httpStatus}`, path));
          } else if (httpStatus === 200 && stream.rstCode === http2.constants.NGHTTP2_NO_ERROR) {
            finish(new GrpcError(Status.INTERNAL, "response ended without grpc-status", path));
          } else {
            // Reset, or the connection dropped before the trailers: the runtime went away mid-call.
            finish(
              new GrpcError(Status.UNAVAILABLE, `stream closed without a status (HTTP/2 code ${stream.rstCode})`, path),
            );
          }
          return;
        }
        if (grpcStatus !== Status.OK) {
          finish(new GrpcError(grpcStatus, grpcMessage, path));
          return;
        }
        const body = Buffer.concat(chunks);
        if (body.length < 5) {
          finish(new GrpcError(Status.INTERNAL, "OK status without a response message", path));
          return;
        }
        if (body[0] !== 0) {
          finish(new GrpcError(Status.INTERNAL, "compressed response, though none was offered", path));
          return;
        }
        const len = body.readUInt32BE(1);
        if (body.length !== 5 + len) {
          finish(
            new GrpcError(
              Status.INTERNAL,
              `response framing: ${body.length - 5} bytes for a ${len}-byte message`,
              path,
            ),
          );
          return;
        }
        finish(undefined, body.subarray(5));
      });
      stream.end(frame);
    });
  }

  /** Closes the session: in-flight calls end by themselves (answer or deadline); new calls are refused. */
  close(): Promise<void> {
    this.closed = true;
    const session = this.session;
    this.session = undefined;
    if (!session || session.destroyed) return Promise.resolve();
    return new Promise((resolve) => {
      session.close(() => resolve());
    });
  }
}
