// A property-based fuzzer (fast-check): valid configs and environments, mutated in thousands of ways, run
// through the binary built with AddressSanitizer and UBSan (both halt on their first report, which lands on
// stderr). Whatever the input, local-ipam exits 0 with a result or 1 with a CNI error (JSON with a numeric code
// and a message), prints nothing on stderr but its own notes, and writes nowhere but <dataDir>/<name>/ and its
// own <dataDir>/.local-ipam/<name>/.
import { existsSync, readdirSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Invocation, pool, ROOT, removeDir, runAsync, tempDir } from "../helpers.js";

const CASES = Number(process.env.FUZZ_CASES ?? 2000);
const SEED = Number(process.env.FUZZ_SEED ?? 20261123);
/** The sanitizer build by default; FUZZ_BIN runs the same cases against another (the release build, say). */
const BIN = process.env.FUZZ_BIN ?? join(ROOT, "dist", "test", "local-ipam-asan");
/** What local-ipam may say on stderr while succeeding: its notes (src/errors.ts NOTE), nothing else. */
const NOTES =
  /^local-ipam: (range set full; reclaimed|only addresses in their reuse delay are free|STATUS: range set \d+).*\n/gm;

let root: string;
beforeAll(() => {
  root = tempDir("local-ipam-fuzz-");
});
afterAll(() => removeDir(root));

const ipish = fc.oneof(
  fc.ipV4(),
  fc.ipV6(),
  fc.ipV4Extended(),
  fc.constantFrom("10.0.0.010", "::ffff:10.0.0.1", "fe80::1%eth0", "10.0.0.256", "", "1.2.3", "::", "0.0.0.0"),
  fc.string({ maxLength: 20 }),
);
const cidrish = fc.oneof(
  fc.tuple(ipish, fc.integer({ min: -1, max: 140 })).map(([ip, p]) => `${ip}/${p}`),
  fc.constantFrom(
    "10.1.0.0/24",
    "10.1.0.0/30",
    "10.1.0.0/31",
    "fd00::/64",
    "fd00::/126",
    "10.1.0.5/24",
    "x/8",
    "10.1.0.0",
  ),
);
const anyJson = fc.jsonValue({ maxDepth: 3 });
const range = fc.record(
  { subnet: fc.oneof(cidrish, anyJson), rangeStart: ipish, rangeEnd: ipish, gateway: fc.oneof(ipish, anyJson) },
  { requiredKeys: [] },
);
const names = fc.oneof(
  fc.constant("fuzznet"),
  fc.constantFrom("..", "../escape", "a/b", "/abs", "a\u0000b", ".hidden", "x".repeat(300), "net.1_2-3", ""),
  fc.string({ maxLength: 12 }),
);
const ipam = fc.record(
  {
    type: fc.oneof(fc.constant("local-ipam"), anyJson),
    subnet: fc.oneof(cidrish, anyJson),
    rangeStart: ipish,
    rangeEnd: ipish,
    gateway: ipish,
    ranges: fc.oneof(fc.array(fc.array(range, { maxLength: 3 }), { maxLength: 3 }), anyJson),
    routes: fc.oneof(
      fc.array(fc.record({ dst: fc.oneof(cidrish, anyJson), gw: ipish }, { requiredKeys: [] }), { maxLength: 4 }),
      anyJson,
    ),
    resolvConf: fc.constantFrom("/etc/resolv.conf", "/nonexistent", "/proc/self", ""),
    reclaimAfterReboot: fc.oneof(fc.boolean(), anyJson),
    exclude: fc.oneof(fc.array(fc.oneof(cidrish, ipish), { maxLength: 4 }), anyJson),
    reuseDelay: fc.oneof(fc.constantFrom("0s", "5m", "1h30m", "1.5s", "-1s", "5", ""), anyJson),
    statusOnExhaustion: fc.oneof(fc.constantFrom("ready", "unavailable", "maybe", ""), anyJson),
  },
  { requiredKeys: [] },
);
const config = fc.record(
  {
    cniVersion: fc.oneof(
      fc.constantFrom("0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0", "", "2.0.0", "x"),
      anyJson,
    ),
    name: fc.oneof(names, anyJson),
    ipam: fc.oneof(ipam, anyJson),
    args: fc.oneof(
      fc.record({ cni: fc.record({ ips: fc.oneof(fc.array(ipish, { maxLength: 3 }), anyJson) }) }),
      anyJson,
    ),
    runtimeConfig: fc.oneof(
      fc.record(
        {
          ips: fc.array(ipish, { maxLength: 2 }),
          ipRanges: fc.array(fc.array(range, { maxLength: 2 }), { maxLength: 2 }),
        },
        { requiredKeys: [] },
      ),
      anyJson,
    ),
    prevResult: anyJson,
  },
  { requiredKeys: ["name"] },
);
const env = fc.record({
  command: fc.constantFrom("ADD", "ADD", "ADD", "DEL", "CHECK", "GC", "STATUS", "VERSION", "", "BOGUS"),
  containerId: fc.oneof(
    fc.constantFrom("ctr1", "ctr2", "-x", "a/b", "../../x", "", "c".repeat(70000)),
    fc.string({ maxLength: 70 }),
  ),
  ifname: fc.oneof(fc.constantFrom("eth0", "net1", "", ".", "eth0:1", "x".repeat(16)), fc.string({ maxLength: 16 })),
  args: fc.oneof(
    fc.constantFrom("", "IP=10.1.0.9", "IgnoreUnknown=1;K8S_POD_NAME=x", "IP", "IP=1=2", "FOO=bar"),
    fc.string({ maxLength: 30 }),
  ),
});
/** Sometimes raw text instead of JSON: truncated, padded, or not JSON at all. */
const stdin = fc.oneof(
  { weight: 8, arbitrary: config.map((c) => ({ kind: "json" as const, c })) },
  {
    weight: 1,
    arbitrary: fc
      .tuple(config, fc.nat(200))
      .map(([c, cut]) => ({ kind: "text" as const, t: JSON.stringify(c).slice(0, cut) })),
  },
  { weight: 1, arbitrary: fc.string({ maxLength: 100 }).map((t) => ({ kind: "text" as const, t })) },
  {
    // keys repeated, exactly or case-folded, which Go's decoder merges (and JSON.parse would not keep)
    weight: 2,
    arbitrary: fc
      .tuple(
        config,
        fc.constantFrom("ipam", "IPAM", "ranges", "Subnet", "subnet", "\u017fubnet", "name", "routes"),
        anyJson,
      )
      .map(([c, key, v]) => ({ kind: "dup" as const, c, key, v })),
  },
);

