// Many runtimes' worth of ADDs at once on one network: every address distinct, every lease on disk, with
// local-ipam alone and with host-local writing into the same directory under the same flock.
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { HOST_LOCAL, ipamConfig, LOCAL_IPAM, type Outcome, pool, removeDir, runAsync, tempDir } from "../helpers.js";

let dir: string;
beforeEach(() => {
  dir = tempDir();
});
afterEach(() => removeDir(dir));

const conf = () =>
  ipamConfig(dir, { ranges: [[{ subnet: "10.120.0.0/23" }], [{ subnet: "10.121.0.0/23" }]] }, { name: "testnet" });

async function addMany(n: number, pick: (i: number) => string): Promise<Outcome[]> {
  const c = conf();
  return pool(
    16,
    Array.from({ length: n }, (_, i) => () => runAsync(pick(i), { command: "ADD", containerId: `ctr${i}` }, c)),
  );
}

function checkDistinct(results: Outcome[], n: number): void {
  for (const r of results) expect(r.status, r.stdout).toBe(0);
  for (const set of [0, 1]) {
    const addrs = results.map((r) => r.json.ips[set].address as string);
    expect(new Set(addrs).size).toBe(n);
  }
  const net = join(dir, "testnet");
  const leases = readdirSync(net).filter((f) => f.startsWith("10."));
  expect(leases).toHaveLength(2 * n);
  // every lease on disk belongs to the container whose result names it
  results.forEach((r, i) => {
    for (const ip of r.json.ips)
      expect(readFileSync(join(net, ip.address.split("/")[0]), "latin1")).toBe(`ctr${i}\r\neth0`);
  });
}

describe("parallel ADDs", () => {
  it("200 ADDs from 16 processes on two /23 sets: 200 distinct addresses per set, 400 lease files", async () => {
    checkDistinct(await addMany(200, () => LOCAL_IPAM), 200);
  });
  it("the same with host-local and local-ipam interleaved on one directory", async () => {
    const results = await addMany(200, (i) => (i % 2 === 0 ? LOCAL_IPAM : HOST_LOCAL));
    checkDistinct(results, 200);
    // and both plugins can release each other's leases
    const c = conf();
    await pool(
      16,
      results.map(
        (_, i) => () => runAsync(i % 2 === 0 ? HOST_LOCAL : LOCAL_IPAM, { command: "DEL", containerId: `ctr${i}` }, c),
      ),
    );
    expect(readdirSync(join(dir, "testnet")).filter((f) => f.startsWith("10."))).toEqual([]);
  });
});

describe("after a crash", () => {
  it("240 parallel ADDs over 400 temporary files killed writers left behind all succeed, and the leftovers go", async () => {
    // what a node that lost power in the middle of a burst of ADDs has: temporary files in the network directory
    // and in our state directory; each next lock holder may try to remove the same ones
    const net = join(dir, "testnet");
    const state = join(dir, ".local-ipam", "testnet");
    mkdirSync(net, { recursive: true });
    mkdirSync(state, { recursive: true, mode: 0o700 });
    for (let i = 0; i < 200; i++) {
      writeFileSync(join(net, `.local-ipam-tmp.leftover${i}`), `dead${i}\r\neth0`);
      writeFileSync(join(state, `.local-ipam-tmp.leftover${i}`), "half an index");
    }
    const results = await addMany(240, () => LOCAL_IPAM);
    const failed = results.filter((r) => r.status !== 0).map((r) => r.stdout);
    expect(failed).toEqual([]);
    checkDistinct(results, 240);
    expect(readdirSync(net).filter((f) => f.startsWith(".local-ipam-tmp."))).toEqual([]);
    expect(readdirSync(state).filter((f) => f.startsWith(".local-ipam-tmp."))).toEqual([]);
  });
});
