// Malformed input of every kind: the right CNI code and a message naming what is wrong, exit status 1, one JSON
// object on stdout, nothing on stderr (no stack trace), and nothing left on disk.
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Invocation, plugin, removeDir, tempDir } from "../helpers.js";

let root: string;
beforeAll(() => {
  root = tempDir();
});
afterAll(() => removeDir(root));

interface Case {
  name: string;
  inv?: Partial<Invocation>;
  /** stdin: an object or string; a function receives the case's data dir */
  stdin: object | string | ((dataDir: string) => object | string);
  code: number;
  msg: string | RegExp;
}

const ok = (dataDir: string, ipam: object = {}, extra: object = {}) => ({
  cniVersion: "1.0.0",
  name: "badnet",
  ...extra,
  ipam: { type: "local-ipam", dataDir, subnet: "10.66.0.0/24", ...ipam },
});

const cases: Case[] = [
  { name: "empty stdin", stdin: "", code: 6, msg: "error unmarshall network config: unexpected end of JSON input" },
  {
    name: "not JSON",
    stdin: "hello",
    code: 6,
    msg: "error unmarshall network config: invalid character 'h' looking for beginning of value",
  },
  {
    name: "a JSON array",
    stdin: "[]",
    code: 6,
    msg: 'error unmarshall network config: json: cannot unmarshal array into Go value of type struct { Name string "json:\\"name\\"" }',
  },
  { name: "a JSON string", stdin: '"x"', code: 6, msg: /cannot unmarshal string into Go value/ },
  {
    name: "truncated JSON",
    stdin: '{"name": "x", "ipam": {',
    code: 6,
    msg: "error unmarshall network config: unexpected end of JSON input",
  },
  {
    name: "trailing comma",
    stdin: '{"name": "x",}',
    code: 6,
    msg: /invalid character '}' looking for beginning of object key string/,
  },
  {
    name: "NUL byte in JSON",
    stdin: '{"name": "x\u0000"}',
    code: 6,
    msg: /invalid character '\\x00' in string literal/,
  },
  { name: "missing name", stdin: (d) => ({ ...ok(d), name: undefined }), code: 7, msg: "missing network name" },
  { name: "empty name", stdin: (d) => ({ ...ok(d), name: "" }), code: 7, msg: "missing network name" },
  {
    name: "name ../x",
    stdin: (d) => ({ ...ok(d), name: "../x" }),
    code: 7,
    msg: "invalid characters found in network name",
  },
  {
    name: "name with /",
    stdin: (d) => ({ ...ok(d), name: "a/b" }),
    code: 7,
    msg: "invalid characters found in network name",
  },
  {
    name: "name with NUL",
    stdin: (d) => ({ ...ok(d), name: "a\u0000b" }),
    code: 7,
    msg: "invalid characters found in network name",
  },
  {
    name: "name a number",
    stdin: (d) => ({ ...ok(d), name: 7 }),
    code: 6,
    msg: /cannot unmarshal number into Go struct field \.name of type string/,
  },
  {
    name: "cniVersion a number",
    stdin: (d) => ({ ...ok(d), cniVersion: 1 }),
    code: 6,
    msg: /decoding version from network config: .*cniVersion of type string/,
  },
  {
    name: "cniVersion 9.9.9",
    stdin: (d) => ({ ...ok(d), cniVersion: "9.9.9" }),
    code: 1,
    msg: "incompatible CNI versions",
  },
  {
    name: "missing ipam",
    stdin: { cniVersion: "1.0.0", name: "badnet" },
    code: 999,
    msg: "IPAM config missing 'ipam' key",
  },
  {
    name: "ipam a string",
    stdin: { cniVersion: "1.0.0", name: "badnet", ipam: "x" },
    code: 999,
    msg: /cannot unmarshal string into Go struct field Net\.ipam/,
  },
  { name: "no ranges", stdin: (d) => ({ ...ok(d, { subnet: undefined }) }), code: 999, msg: "no IP ranges specified" },
  {
    name: "subnet a number",
    stdin: (d) => ok(d, { subnet: 10 }),
    code: 999,
    msg: /IPAMConfig\.ipam\.subnet of type string/,
  },
  {
    name: "subnet without prefix",
    stdin: (d) => ok(d, { subnet: "10.66.0.0" }),
    code: 999,
    msg: "invalid CIDR address: 10.66.0.0",
  },
  {
    name: "subnet /33",
    stdin: (d) => ok(d, { subnet: "10.66.0.0/33" }),
    code: 999,
    msg: "invalid CIDR address: 10.66.0.0/33",
  },
  {
    name: "subnet /31",
    stdin: (d) => ok(d, { subnet: "10.66.0.0/31" }),
    code: 999,
    msg: "invalid range set 0: Network 10.66.0.0/31 too small to allocate from",
  },
  { name: "host bits", stdin: (d) => ok(d, { subnet: "10.66.0.9/24" }), code: 999, msg: /host bits set/ },
  {
    name: "rangeStart outside",
    stdin: (d) => ok(d, { rangeStart: "10.67.0.1" }),
    code: 999,
    msg: "invalid range set 0: RangeStart 10.67.0.1 not in network 10.66.0.0/24",
  },
  {
    name: "rangeEnd outside",
    stdin: (d) => ok(d, { rangeEnd: "10.67.0.1" }),
    code: 999,
    msg: "invalid range set 0: RangeEnd 10.67.0.1 not in network 10.66.0.0/24",
  },
  {
    name: "rangeStart a leading-zero IP",
    stdin: (d) => ok(d, { rangeStart: "10.66.0.010" }),
    code: 999,
    msg: "invalid IP address: 10.66.0.010",
  },
  {
    name: "gateway a bool",
    stdin: (d) => ok(d, { gateway: true }),
    code: 999,
    msg: /cannot unmarshal bool into Go struct field IPAMConfig\.ipam\.gateway of type net\.IP/,
  },
  {
    name: "ranges an object",
    stdin: (d) => ok(d, { subnet: undefined, ranges: {} }),
    code: 999,
    msg: /cannot unmarshal object .* of type \[\]allocator\.RangeSet/,
  },
  {
    name: "empty range set",
    stdin: (d) => ok(d, { subnet: undefined, ranges: [[]] }),
    code: 999,
    msg: "invalid range set 0: empty range set",
  },
  {
    name: "range without subnet",
    stdin: (d) => ok(d, { subnet: undefined, ranges: [[{}]] }),
    code: 999,
    msg: "invalid range set 0: IP <nil> not v4 nor v6",
  },
  {
    name: "mixed families",
    stdin: (d) => ok(d, { subnet: undefined, ranges: [[{ subnet: "10.66.0.0/24" }, { subnet: "fd00::/64" }]] }),
    code: 999,
    msg: "invalid range set 0: mixed address families",
  },
  {
    name: "overlapping sets",
    stdin: (d) => ok(d, { ranges: [[{ subnet: "10.66.0.0/25" }]] }),
    code: 999,
    msg: "range set 0 overlaps with 1",
  },
  {
    name: "rangeStart past rangeEnd",
    stdin: (d) => ok(d, { rangeStart: "10.66.0.255" }),
    code: 7,
    msg: /rangeStart 10\.66\.0\.255 is after rangeEnd 10\.66\.0\.254/,
  },
  {
    name: "routes not a list",
    stdin: (d) => ok(d, { routes: "0.0.0.0/0" }),
    code: 999,
    msg: /of type \[\]\*types\.Route/,
  },
  {
    name: "route dst not a CIDR",
    stdin: (d) => ok(d, { routes: [{ dst: "default" }] }),
    code: 999,
    msg: "invalid CIDR address: default",
  },
  {
    name: "route without dst",
    stdin: (d) => ok(d, { routes: [{ gw: "10.66.0.1" }] }),
    code: 7,
    msg: 'invalid route 0 in ipam.routes: missing "dst"',
  },
  {
    name: "dataDir a number",
    stdin: (d) => ok(d, { dataDir: 5 }),
    code: 999,
    msg: /IPAMConfig\.ipam\.dataDir of type string/,
  },
  {
    name: "resolvConf missing",
    stdin: (d) => ok(d, { resolvConf: "/nonexistent/resolv.conf" }),
    code: 999,
    msg: "open /nonexistent/resolv.conf: no such file or directory",
  },
  {
    name: "requested IP garbage",
    stdin: (d) => ok(d, {}, { runtimeConfig: { ips: ["garbage"] } }),
    code: 999,
    msg: "invalid IP address garbage",
  },
  {
    name: "requested IP outside every range",
    stdin: (d) => ok(d, {}, { args: { cni: { ips: ["192.0.2.1"] } } }),
    code: 999,
    msg: "failed to allocate all requested IPs: 192.0.2.1",
  },
  { name: "CNI_ARGS bad pair", inv: { args: "IP" }, stdin: (d) => ok(d), code: 999, msg: 'ARGS: invalid pair "IP"' },
  {
    name: "CNI_ARGS unknown key",
    inv: { args: "POD=x" },
    stdin: (d) => ok(d),
    code: 999,
    msg: 'ARGS: unknown args ["POD=x"]',
  },
  {
    name: "CNI_ARGS bad IP",
    inv: { args: "IP=1.2.3" },
    stdin: (d) => ok(d),
    code: 999,
    msg: 'ARGS: error parsing value of pair "IP=1.2.3": invalid IP address 1.2.3',
  },
  {
    name: "no CNI_CONTAINERID",
    inv: { env: { CNI_CONTAINERID: null } },
    stdin: (d) => ok(d),
    code: 4,
    msg: "required env variables [CNI_CONTAINERID] missing",
  },
  {
    name: "no CNI_NETNS, CNI_PATH",
    inv: { env: { CNI_NETNS: "", CNI_PATH: null } },
    stdin: (d) => ok(d),
    code: 4,
    msg: "required env variables [CNI_NETNS,CNI_PATH] missing",
  },
  {
    name: "container ID with ..",
    inv: { containerId: "../../etc" },
    stdin: (d) => ok(d),
    code: 4,
    msg: "invalid characters in containerID",
  },
  {
    name: "container ID with a newline",
    inv: { containerId: "a\nb" },
    stdin: (d) => ok(d),
    code: 4,
    msg: "invalid characters in containerID",
  },
  {
    name: "ifname too long",
    inv: { ifname: "x".repeat(16) },
    stdin: (d) => ok(d),
    code: 4,
    msg: "interface name is too long",
  },
  { name: "ifname ..", inv: { ifname: ".." }, stdin: (d) => ok(d), code: 4, msg: "interface name is . or .." },
  {
    name: "ifname with a space",
    inv: { ifname: "e th0" },
    stdin: (d) => ok(d),
    code: 4,
    msg: "interface name contains / or : or whitespace characters",
  },
  {
    name: "unknown command",
    inv: { command: "ATTACH" },
    stdin: (d) => ok(d),
    code: 4,
    msg: "unknown CNI_COMMAND: ATTACH",
  },
  {
    name: "CHECK on 0.3.1",
    inv: { command: "CHECK" },
    stdin: (d) => ({ ...ok(d), cniVersion: "0.3.1" }),
    code: 1,
    msg: "config version does not allow CHECK",
  },
];

