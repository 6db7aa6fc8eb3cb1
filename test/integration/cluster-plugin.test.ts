// The plugin's side of a cluster network, against a scripted agent instead of local-ipam-agent and etcd: what it
// asks, when, and what it reports for every answer the agent can give (or not give). The real agent and etcd are
// in conformance/cluster.test.ts; here each case is a few processes and milliseconds.
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { LOCAL_IPAM, type Outcome, removeDir, run, runAsync, tempDir } from "../helpers.js";

let dir: string;
let agent: ChildProcess | null;
beforeEach(() => {
  dir = tempDir();
  agent = null;
});
afterEach(async () => {
  if (agent && agent.exitCode === null) {
    const gone = new Promise((r) => agent!.once("exit", r));
    agent.kill();
    await gone;
  }
  removeDir(dir);
});

const socket = () => join(dir, "agent.sock");
const netDir = () => join(dir, "data", "cn");

/** The conflist the plugin and `local-ipam blocks` read (as the agent passes it). */
function conf(extra: object = {}): object {
  return {
    cniVersion: "1.0.0",
    name: "cn",
    type: "local-ipam",
    ipam: {
      type: "local-ipam",
      dataDir: join(dir, "data"),
      cluster: { agentSocket: socket(), claimTimeout: "2s" },
      ranges: [[{ subnet: "10.77.0.0/24", blockSize: 30 }]],
      ...extra,
    },
  };
}

function writeConf(c: object): string {
  const path = join(dir, "cn.conf");
  writeFileSync(path, JSON.stringify(c));
  return path;
}

const add = (id: string, c: object = conf(), extraEnv = ""): Outcome =>
  run(LOCAL_IPAM, { command: "ADD", containerId: id, ifname: "eth0", args: extraEnv }, c);
const del = (id: string, c: object = conf()): Outcome =>
  run(LOCAL_IPAM, { command: "DEL", containerId: id, ifname: "eth0" }, c);
const status = (c: object = conf()): Outcome => run(LOCAL_IPAM, { command: "STATUS" }, { ...c, cniVersion: "1.1.0" });
const addressOf = (o: Outcome) => (o.json as any).ips[0].address as string;

/** What the agent is made to give the plugin; it writes the block it grants through `local-ipam blocks`. */
function blocks(...change: string[]): any {
  return blocksOf(conf(), ...change);
}

function blocksOf(c: object, ...change: string[]): any {
  const r = spawnSync(LOCAL_IPAM, ["blocks", "--config", writeConf(c), "--json", ...change], { encoding: "utf8" });
  expect(r.status, r.stderr).toBe(0);
  return JSON.parse(r.stdout);
}

/**
 * Starts a scripted agent on the socket. `answers` maps an op to what it does: "grant:SET:CIDR" writes that block
 * (as the real agent does once etcd committed) and says ok; "silent" never answers; "crash" exits without an
 * answer; anything else is sent as the answer line. Every request is appended to requests.log.
 */
async function startAgent(answers: Record<string, string>): Promise<void> {
  const confPath = writeConf(conf());
  agent = spawn(
    process.execPath,
    [
      "-e",
      `const net = require("node:net"), fs = require("node:fs"), { spawnSync } = require("node:child_process");
       const [sock, log, bin, confPath, answers] = process.argv.slice(1);
       const script = JSON.parse(answers);
       fs.rmSync(sock, { force: true }); // a killed one's socket file stays behind
       net.createServer((s) => {
         let got = "";
         s.setEncoding("utf8").on("data", (d) => {
           got += d;
           if (!got.endsWith("\\n")) return;
           fs.appendFileSync(log, got);
           const todo = script[JSON.parse(got).op] ?? '{"ok":false,"reason":"unknown"}';
           if (todo === "silent") return;
           if (todo === "crash") { s.destroy(); process.exit(0); } // mid-request, its socket file left behind
           if (todo.startsWith("grant:")) {
             const r = spawnSync(bin, ["blocks", "--config", confPath, "--add", todo.slice(6)]);
             s.end(r.status === 0 ? '{"ok":true}\\n' : JSON.stringify({ ok: false, reason: "unavailable", msg: String(r.stderr) }) + "\\n");
             return;
           }
           s.end(todo + "\\n");
         });
       }).listen(sock, () => process.stdout.write("ready\\n"));`,
      socket(),
      join(dir, "requests.log"),
      LOCAL_IPAM,
      confPath,
      JSON.stringify(answers),
    ],
    { stdio: ["ignore", "pipe", "inherit"] },
  );
  await new Promise<void>((resolve, reject) => {
    agent!.stdout!.once("data", () => resolve());
    agent!.once("exit", (code) => reject(new Error(`the scripted agent exited (${code}) before it listened`)));
  });
}

