// src/cri without a runtime: the protobuf codec on known bytes, and the gRPC client against a fake server on a
// unix socket (node:http2): statuses and messages, trailers-only answers, deadlines, a server that goes away and
// comes back, close(). The real runtime is conformance/containerd.test.ts. Needs no root.

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  decodeListPodSandboxResponse,
  decodePodSandboxStatusResponse,
  encodeListPodSandboxRequest,
  encodeRunPodSandboxRequest,
  encodeSandboxIdRequest,
} from "../../src/cri/api.js";
import { CriClient, GrpcError, Status } from "../../src/cri/index.js";
import { Message, ProtoError, Writer } from "../../src/cri/proto.js";
import { FakeServer } from "../fake-cri.js";

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");

describe("protobuf codec", () => {
  it("varints: boundaries, 64-bit values and negative int64 (ten bytes)", () => {
    const cases: [number | bigint, string][] = [
      [1, "0801"],
      [127, "087f"],
      [128, "088001"],
      [300, "08ac02"],
      [2 ** 32, "088080808010"],
      [Number.MAX_SAFE_INTEGER, "08ffffffffffffff0f"],
      [2n ** 64n - 1n, "08ffffffffffffffffff01"],
      [-1, "08ffffffffffffffffff01"],
    ];
    for (const [v, bytes] of cases) {
      const enc = new Writer().int(1, v).finish();
      expect(hex(enc), String(v)).toBe(bytes);
    }
    expect(Message.decode(Buffer.from("08ffffffffffffffffff01", "hex")).int64(1)).toBe(-1n);
    expect(Message.decode(Buffer.from("08ffffffffffffffffff01", "hex")).int(1)).toBe(-1);
    expect(Message.decode(Buffer.from("08ffffffffffffff0f", "hex")).int(1)).toBe(Number.MAX_SAFE_INTEGER);
  });

  it("proto3 defaults are not written; an empty nested message is (it means present)", () => {
    expect(hex(new Writer().int(1, 0).string(2, "").bool(3, false).repeatedString(4, []).finish())).toBe("");
    expect(hex(new Writer().message(1, {}, () => {}).finish())).toBe("0a00");
    expect(hex(new Writer().repeatedString(1, ["", "a"]).finish())).toBe("0a000a0161");
  });

  it("CRI requests encode to the bytes protoc would write", () => {
    expect(hex(encodeSandboxIdRequest("abc"))).toBe("0a03616263");
    // ListPodSandboxRequest{filter{state{state: READY(0)}}}: the wrapper is present and empty
    expect(hex(encodeListPodSandboxRequest({ state: "SANDBOX_READY" }))).toBe("0a021200");
    expect(hex(encodeListPodSandboxRequest({ state: "SANDBOX_NOTREADY" }))).toBe("0a0412020801");
    expect(hex(encodeListPodSandboxRequest())).toBe("");
  });

  it("RunPodSandboxRequest puts every field at its api.proto number", () => {
    const req = Message.decode(
      encodeRunPodSandboxRequest(
        {
          metadata: { name: "web-0", uid: "u-1", namespace: "ns", attempt: 2 },
          hostname: "web-0",
          logDirectory: "/var/log/pods/x",
          dnsConfig: { servers: ["10.96.0.10"], searches: ["a.svc", "svc"], options: ["ndots:5"] },
          labels: { b: "2", a: "1" },
          annotations: { k: "v" },
          linux: {
            cgroupParent: "/kubepods",
            securityContext: { namespaceOptions: { network: 2, pid: 1 }, privileged: true },
            sysctls: { "net.ipv4.ip_forward": "1" },
          },
        },
        "runc",
      ),
    );
    expect(req.string(2)).toBe("runc");
    const c = req.message(1)!;
    const md = c.message(1)!;
    expect([md.string(1), md.string(2), md.string(3), md.int(4)]).toEqual(["web-0", "u-1", "ns", 2]);
    expect([c.string(2), c.string(3)]).toEqual(["web-0", "/var/log/pods/x"]);
    const dns = c.message(4)!;
    expect([dns.repeatedString(1), dns.repeatedString(2), dns.repeatedString(3)]).toEqual([
      ["10.96.0.10"],
      ["a.svc", "svc"],
      ["ndots:5"],
    ]);
    expect(c.map(6)).toEqual({ a: "1", b: "2" });
    expect(c.map(7)).toEqual({ k: "v" });
    const linux = c.message(8)!;
    expect(linux.string(1)).toBe("/kubepods");
    const sc = linux.message(2)!;
    expect([sc.message(1)!.int(1), sc.message(1)!.int(2), sc.message(1)!.int(3), sc.bool(6)]).toEqual([2, 1, 0, true]);
    expect(linux.map(3)).toEqual({ "net.ipv4.ip_forward": "1" });
  });

  it("decodes responses: repeated nested messages, maps, 64-bit timestamps; skips unknown fields", () => {
    const sandbox = (w: Writer, id: string) =>
      w
        .string(1, id)
        .message(2, { name: id, uid: "u", namespace: "n" }, (m, v) =>
          m.string(1, v.name).string(2, v.uid).string(3, v.namespace),
        )
        .int(3, id === "b" ? 1 : 0)
        .int(4, 1_795_612_339_603_077_687n)
        .map(5, { app: id })
        .bytes(99, Uint8Array.of(1, 2, 3)); // a field from a newer API
    const list = new Writer().message(1, "a", sandbox).message(1, "b", sandbox).finish();
    // unknown fixed32 and fixed64 fields at the top level too
    const withUnknown = Buffer.concat([
      Buffer.from("1d01020304", "hex"),
      Buffer.from(list),
      Buffer.from("210102030405060708", "hex"),
    ]);
    expect(decodeListPodSandboxResponse(Message.decode(withUnknown))).toEqual([
      {
        id: "a",
        metadata: { name: "a", uid: "u", namespace: "n", attempt: 0 },
        state: "SANDBOX_READY",
        createdAt: 1_795_612_339_603_077_687n,
        labels: { app: "a" },
        annotations: {},
        runtimeHandler: "",
      },
      {
        id: "b",
        metadata: { name: "b", uid: "u", namespace: "n", attempt: 0 },
        state: "SANDBOX_NOTREADY",
        createdAt: 1_795_612_339_603_077_687n,
        labels: { app: "b" },
        annotations: {},
        runtimeHandler: "",
      },
    ]);

    // PodSandboxStatus.network{ip, additional_ips[{ip}]}, sent in two pieces: occurrences of a message merge
    const status = new Writer()
      .message(1, null, (s) => s.string(1, "id1").message(5, null, (n) => n.string(1, "10.0.0.2")))
      .message(1, null, (s) => s.message(5, null, (n) => n.message(2, null, (p) => p.string(1, "fd00::2"))))
      .map(2, { info: "{}" })
      .finish();
    const decoded = decodePodSandboxStatusResponse(Message.decode(status));
    expect(decoded.status.id).toBe("id1");
    expect(decoded.status.network).toEqual({ ip: "10.0.0.2", additionalIps: ["fd00::2"] });
    expect(decoded.info).toEqual({ info: "{}" });
  });

  it("refuses truncated and malformed input", () => {
    expect(() => Message.decode(Buffer.from("0a05616263", "hex"))).toThrow(ProtoError); // 5 bytes announced, 3 given
    expect(() => Message.decode(Buffer.from("08ff", "hex"))).toThrow(ProtoError); // varint cut short
    expect(() => Message.decode(Buffer.from("0b", "hex"))).toThrow(ProtoError); // group start: wire type 3
    expect(() => Message.decode(Buffer.from("0a02c328", "hex")).string(1)).toThrow(ProtoError); // bad UTF-8
    expect(() => Message.decode(Buffer.from("0801", "hex")).string(1)).toThrow(ProtoError); // varint where a string is due
  });
});