describe("bad input", () => {
  cases.forEach((c, i) => {
    it(c.name, async () => {
      const data = join(root, `case${i}`);
      const stdin = typeof c.stdin === "function" ? c.stdin(data) : c.stdin;
      const r = await plugin({ command: "ADD", containerId: "ctr", ...c.inv }, stdin);
      expect(r.status).toBe(1);
      expect(r.stderr).toBe("");
      expect(r.json).toBeTypeOf("object");
      expect(Object.keys(r.json).every((k) => ["code", "msg", "details"].includes(k))).toBe(true);
      expect(r.json.code).toBe(c.code);
      if (typeof c.msg === "string") expect(r.json.msg).toBe(c.msg);
      else expect(r.json.msg).toMatch(c.msg);
      expect(r.stdout).not.toMatch(/\bat .*\.(ts|js):\d+/); // no stack trace
      // nothing left behind: no data dir, or (for errors after allocation started) no lease in it
      if (existsSync(data)) {
        const net = join(data, "badnet");
        const files = existsSync(net)
          ? readdirSync(net).filter((f) => f !== "lock" && !f.startsWith("last_reserved_ip"))
          : [];
        expect(files).toEqual([]);
      }
    });
  });
  it("a data dir that cannot be created is an I/O error naming the path, not a crash", async () => {
    const r = await plugin({ command: "ADD" }, ok(join("/proc/self", "x")));
    expect(r.status).toBe(1);
    expect(r.json.code).toBe(5);
    expect(r.json.msg).toBe("mkdir /proc/self/x: no such file or directory"); // host-local's words (its MkdirAll)
  });
});