const requests = (): any[] =>
  existsSync(join(dir, "requests.log"))
    ? readFileSync(join(dir, "requests.log"), "utf8")
        .split("\n")
        .filter(Boolean)
        .map((l) => JSON.parse(l))
    : [];
const leases = () => readdirSync(netDir()).filter((f) => /^\d/.test(f));

describe("a cluster network, the plugin's side", () => {
  it("allocates inside its own blocks only, in host-local's order, without asking the agent", () => {
    blocks("--add", "0:10.77.0.8/30", "--add", "0:10.77.0.100/30");
    const got = ["a", "b", "c", "d", "e", "f"].map((id) => add(id));
    for (const o of got) expect(o.status, o.stdout).toBe(0);
    expect(got.map(addressOf)).toEqual([
      "10.77.0.8/24",
      "10.77.0.9/24",
      "10.77.0.10/24",
      "10.77.0.11/24",
      "10.77.0.100/24",
      "10.77.0.101/24",
    ]);
    expect(existsSync(socket())).toBe(false); // nobody to ask, nothing asked
  });

  it("with its blocks full and no agent until the claim timeout: code 11 naming the socket and why, no lease left", () => {
    blocks("--add", "0:10.77.0.8/30");
    for (const id of ["a", "b", "c", "d"]) expect(add(id).status).toBe(0);
    const o = add("e", conf({ cluster: { agentSocket: socket(), claimTimeout: "500ms" } }));
    expect(o.status).toBe(1);
    expect((o.json as any).code).toBe(11);
    expect((o.json as any).msg).toContain(socket());
    expect(JSON.stringify(o.json)).toMatch(/no such file or directory/);
    expect(o.stdout).not.toMatch(/at .*\.js/); // no stack trace
    expect(leases().sort()).toEqual(["10.77.0.10", "10.77.0.11", "10.77.0.8", "10.77.0.9"]);
  });

  it("asks the agent for a block when full, then takes the first address of the block it was given", async () => {
    await startAgent({ claim: "grant:0:10.77.0.200/30" });
    const o = add("a");
    expect(o.status, o.stdout).toBe(0);
    expect(addressOf(o)).toBe("10.77.0.200/24");
    const [req] = requests();
    expect(req).toMatchObject({ op: "claim", network: "cn", set: 0 });
    expect(req.timeoutMs).toBeGreaterThan(0);
    expect(req.timeoutMs).toBeLessThanOrEqual(2000);
    expect(add("b").status).toBe(0);
    expect(requests()).toHaveLength(1); // the next ADD is served from the block, no second question
  });

  it("an agent that crashes while the ADD waits, and comes back: the ADD asks again and succeeds", async () => {
    await startAgent({ claim: "crash" });
    const first = agent!;
    const pending = runAsync(
      LOCAL_IPAM,
      { command: "ADD", containerId: "a", ifname: "eth0" },
      conf({ cluster: { agentSocket: socket(), claimTimeout: "60s" } }),
    );
    await new Promise((r) => first.once("exit", r)); // it had the request, and is gone
    expect(existsSync(socket())).toBe(true); // a stale socket: connection refused until the next one listens
    await startAgent({ claim: "grant:0:10.77.0.200/30" });
    const o = await pending;
    expect(o.status, o.stdout).toBe(0);
    expect(addressOf(o)).toBe("10.77.0.200/24");
    const [one, two] = requests();
    expect([one.op, two.op]).toEqual(["claim", "claim"]);
    expect(two.timeoutMs).toBeLessThan(one.timeoutMs); // the second is told what is left of the wait
  });

  it("a requested address in a block it does not own: asks for that block by name", async () => {
    await startAgent({ claim: "grant:0:10.77.0.40/30" });
    const o = add("a", conf(), "IP=10.77.0.42");
    expect(o.status, o.stdout).toBe(0);
    expect(addressOf(o)).toBe("10.77.0.42/24");
    expect(requests()[0]).toMatchObject({ op: "claim", set: 0, ip: "10.77.0.42", block: "10.77.0.40" });
  });

  it("the agent says the pool is full: host-local's exhaustion error; a requested address taken: its message", async () => {
    await startAgent({ claim: '{"ok":false,"reason":"full"}' });
    const o = add("a");
    expect(o.status).toBe(1);
    expect(o.json).toMatchObject({
      code: 999,
      msg: "failed to allocate for range 0: no IP addresses available in range set: 10.77.0.1-10.77.0.254",
    });
    await new Promise((r) => {
      agent!.once("exit", r);
      agent!.kill();
    });
    await startAgent({ claim: '{"ok":false,"reason":"taken"}' });
    const t = add("b", conf(), "IP=10.77.0.42");
    expect(t.status).toBe(1);
    expect((t.json as any).msg).toContain("10.77.0.42");
    expect(existsSync(netDir()) ? leases() : []).toEqual([]);
  });

  it("etcd unavailable behind the agent: code 11 with the agent's reason", async () => {
    await startAgent({ claim: '{"ok":false,"reason":"unavailable","msg":"etcd: no leader"}' });
    const o = add("a");
    expect(o.status).toBe(1);
    expect((o.json as any).code).toBe(11);
    expect(JSON.stringify(o.json)).toContain("etcd: no leader");
  });

  it("an agent that never answers: the ADD fails with code 11 once the claim timeout passed, not later", async () => {
    await startAgent({ claim: "silent" });
    const started = Date.now();
    const o = add("a", conf({ cluster: { agentSocket: socket(), claimTimeout: "300ms" } }));
    expect(o.status).toBe(1);
    expect((o.json as any).code).toBe(11);
    expect(JSON.stringify(o.json)).toMatch(/timed out/);
    // bounded by the claim timeout: a generous ceiling, the point is that it does not hang
    expect(Date.now() - started).toBeLessThan(30_000);
  });

  it("an answer that is not one: code 11 quoting it", async () => {
    await startAgent({ claim: "<html>" });
    const o = add("a");
    expect((o.json as any).code).toBe(11);
    expect(JSON.stringify(o.json)).toContain("not an answer");
  });

  it("a block of an older blockSize left in the file: nothing allocated from it; it can still be removed", () => {
    blocks("--add", "0:10.77.0.8/30");
    const file = join(dir, "data", ".local-ipam", "cn", "blocks");
    writeFileSync(file, `${readFileSync(file, "utf8")}0 10.77.0.128/25\n`); // the old config's /25
    const report = blocks();
    expect(report.rangeSets[0].owned).toContainEqual({
      block: "0:10.77.0.128/25",
      size: "127",
      used: 0,
      free: "0",
      cooling: 0,
      fits: false,
    });
    for (const id of ["a", "b", "c", "d"]) expect(add(id).status).toBe(0);
    const o = add("e", conf({ cluster: { agentSocket: socket(), claimTimeout: "300ms" } }));
    expect((o.json as any).code).toBe(11); // full: the /25 is not a block of this config
    expect(leases().sort()).toEqual(["10.77.0.10", "10.77.0.11", "10.77.0.8", "10.77.0.9"]); // none in the /25
    const removed = blocks("--remove", "0:10.77.0.128/25");
    expect(removed.removed).toEqual(["0:10.77.0.128/25"]);
  });

  it("a blocks file too large to be read whole: the ADD fails with code 5 naming it, nothing leased", () => {
    blocks("--add", "0:10.77.0.8/30");
    const file = join(dir, "data", ".local-ipam", "cn", "blocks");
    writeFileSync(file, `${readFileSync(file, "utf8")}${"0 10.77.0.8/30\n".repeat((17 << 20) / 15)}`);
    const o = add("a");
    expect(o.status).toBe(1);
    expect(o.json).toMatchObject({ code: 5, msg: `read ${file}: file too large` });
    expect(leases()).toEqual([]);
  });

  it("a block with an address still cooling (reuseDelay) is not given back: no other node may hand it out yet", () => {
    const cooled = conf({ reuseDelay: "1h" });
    blocksOf(cooled, "--add", "0:10.77.0.8/30");
    expect(add("a", cooled).status).toBe(0);
    expect(del("a", cooled).status).toBe(0);
    const r = blocksOf(cooled, "--remove", "0:10.77.0.8/30");
    expect(r.removed).toEqual([]);
    expect(r.refused).toEqual([{ block: "0:10.77.0.8/30", leases: 0, cooling: 1 }]);
    expect(r.rangeSets[0].owned[0]).toMatchObject({ used: 0, cooling: 1 });
    // without the delay the same block goes back
    expect(blocksOf(conf(), "--remove", "0:10.77.0.8/30").removed).toEqual(["0:10.77.0.8/30"]);
  });

  it("DEL and CHECK never need the agent", () => {
    blocks("--add", "0:10.77.0.8/30");
    expect(add("a").status).toBe(0);
    expect(del("a").status).toBe(0);
    expect(leases()).toEqual([]);
  });

  it("STATUS: ready while an owned block has room or the agent answers; 50 only with neither", async () => {
    const none = status(); // no block and no agent
    expect(none.status).toBe(1);
    expect((none.json as any).code).toBe(50);
    expect(JSON.stringify(none.json)).toContain(socket());
    blocks("--add", "0:10.77.0.8/30");
    expect(status().status).toBe(0); // room in a block, agent down
    for (const id of ["a", "b", "c", "d"]) expect(add(id).status).toBe(0);
    expect(status().status).toBe(1); // full and agent down
    await startAgent({ ping: '{"ok":true}' });
    const up = status();
    expect(up.status, up.stdout).toBe(0); // full, but the agent can claim
    expect(requests().map((r) => r.op)).toContain("ping");
  });
});
