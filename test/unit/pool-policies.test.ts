// Pool policies: addresses kept out of automatic allocation (exclude) and a cool-down before a released address
// is handed out again (reuseDelay), end to end through the plugin, with STATUS counting them. Time is the test's:
// the platform seam's clock is replaced, so no test sleeps.
import { unlinkSync } from "node:fs";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { setPlatform } from "../../src/platform/index.js";
import { nodePlatform } from "../../src/platform/node.js";
import { ipamConfig, plugin, removeDir, tempDir } from "../helpers.js";

let dir: string;
let now = 1_800_000_000_000;
beforeEach(() => {
  dir = tempDir();
  setPlatform({ ...nodePlatform, realtimeMs: () => now });
});
afterEach(() => {
  setPlatform(nodePlatform);
  removeDir(dir);
});

const conf = (ipam: object, extra: object = {}) => ipamConfig(dir, ipam, extra, "1.1.0");
const cmd = (command: string, id: string, c: object, args?: string) => plugin({ command, containerId: id, args }, c);
const addr = (r: { json: any }, set = 0) => r.json.ips?.[set]?.address;

describe("exclude", () => {
  it("a /29 with exclusions hands out only the others, then fails cleanly", () => {
    const c = conf({ ranges: [[{ subnet: "10.80.0.0/29", exclude: ["10.80.0.3", "10.80.0.4/31"] }]] }); // .2 and .6 left
    expect(addr(cmd("ADD", "a", c))).toBe("10.80.0.2/29");
    expect(addr(cmd("ADD", "b", c))).toBe("10.80.0.6/29");
    const full = cmd("ADD", "c", c);
    expect(full.json).toEqual({
      code: 999,
      msg: "failed to allocate for range 0: no IP addresses available in range set: 10.80.0.1-10.80.0.6",
    });
    const status = plugin({ command: "STATUS", env: { CNI_CONTAINERID: null, CNI_IFNAME: null, CNI_NETNS: null } }, c);
    expect(status.status).toBe(0); // a full pool does not make the node NotReady (see STATUS)
    expect(status.stderr).toContain("range set 0 (10.80.0.1-10.80.0.6) has no free address");
  });
  it("gives an excluded address when it is asked for: reserving for static use is the point", () => {
    const c = conf({ subnet: "10.80.1.0/24", exclude: ["10.80.1.0/26"] });
    expect(addr(cmd("ADD", "auto", c))).toBe("10.80.1.64/24");
    expect(addr(cmd("ADD", "static", c, "IP=10.80.1.10"))).toBe("10.80.1.10/24");
    expect(
      addr(
        cmd(
          "ADD",
          "cap",
          conf({ subnet: "10.80.1.0/24", exclude: ["10.80.1.0/26"] }, { runtimeConfig: { ips: ["10.80.1.11"] } }),
        ),
      ),
    ).toBe("10.80.1.11/24");
  });
  it("ipam-level entries apply to every range set, runtime ipRanges and IPv6 included", () => {
    const c = conf(
      { ranges: [[{ subnet: "fd00:80::/64" }]], exclude: ["10.80.2.0/28", "fd00:80::/80"] },
      { runtimeConfig: { ipRanges: [[{ subnet: "10.80.2.0/24" }]] } },
    );
    const r = cmd("ADD", "a", c);
    expect(r.json.ips.map((i: any) => i.address)).toEqual(["10.80.2.16/24", "fd00:80:0:0:1::/64"]);
  });
  it("an exclusion covering a whole range is a config error, not an exhausted pool", () => {
    const r = cmd("ADD", "a", conf({ ranges: [[{ subnet: "10.80.3.0/29", exclude: ["10.80.3.0/29"] }]] }));
    expect(r.json).toEqual({
      code: 7,
      msg: "invalid range set 0: every address of range 10.80.3.1-10.80.3.6 is excluded",
    });
  });
});

describe("reuseDelay", () => {
  const small = { subnet: "10.81.0.0/29" }; // .2 - .6
  const fill = (c: object) => ["a", "b", "c", "d", "e"].map((id) => addr(cmd("ADD", id, c)));
  it("without it, a released address is handed out again at once (host-local's behaviour)", () => {
    const c = conf(small);
    fill(c);
    cmd("DEL", "b", c);
    expect(addr(cmd("ADD", "x", c))).toBe("10.81.0.3/29");
  });
  it("with it, release then immediate ADD gets a different address while one is free", () => {
    const c = conf({ ...small, reuseDelay: "30s" });
    expect(fill(c)).toEqual(["10.81.0.2/29", "10.81.0.3/29", "10.81.0.4/29", "10.81.0.5/29", "10.81.0.6/29"]);
    expect(cmd("DEL", "b", c).status).toBe(0); // .3 cools down
    unlinkSync(join(dir, "testnet", "10.81.0.5")); // freed by hand: no release time, so not cooling
    const r = cmd("ADD", "x", c);
    expect(addr(r)).toBe("10.81.0.5/29"); // round-robin from .6 would have taken .3
    expect(r.stderr).toBe("");
  });
  it("with only cooling addresses left, ADD still succeeds with the oldest release and says so", () => {
    const c = conf({ ...small, reuseDelay: "5m" });
    fill(c);
    cmd("DEL", "d", c);
    now += 50;
    cmd("DEL", "b", c);
    now += 1250;
    const r = cmd("ADD", "x", c);
    expect(addr(r)).toBe("10.81.0.5/29"); // d's, released first
    expect(r.stderr).toBe(
      "local-ipam: only addresses in their reuse delay are free; reusing 10.81.0.5, released 1.3s ago\n",
    );
    expect(addr(cmd("ADD", "y", c))).toBe("10.81.0.3/29");
  });
  it("a released address is used again normally once its delay has passed; GC releases count too", () => {
    const c = conf({ ...small, reuseDelay: "300ms" });
    fill(c);
    const live = ["a", "c", "d", "e"].map((id) => ({ containerID: id, ifname: "eth0" }));
    const gc = plugin(
      { command: "GC", env: { CNI_CONTAINERID: null, CNI_IFNAME: null, CNI_NETNS: null } },
      conf({ ...small, reuseDelay: "300ms" }, { "cni.dev/valid-attachments": live }),
    );
    expect(gc.status).toBe(0);
    const soon = cmd("ADD", "x", c);
    expect(soon.stderr).toContain("reusing 10.81.0.3"); // b's address, released by GC, still cooling but the only one
    cmd("DEL", "x", c);
    now += 299;
    expect(cmd("ADD", "z", c).stderr).toContain("reusing 10.81.0.3"); // 299 ms: still cooling
    cmd("DEL", "z", c);
    now += 301;
    const later = cmd("ADD", "y", c);
    expect([addr(later), later.stderr]).toEqual(["10.81.0.3/29", ""]);
  });
});
