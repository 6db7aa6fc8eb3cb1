// unixRequest on the node:fs platform (a child Node does the request): the same answers and errnos as the native
// one, which native/smoke.js checks against the same kind of servers.
import { spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { nodePlatform } from "../../src/platform/node.js";
import { SysError } from "../../src/platform/types.js";
import { removeDir, tempDir } from "../helpers.js";

let dir: string;
let server: ReturnType<typeof spawn>;
beforeAll(async () => {
  dir = tempDir();
  writeFileSync(join(dir, "target"), "");
  server = spawn(process.execPath, [
    "-e",
    `const net = require("node:net");
     net.createServer((s) => { let got = ""; s.setEncoding("utf8").on("data", (d) => { got += d;
       if (got.endsWith("\\n")) s.end("pong " + got.trim() + "\\nnot this\\n"); }); }).listen(process.argv[1] + "/answers.sock");
     net.createServer(() => {}).listen(process.argv[1] + "/silent.sock", () => process.stdout.write("ready\\n"));`,
    dir,
  ]);
  await new Promise<void>((resolve) => server.stdout!.once("data", () => resolve()));
});
afterAll(() => {
  server.kill();
  removeDir(dir);
});

const errnoOf = (f: () => unknown): number => {
  try {
    f();
  } catch (e) {
    if (e instanceof SysError) return e.errno;
    throw e;
  }
  return 0;
};

describe("unixRequest on node:fs", () => {
  it("returns the answer up to its first newline", () => {
    expect(nodePlatform.unixRequest(join(dir, "answers.sock"), "ping 1\n", 5000)).toBe("pong ping 1");
  });
  it("fails with ENOENT, ECONNREFUSED and ETIMEDOUT as the native one does", () => {
    expect(errnoOf(() => nodePlatform.unixRequest(join(dir, "nothing.sock"), "x\n", 2000))).toBe(2);
    expect(errnoOf(() => nodePlatform.unixRequest(join(dir, "target"), "x\n", 2000))).toBe(111);
    expect(errnoOf(() => nodePlatform.unixRequest(join(dir, "silent.sock"), "x\n", 300))).toBe(110);
  });
});
