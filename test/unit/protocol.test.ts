import { describe, expect, it } from "vitest";
import { type Result, resultFor } from "../../src/cni/result.js";
import { isValidNetworkName, validateContainerId, validateIfname } from "../../src/cni/skel.js";
import { parseVersion, versionAtLeast } from "../../src/cni/version.js";
import type { CniError } from "../../src/errors.js";
import { parseCIDR, parseIP } from "../../src/net/ip.js";

const result: Result = {
  ips: [
    { address: parseCIDR("10.0.0.2/24")!, gateway: parseIP("10.0.0.1")! },
    { address: parseCIDR("10.1.0.2/24")!, gateway: parseIP("10.1.0.1")! },
    { address: parseCIDR("fd00::2/64")!, gateway: parseIP("fd00::1")! },
  ],
  routes: [{ dst: parseCIDR("0.0.0.0/0")! }, { dst: parseCIDR("::/0")!, gw: parseIP("fd00::1")! }],
  dns: { nameservers: ["10.0.0.10"] },
};

describe("results in every version's format", () => {
  it("1.0.0 and 1.1.0: ips without version", () => {
    for (const v of ["1.0.0", "1.1.0"])
      expect(resultFor(result, v)).toEqual({
        cniVersion: v,
        ips: [
          { address: "10.0.0.2/24", gateway: "10.0.0.1" },
          { address: "10.1.0.2/24", gateway: "10.1.0.1" },
          { address: "fd00::2/64", gateway: "fd00::1" },
        ],
        routes: [{ dst: "0.0.0.0/0" }, { dst: "::/0", gw: "fd00::1" }],
        dns: { nameservers: ["10.0.0.10"] },
      });
  });
  it("0.3.x and 0.4.0: ips carry their family", () => {
    for (const v of ["0.3.0", "0.3.1", "0.4.0"]) {
      const r = resultFor(result, v) as any;
      expect(r.cniVersion).toBe(v);
      expect(r.ips.map((i: any) => i.version)).toEqual(["4", "4", "6"]);
      expect(r.dns).toEqual({ nameservers: ["10.0.0.10"] });
    }
  });
  it("0.1.0, 0.2.0 and no version: the first address per family, routes split by family", () => {
    expect(resultFor(result, "")).toEqual({
      cniVersion: "0.1.0",
      ip4: { ip: "10.0.0.2/24", gateway: "10.0.0.1", routes: [{ dst: "0.0.0.0/0" }] },
      ip6: { ip: "fd00::2/64", gateway: "fd00::1", routes: [{ dst: "::/0", gw: "fd00::1" }] },
      dns: { nameservers: ["10.0.0.10"] },
    });
    const v4only = resultFor({ ...result, ips: result.ips.slice(0, 1) }, "0.2.0") as any;
    expect(v4only.ip6).toBeUndefined();
    expect(v4only.ip4.routes).toEqual([{ dst: "0.0.0.0/0" }]);
  });
  it("always prints dns, empty when there is none (as Debian's host-local)", () => {
    expect((resultFor({ ...result, dns: {} }, "1.0.0") as any).dns).toEqual({});
    expect((resultFor({ ...result, dns: {} }, "0.4.0") as any).dns).toEqual({});
  });
});

describe("environment validation", () => {
  const code = (f: () => void) => {
    try {
      f();
      return 0;
    } catch (e) {
      return (e as CniError).code;
    }
  };
  it("container IDs", () => {
    expect(code(() => validateContainerId("abc-1_2.3"))).toBe(0);
    expect(code(() => validateContainerId(""))).toBe(3);
    expect(code(() => validateContainerId("-abc"))).toBe(4);
    expect(code(() => validateContainerId("a/b"))).toBe(4);
    expect(code(() => validateContainerId("a\u0000b"))).toBe(4);
  });
  it("interface names", () => {
    expect(code(() => validateIfname("eth0"))).toBe(0);
    expect(code(() => validateIfname("123456789012345"))).toBe(0);
    for (const bad of ["", "1234567890123456", ".", "..", "a/b", "a:b", "a b", "a\tb"])
      expect(code(() => validateIfname(bad))).toBe(4);
  });
  it("network names cannot name a path outside dataDir", () => {
    expect(isValidNetworkName("k8s-pod-network.v1_x")).toBe(true);
    for (const bad of ["..", "../x", "a/b", ".hidden", "-x", "a b", ""]) expect(isValidNetworkName(bad)).toBe(false);
  });
});

describe("versions", () => {
  it("compares like libcni", () => {
    expect(parseVersion("1.0")).toEqual([1, 0, 0]);
    expect(parseVersion("x")).toBeNull();
    expect(versionAtLeast("0.4.0", "0.4.0")).toBe(true);
    expect(versionAtLeast("0.3.1", "0.4.0")).toBe(false);
    expect(versionAtLeast("1.1.0", "0.4.0")).toBe(true);
    expect(versionAtLeast("", "0.3.0")).toBe(false);
  });
});
