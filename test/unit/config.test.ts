import { describe, expect, it } from "vitest";
import { parseEnvArgs } from "../../src/config/args.js";
import { loadIpamConfig } from "../../src/config/ipam.js";
import { parseResolvConf } from "../../src/config/resolvconf.js";
import { CniError } from "../../src/errors.js";
import { goSyntaxError } from "../../src/go/json.js";
import { formatIP } from "../../src/net/ip.js";
import { formatRangeSet } from "../../src/net/range.js";

const err = (f: () => unknown): { code: number; msg: string } => {
  try {
    f();
  } catch (e) {
    if (e instanceof CniError) return { code: e.code, msg: e.msg };
    throw e;
  }
  throw new Error("expected a CniError");
};
const load = (conf: object, args = "") => loadIpamConfig(JSON.parse(JSON.stringify(conf)), args);
const base = { cniVersion: "1.0.0", name: "n" };

describe("loadIpamConfig", () => {
  it("orders range sets: runtime ipRanges, then the legacy range, then ranges", () => {
    const c = load({
      ...base,
      runtimeConfig: { ipRanges: [[{ subnet: "10.3.0.0/24" }]] },
      ipam: { subnet: "10.1.0.0/24", ranges: [[{ subnet: "10.2.0.0/24" }]] },
    });
    expect(c.rangeSets.map(formatRangeSet)).toEqual([
      "10.3.0.1-10.3.0.254",
      "10.1.0.1-10.1.0.254",
      "10.2.0.1-10.2.0.254",
    ]);
    expect(c.dataDir).toBe("/var/lib/cni/networks");
  });
  it("matches keys case-insensitively, as Go does", () => {
    const c = load({ ...base, IPAM: { Subnet: "10.1.0.0/24", DATADIR: "/x", RangeStart: "10.1.0.10" } });
    expect(c.dataDir).toBe("/x");
    expect(formatRangeSet(c.rangeSets[0]!)).toBe("10.1.0.10-10.1.0.254");
  });
  it("collects requested IPs from CNI_ARGS, args.cni.ips and runtimeConfig.ips, dropping prefixes and repeats", () => {
    const c = load(
      {
        ...base,
        ipam: { subnet: "10.1.0.0/24" },
        args: { cni: { ips: ["10.1.0.7/24", "10.1.0.5"] } },
        runtimeConfig: { ips: ["10.1.0.8"] },
      },
      "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-0;IP=10.1.0.5",
    );
    expect(c.requested.map(formatIP)).toEqual(["10.1.0.5", "10.1.0.7", "10.1.0.8"]);
  });
  it.each([
    [{ ...base }, "IPAM config missing 'ipam' key"],
    [{ ...base, ipam: null }, "IPAM config missing 'ipam' key"],
    [{ ...base, ipam: {} }, "no IP ranges specified"],
    [{ ...base, ipam: 5 }, "json: cannot unmarshal number into Go struct field Net.ipam of type allocator.IPAMConfig"],
    [
      { ...base, ipam: { subnet: 7 } },
      "json: cannot unmarshal number into Go struct field IPAMConfig.ipam.subnet of type string",
    ],
    [{ ...base, ipam: { subnet: null } }, "invalid CIDR address: "],
    [
      { ...base, ipam: { dataDir: 5, subnet: 7 } },
      "json: cannot unmarshal number into Go struct field IPAMConfig.ipam.subnet of type string",
    ],
    [
      { ...base, ipam: { dataDir: 5, subnet: "10.0.0.0/24" } },
      "json: cannot unmarshal number into Go struct field IPAMConfig.ipam.dataDir of type string",
    ],
    [
      { ...base, ipam: { ranges: [[{ subnet: "10.0.0.0/24", rangeStart: 5 }]] } },
      "json: cannot unmarshal number into Go struct field Range.ipam.ranges.rangeStart of type net.IP",
    ],
    [{ ...base, ipam: { subnet: "10.0.0.0/24", rangeStart: "10.0.0.010" } }, "invalid IP address: 10.0.0.010"],
    [
      { ...base, ipam: { subnet: "10.0.0.0/24", routes: [5] } },
      "json: cannot unmarshal number into Go struct field IPAMConfig.ipam.routes of type types.route",
    ],
    [
      { ...base, ipam: { subnet: "10.0.0.0/24", routes: {} } },
      "json: cannot unmarshal object into Go struct field IPAMConfig.ipam.routes of type []*types.Route",
    ],
    [{ ...base, ipam: { subnet: "10.0.0.0/24", routes: [{ dst: "x" }] } }, "invalid CIDR address: x"],
    [
      { ...base, ipam: { subnet: "10.0.0.0/24" }, args: { cni: 5 } },
      "json: cannot unmarshal number into Go struct field .args.cni of type allocator.IPAMArgs",
    ],
    [
      { ...base, ipam: { subnet: "10.0.0.0/24" }, args: { cni: { ips: "x" } } },
      "json: cannot unmarshal string into Go struct field IPAMArgs.args.cni.ips of type []*ip.IP",
    ],
    [
      { ...base, ipam: { subnet: "10.0.0.0/24" }, runtimeConfig: { ips: [5] } },
      "json: cannot unmarshal number into Go struct field .runtimeConfig.ips of type *ip.IP",
    ],
    [{ ...base, ipam: { subnet: "10.0.0.0/24" }, args: { cni: { ips: ["bogus"] } } }, "invalid IP address bogus"],
    [
      { ...base, ipam: { subnet: "10.0.0.0/24" }, args: { cni: { ips: [""] } } },
      "cannot understand ip: IP <nil> not v4 nor v6",
    ],
    [{ ...base, ipam: { ranges: [[]] } }, "invalid range set 0: empty range set"],
    [{ ...base, ipam: { ranges: [[{}]] } }, "invalid range set 0: IP <nil> not v4 nor v6"],
    [
      { ...base, ipam: { ranges: [[{ subnet: "10.0.0.0/24" }], [{ subnet: "10.0.0.0/16" }]] } },
      "range set 0 overlaps with 1",
    ],
    [
      { ...base, ipam: { ranges: [[{ subnet: "10.0.0.0/24" }, { subnet: "fd00::/64" }]] } },
      "invalid range set 0: mixed address families",
    ],
    [
      { cniVersion: "0.2.0", name: "n", ipam: { ranges: [[{ subnet: "10.0.0.0/24" }], [{ subnet: "10.1.0.0/24" }]] } },
      "CNI version 0.2.0 does not support more than 1 address per family",
    ],
  ])("%j -> %s", (conf, msg) => {
    expect(err(() => load(conf))).toEqual({ code: 999, msg });
  });
  it("refuses a rangeStart past the (default) rangeEnd, which host-local would walk out of the subnet", () => {
    expect(err(() => load({ ...base, ipam: { subnet: "10.0.0.0/24", rangeStart: "10.0.0.255" } }))).toEqual({
      code: 7,
      msg: "invalid range set 0: rangeStart 10.0.0.255 is after rangeEnd 10.0.0.254",
    });
  });
  it("refuses a route without dst instead of printing <nil>", () => {
    expect(err(() => load({ ...base, ipam: { subnet: "10.0.0.0/24", routes: [{ gw: "10.0.0.1" }] } })).code).toBe(7);
  });
});