/** Every path under `dir`, relative to it. */
function tree(dir: string): string[] {
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      out.push(relative(dir, p));
      if (statSync(p, { throwIfNoEntry: false })?.isDirectory()) walk(p);
    }
  };
  walk(dir);
  return out;
}

describe("fuzzing the plugin", () => {
  it(`${CASES} mutated configs and environments: exit 0 with a result or 1 with a CNI error, no stray files`, async () => {
    const samples = fc.sample(fc.tuple(stdin, env), { numRuns: CASES, seed: SEED });
    let errors = 0;
    const outcomes = await pool(
      16,
      samples.map(([input, e], i) => async () => {
        const dataDir = join(root, `c${i}`);
        let text: string;
        let name: unknown;
        if (input.kind === "json" || input.kind === "dup") {
          const c = { ...input.c } as Record<string, unknown>;
          if (c.ipam && typeof c.ipam === "object" && !Array.isArray(c.ipam))
            c.ipam = { ...c.ipam, dataDir }; // never elsewhere
          else c.ipam = { subnet: "10.1.0.0/24", dataDir, bad: c.ipam };
          text = JSON.stringify(c);
          name = c.name;
          if (input.kind === "dup") {
            // the repeat goes inside "ipam", after dataDir, so that no repeat can move the data elsewhere
            const repeat =
              input.key === "name"
                ? `,"name":${JSON.stringify(input.v)}`
                : `,${JSON.stringify(input.key)}:${JSON.stringify(input.v)}`;
            text =
              input.key === "name"
                ? text.replace(/}$/, `${repeat}}`)
                : text.replace(/"dataDir":("[^"]*")/, `"dataDir":$1${repeat}`);
            if (input.key === "name") name = input.v;
          }
        } else {
          text = input.t;
        }
        const inv: Invocation = { command: e.command, containerId: e.containerId, ifname: e.ifname, args: e.args };
        const r = await runAsync(BIN, inv, text);
        return { i, r, name, dataDir, text, inv };
      }),
    );
    for (const { i, r, name, dataDir, text, inv } of outcomes) {
      const where = `case ${i} (seed ${SEED}): ${JSON.stringify(inv)} ${text.slice(0, 300)}\n-> ${r.status} ${r.stdout.slice(0, 300)} ${r.stderr.slice(0, 300)}`;
      expect([0, 1], where).toContain(r.status);
      if (inv.command === "") {
        expect(r.stdout, where).toBe("");
        continue;
      }
      if (r.stdout !== "") expect(r.json, where).toBeTypeOf("object");
      expect(r.stderr.replace(NOTES, ""), where).toBe(""); // a sanitizer report would be here
      if (r.status === 1) {
        errors++;
        expect(Number.isInteger(r.json.code), where).toBe(true);
        expect(typeof r.json.msg, where).toBe("string");
        expect(
          Object.keys(r.json).every((k) => ["code", "msg", "details"].includes(k)),
          where,
        ).toBe(true);
      } else if (inv.command === "ADD") {
        expect(r.json.cniVersion, where).toBeTypeOf("string");
      }
      const allowed = typeof name === "string" ? [name, `.local-ipam`, `.local-ipam/${name}`] : [];
      for (const p of tree(dataDir)) {
        const ok = allowed.some((a) => p === a || p.startsWith(`${a}/`));
        expect(ok, `${where}\nstray path ${p}`).toBe(true);
      }
    }
    console.log(
      `fuzz: ${outcomes.length} cases (seed ${SEED}), ${errors} CNI errors, ${outcomes.length - errors} successes`,
    );
  }, 900_000);
});
