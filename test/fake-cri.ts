// A fake CRI runtime for tests: a gRPC server on a unix socket (node:http2) whose answers a test chooses per call.
import { rmSync } from "node:fs";
import * as http2 from "node:http2";

export type Reply =
  | { message: Uint8Array }
  | { status: number; message?: string; trailersOnly?: boolean }
  | { hang: true }
  | { raw: Buffer };

interface Seen {
  path: string;
  headers: http2.IncomingHttpHeaders;
  body: Uint8Array;
}

export class FakeServer {
  server: http2.Http2Server | undefined;
  readonly seen: Seen[] = [];
  sessions = 0;
  readonly openSessions = new Set<http2.ServerHttp2Session>();
  readonly openStreams = new Set<http2.ServerHttp2Stream>();
  reply: (path: string, body: Uint8Array) => Reply = () => ({ message: new Uint8Array() });

  constructor(readonly socket: string) {}

  async listen(): Promise<void> {
    const server = http2.createServer();
    server.on("session", (s) => {
      this.sessions++;
      this.openSessions.add(s);
      s.on("close", () => this.openSessions.delete(s));
    });
    server.on("stream", (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders) => {
      this.openStreams.add(stream);
      stream.on("close", () => this.openStreams.delete(stream));
      const chunks: Buffer[] = [];
      stream.on("data", (c: Buffer) => chunks.push(c));
      stream.on("end", () => {
        const frame = Buffer.concat(chunks);
        const body = frame.subarray(5, 5 + frame.readUInt32BE(1));
        const path = String(headers[":path"]);
        this.seen.push({ path, headers, body });
        const r = this.reply(path, body);
        if ("hang" in r) return;
        if ("raw" in r) {
          stream.respond({ ":status": 200, "content-type": "application/grpc" }, { waitForTrailers: true });
          stream.on("wantTrailers", () => stream.sendTrailers({ "grpc-status": "0" }));
          stream.end(r.raw);
          return;
        }
        if ("status" in r && r.trailersOnly) {
          stream.respond(
            {
              ":status": 200,
              "content-type": "application/grpc",
              "grpc-status": String(r.status),
              "grpc-message": encodeURIComponent(r.message ?? ""),
            },
            { endStream: true },
          );
          return;
        }
        stream.respond({ ":status": 200, "content-type": "application/grpc" }, { waitForTrailers: true });
        if ("status" in r) {
          stream.on("wantTrailers", () =>
            stream.sendTrailers({
              "grpc-status": String(r.status),
              "grpc-message": encodeURIComponent(r.message ?? ""),
            }),
          );
          stream.end();
          return;
        }
        const out = Buffer.alloc(5 + r.message.length);
        out.writeUInt32BE(r.message.length, 1);
        out.set(r.message, 5);
        stream.on("wantTrailers", () => stream.sendTrailers({ "grpc-status": "0" }));
        stream.end(out);
      });
    });
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(this.socket, () => resolve());
    });
    this.server = server;
  }

  /** Goes away as a killed runtime does: every connection dropped, the socket closed. */
  async kill(): Promise<void> {
    for (const s of this.openSessions) s.destroy();
    const server = this.server;
    this.server = undefined;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
    rmSync(this.socket, { force: true });
  }
}