describe("CNI_ARGS", () => {
  it.each([
    ["IP=10.0.0.5", "10.0.0.5"],
    ["IP=10.0.0.5/24", "10.0.0.5"],
    ["IP=", undefined],
    ["IgnoreUnknown=1;FOO=bar;IP=10.0.0.6", "10.0.0.6"],
    ["FOO=bar;IgnoreUnknown=true", undefined],
  ])("%s", (args, ip) => {
    const out = parseEnvArgs(args);
    expect(out.ip ? formatIP(out.ip) : undefined).toBe(ip);
  });
  it.each([
    ["FOO", 'ARGS: invalid pair "FOO"'],
    ["IP=1=2", 'ARGS: invalid pair "IP=1=2"'],
    ["FOO=bar;BAZ=1", 'ARGS: unknown args ["FOO=bar" "BAZ=1"]'],
    ["ip=10.0.0.1", 'ARGS: unknown args ["ip=10.0.0.1"]'],
    ["IP=10.1.2.300", 'ARGS: error parsing value of pair "IP=10.1.2.300": invalid IP address 10.1.2.300'],
    [
      "IgnoreUnknown=yes",
      'ARGS: error parsing value of pair "IgnoreUnknown=yes": boolean unmarshal error: invalid input yes',
    ],
    [
      "CommonArgs=1",
      "ARGS: cannot unmarshal into field 'CommonArgs' - type '*types.CommonArgs' does not implement encoding.TextUnmarshaler",
    ],
  ])("%s fails: %s", (args, msg) => {
    expect(err(() => parseEnvArgs(args))).toEqual({ code: 999, msg });
  });
});

describe("Go's JSON syntax errors", () => {
  it.each([
    ["", "unexpected end of JSON input"],
    ["{", "unexpected end of JSON input"],
    ["{bad", "invalid character 'b' looking for beginning of object key string"],
    ['{"a" 1}', "invalid character '1' after object key"],
    ['{"a":1 "b":2}', "invalid character '\"' after object key:value pair"],
    ["[1 2]", "invalid character '2' after array element"],
    ["{} x", "invalid character 'x' after top-level value"],
    ["tru", "unexpected end of JSON input"],
    ["trux", "invalid character 'x' in literal true (expecting 'e')"],
    ['"a\nb"', "invalid character '\\n' in string literal"],
    ['"\\x"', "invalid character 'x' in string escape code"],
    ["-x", "invalid character 'x' in numeric literal"],
    ["1.x", "invalid character 'x' after decimal point in numeric literal"],
    ["1ex", "invalid character 'x' in exponent of numeric literal"],
    ["@", "invalid character '@' looking for beginning of value"],
    ['{"a":[1,{"b":}]}', "invalid character '}' looking for beginning of value"],
  ])("%j", (text, msg) => {
    expect(goSyntaxError(text)).toBe(msg);
  });
  it("accepts valid documents and bounds nesting without recursion", () => {
    expect(goSyntaxError('{"a":[1,2.5e3,-0,"x\\u00e9",true,false,null,{}]}')).toBeNull();
    expect(goSyntaxError("[".repeat(20000))).toBe("invalid character '[' exceeded max depth");
  });
});

describe("resolv.conf", () => {
  it("parses as host-local does", () => {
    const text =
      "# c\n; c\nnameserver 10.0.0.10\nnameserver  10.0.0.11 extra\ndomain a.local\ndomain b.local\nsearch x.local y.local\noptions ndots:5\noptions edns0\nbogus\n";
    expect(parseResolvConf(text)).toEqual({
      nameservers: ["10.0.0.10", "10.0.0.11"],
      domain: "b.local",
      search: ["x.local", "y.local"],
      options: ["ndots:5", "edns0"],
    });
  });
});