async function until(what: string, cond: () => boolean, timeoutMs = 5_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe("gRPC client against a fake runtime", () => {
  let dir: string;
  let server: FakeServer;
  const clients: CriClient[] = [];
  const connect = async (timeoutMs = 2_000) => {
    const c = await CriClient.connect(server.socket, { timeoutMs });
    clients.push(c);
    return c;
  };

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "local-ipam-cri-client-"));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  afterEach(async () => {
    for (const c of clients.splice(0)) await c.close();
    await server.kill();
  });
  const start = async () => {
    server = new FakeServer(join(dir, "cri.sock"));
    await server.listen();
  };

  it("sends a gRPC request (path, content-type, te, grpc-timeout, 5-byte frame) and decodes the answer", async () => {
    await start();
    server.reply = () => ({
      message: new Writer().string(1, "0.1.0").string(2, "fake").string(3, "9.9").string(4, "v1").finish(),
    });
    const c = await connect(1500);
    expect(await c.version()).toEqual({
      version: "0.1.0",
      runtimeName: "fake",
      runtimeVersion: "9.9",
      runtimeApiVersion: "v1",
    });
    const s = server.seen[0]!;
    expect(s.path).toBe("/runtime.v1.RuntimeService/Version");
    expect(s.headers["content-type"]).toBe("application/grpc");
    expect(s.headers.te).toBe("trailers");
    expect(s.headers["grpc-timeout"]).toBe("1500m");
    expect(Message.decode(s.body).string(1)).toBe("0.1.0");
  });

  it("maps grpc-status and grpc-message (percent-encoded) to GrpcError, in trailers or trailers-only", async () => {
    await start();
    server.reply = (path) =>
      path.endsWith("/PodSandboxStatus")
        ? { status: Status.NOT_FOUND, message: 'an error occurred when try to find sandbox "x": not found, 100% ü' }
        : { status: Status.UNIMPLEMENTED, message: "unknown service runtime.v1.RuntimeService", trailersOnly: true };
    const c = await connect();
    const e1 = await c.podSandboxStatus("x").catch((e: unknown) => e);
    expect(e1).toBeInstanceOf(GrpcError);
    expect(e1).toMatchObject({
      code: Status.NOT_FOUND,
      codeName: "NOT_FOUND",
      details: 'an error occurred when try to find sandbox "x": not found, 100% ü',
    });
    await expect(c.status()).rejects.toMatchObject({
      code: Status.UNIMPLEMENTED,
      details: "unknown service runtime.v1.RuntimeService",
    });
  });

  it("a runtime that never answers: DEADLINE_EXCEEDED at the call's deadline, and the stream is cancelled", async () => {
    await start();
    server.reply = () => ({ hang: true });
    const c = await connect(60_000);
    const e = await c.listPodSandbox(undefined, { timeoutMs: 200 }).catch((err: unknown) => err);
    expect(e).toMatchObject({ code: Status.DEADLINE_EXCEEDED });
    expect(server.seen[0]!.headers["grpc-timeout"]).toBe("200m");
    await until("the server to see the stream cancelled", () => server.openStreams.size === 0);
    // the session is still good for the next call
    server.reply = () => ({ message: new Uint8Array() });
    expect(await c.listPodSandbox()).toEqual([]);
    expect(server.sessions).toBe(1);
  });

  it("a broken frame or a compressed one is INTERNAL, not a crash", async () => {
    await start();
    const c = await connect();
    server.reply = () => ({ raw: Buffer.from("00000000ff01", "hex") }); // announces 255 bytes, carries 1
    await expect(c.version()).rejects.toMatchObject({ code: Status.INTERNAL });
    server.reply = () => ({ raw: Buffer.from("010000000100", "hex") }); // compressed flag
    await expect(c.version()).rejects.toMatchObject({ code: Status.INTERNAL });
  });

  it("one session for many calls, no timer left behind", async () => {
    await start();
    server.reply = () => ({ message: new Uint8Array() });
    const c = await connect();
    const timers = () => process.getActiveResourcesInfo().filter((r) => r === "Timeout").length;
    const before = timers();
    for (let i = 0; i < 300; i++) await c.listPodSandbox({ state: "SANDBOX_READY" });
    await Promise.all(Array.from({ length: 50 }, () => c.listPodSandbox()));
    expect(server.sessions).toBe(1);
    expect(timers()).toBeLessThanOrEqual(before); // every call's deadline timer was cleared
  });

  it("the runtime goes away and comes back: calls fail UNAVAILABLE meanwhile, then the client reconnects", async () => {
    await start();
    server.reply = () => ({ message: new Uint8Array() });
    const c = await connect();
    await c.listPodSandbox();
    server.reply = () => ({ hang: true });
    const inFlight = c.listPodSandbox().catch((e: unknown) => e);
    await until("the call to reach the server", () => server.seen.length === 2);
    await server.kill();
    expect(await inFlight).toMatchObject({ code: Status.UNAVAILABLE });
    await expect(c.listPodSandbox()).rejects.toMatchObject({ code: Status.UNAVAILABLE }); // socket gone
    await server.listen();
    server.reply = () => ({ message: new Uint8Array() });
    expect(await c.listPodSandbox()).toEqual([]);
    expect(server.sessions).toBe(2);
  });

  it("connect() fails at once when nothing listens; close() ends the session and refuses later calls", async () => {
    await start();
    await expect(CriClient.connect(join(dir, "nobody.sock"), { timeoutMs: 2_000 })).rejects.toMatchObject({
      code: Status.UNAVAILABLE,
    });
    const c = await CriClient.connect(server.socket, { timeoutMs: 2_000 });
    await c.listPodSandbox();
    await c.close();
    await until("the server to see the session closed", () => server.openSessions.size === 0);
    await expect(c.listPodSandbox()).rejects.toMatchObject({ code: Status.CANCELLED });
  });
});
