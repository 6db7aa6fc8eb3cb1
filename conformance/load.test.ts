// Load: 1,000 ADDs and DELs from 16 parallel workers on one network, half of them by host-local. No address is
// ever handed to a container while another live container holds it, and at the end the files are exactly the
// surviving containers' leases.
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { HOST_LOCAL, ipamConfig, LOCAL_IPAM, removeDir, runAsync, tempDir } from "../test/helpers.js";

let dir: string;
beforeAll(() => {
  dir = tempDir();
});
afterAll(() => removeDir(dir));

describe("mixed load with host-local", () => {
  it("1,000 operations from 16 workers: no duplicate address at any time, files match the survivors", async () => {
    const c = ipamConfig(dir, { ranges: [[{ subnet: "10.70.0.0/24" }], [{ subnet: "fd00:70::/120" }]] });
    const holder = new Map<string, string>(); // address -> container, from ADD success until its DEL starts
    const live = new Map<string, string[]>(); // container -> addresses
    const duplicates: string[] = [];
    let seed = 42;
    const random = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
    let ops = 0;
    let byHostLocal = 0;
    let failures = 0;
    const worker = async (w: number) => {
      const mine: string[] = [];
      let n = 0;
      while (ops < 1000) {
        ops++;
        const bin = random() < 0.5 ? HOST_LOCAL : LOCAL_IPAM;
        if (bin === HOST_LOCAL) byHostLocal++;
        if (mine.length > 0 && (mine.length >= 8 || random() < 0.45)) {
          const id = mine.splice(Math.floor(random() * mine.length), 1)[0]!;
          for (const a of live.get(id)!) holder.delete(a); // released from here on
          live.delete(id);
          const r = await runAsync(bin, { command: "DEL", containerId: id }, c);
          if (r.status !== 0) failures++;
        } else {
          const id = `w${w}c${n++}`;
          const r = await runAsync(bin, { command: "ADD", containerId: id }, c);
          if (r.status !== 0) {
            failures++;
            continue;
          }
          const addrs = (r.json.ips as { address: string }[]).map((i) => i.address.split("/")[0]!);
          for (const a of addrs) {
            if (holder.has(a)) duplicates.push(`${a}: ${id} while ${holder.get(a)} holds it`);
            holder.set(a, id);
          }
          live.set(id, addrs);
          mine.push(id);
        }
      }
    };
    await Promise.all(Array.from({ length: 16 }, (_, w) => worker(w)));
    console.log(
      `load: ${ops} operations, ${byHostLocal} by host-local, ${live.size} containers left, ${duplicates.length} duplicates, ${failures} failures`,
    );
    expect(duplicates).toEqual([]);
    expect(failures).toBe(0);
    const net = join(dir, "testnet");
    const files = Object.fromEntries(
      readdirSync(net)
        .filter((f) => f !== "lock" && !f.startsWith("last_reserved_ip"))
        .map((f) => [f, readFileSync(join(net, f), "latin1")]),
    );
    const expected = Object.fromEntries([...live].flatMap(([id, addrs]) => addrs.map((a) => [a, `${id}\r\neth0`])));
    expect(files).toEqual(expected);
  }, 600_000);
});
