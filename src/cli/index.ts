// The operator CLI: `local-ipam <command>` when the binary runs with arguments and without CNI_COMMAND. It keeps
// the plugin's discipline: network names are checked as the plugin checks them, what it read from disk is printed
// with control characters escaped, and the one file it writes outside the network (--textfile) goes into a
// directory only its owner can change, under an unpredictable temporary name, renamed into place.
import { writeAll } from "../cni/io.js";
import { type AgentAnswer, askAgent } from "../commands/cluster.js";
import { type Collected, collectLeases } from "../commands/gc.js";
import { parseDuration } from "../config/duration.js";
import { DEFAULT_AGENT_SOCKET, DEFAULT_DATA_DIR } from "../config/ipam.js";
import { CniError } from "../errors.js";
import { goTrim } from "../go/strings.js";
import { formatIP, parseIP } from "../net/ip.js";
import { platform } from "../platform/index.js";
import { bootTimeMs } from "../store/boot.js";
import { Dir, readTextAt, replaceFile } from "../store/files.js";
import { inspectNetwork } from "../store/inspect.js";
import { lockTimeoutMs } from "../store/lock.js";
import { NetworkStore, ownerKey } from "../store/network.js";
import { BUILD, VERSION } from "../version.js";
import { runBlocks } from "./blocks.js";
import { exposition, type Family } from "./exposition.js";
import { one, type Parsed, parseFlags, UsageError } from "./flags.js";
import { runInstall, runMigrate } from "./install.js";
import {
  checkNetworkName,
  collect,
  humanCount,
  jsonCount,
  loadConfigFile,
  type NetworkUsage,
  percentUsed,
  sourcesFor,
} from "./pools.js";

const out = (s: string) => writeAll(1, s.endsWith("\n") ? s : `${s}\n`);
const json = (v: unknown) => out(JSON.stringify(v, null, 2));

/** Text from disk for a terminal: control characters (C0, DEL, C1) as escapes, so a lease cannot drive the tty. */
function printable(s: string): string {
  return s.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, (c) => {
    const code = c.charCodeAt(0);
    if (c === "\r") return "\\r";
    if (c === "\n") return "\\n";
    if (c === "\t") return "\\t";
    return code > 0xff ? `\\u${code.toString(16).padStart(4, "0")}` : `\\x${code.toString(16).padStart(2, "0")}`;
  });
}

const HELP: Record<string, string> = {
  "": `local-ipam ${VERSION}: a host-local-compatible CNI IPAM plugin, and tools for its pools.

As a CNI plugin it is run by the container runtime with CNI_COMMAND set. With arguments it is this tool:

  local-ipam leases    every lease: address, container, interface, age, from before the boot
  local-ipam usage     per range set: total, used, free, reclaimable, with a bar
  local-ipam release   free a stuck address or a container's leases, under the plugin's lock
  local-ipam metrics   Prometheus text exposition (for node_exporter's textfile collector)
  local-ipam gc        release the leases of containers the runtime no longer has, as CNI GC does
  local-ipam blocks    cluster networks: the blocks this node allocates from (changed by local-ipam-agent)
  local-ipam pool      cluster networks: every block, its node and use, the free blocks (asks the node agent)
  local-ipam release-node  cluster networks: return a dead node's blocks to the pool (asks the node agent)
  local-ipam install   put this binary into the CNI bin dir and a conflist for the node's pod CIDRs in place
  local-ipam migrate   switch the CNI configs of a node from host-local to local-ipam (or back)

  local-ipam <command> --help     the command's flags
  local-ipam --version`,
  leases: `local-ipam leases [--data-dir DIR] [--network NAME ...] [--config FILE ...] [--json]

Every lease with its address, container ID, interface, age, and whether it was written before the current boot
(such a lease's network namespace is gone). Without --network or --config: every network under the data dir.
  --data-dir DIR    default ${DEFAULT_DATA_DIR}
  --network NAME    only this network (repeatable)
  --config FILE     the networks of these .conflist/.conf files (their dataDir; repeatable)
  --json            stable JSON for scripts`,
  usage: `local-ipam usage [--config FILE ... | --network NAME ...] [--data-dir DIR] [--warn PERCENT] [--json]

Per range set: total addresses (gateways and excluded addresses left out), used, free, reclaimable (leases from
before the boot, which ADD takes over when a set is full) and cooling (free, but released less than reuseDelay
ago). The ranges come from --config; with --network only the lease count is known.
  --warn PERCENT    print a warning line for every range set used above PERCENT (default 90)`,
  release: `local-ipam release (--ip IP | --container ID [--ifname IF]) --network NAME [--data-dir DIR] [--dry-run]

Frees leases under the same lock the plugin takes, and prints what it removed. A container with leases on several
interfaces needs --ifname. The plugin's index notices the change on its next call.
  --dry-run         print what would be removed, remove nothing`,
  metrics: `local-ipam metrics [--config FILE ... | --network NAME ...] [--data-dir DIR] [--textfile PATH]

Prometheus text exposition: addresses total/used/free/reclaimable per network and range set (with --config),
leases, leases older than the boot, index rebuilds. --textfile writes PATH atomically (for node_exporter's
textfile collector, e.g. /var/lib/node_exporter/textfile/local_ipam.prom); otherwise stdout.`,
};

HELP.gc = `local-ipam gc --config FILE --stale ID[/IFNAME] ... [--min-age DURATION] [--dry-run] [--json]

Releases the leases of the network in FILE (.conf or .conflist) whose owner is one of the --stale attachments
(container ID and interface; a bare ID matches the legacy leases of that ID), through the code CNI GC runs, under
the plugin's lock, in one pass. A lease is released only if it still has that owner and was written at least
--min-age ago (a Go duration, default 0s), so that an attachment being added again right now keeps its address.
For runtimes that never call CNI GC (containerd): the node agent (local-ipam-agent) runs this with the
attachments the CRI runtime no longer lists. Exit status 1 when a lease could not be removed.`;
HELP.blocks = `local-ipam blocks --config FILE [--add SET:CIDR ...] [--remove SET:CIDR ...] [--drop SET:CIDR ...]

Cluster networks (ipam.cluster): the blocks of the pool this node owns, in <dataDir>/.local-ipam/<network>/blocks,
and their use, as JSON. The node agent changes them through this command, under the network's lock: --add after
its etcd claim committed; --remove only a block no lease lies in (others are reported as refused); --drop whatever
it holds (a block etcd says another node owns). Without flags it only reports.`;
HELP.pool = `local-ipam pool [--network NAME] [--socket PATH] [--json]

Cluster networks: every claimed block with the node that owns it, whether that node's agent is alive, how many of
its addresses are leased (as that node last published), and how many blocks are free. Asks the node agent over its
socket (default /run/local-ipam/agent.sock): only the agent holds etcd's credentials.`;
HELP["release-node"] = `local-ipam release-node NODE [--network NAME] [--force] [--socket PATH]

Returns the blocks NODE owns (in every cluster network, or in NAME) to the pool, through the local node agent.
Refused while NODE's agent is alive (its liveness key exists in etcd) unless --force: a forced release of a live
node makes its agent drop those blocks from allocation at once (pods already running there keep their addresses,
which may then be handed out again elsewhere). For nodes that are gone for good.`;
HELP.install = `local-ipam install [--bin-dir DIR] [--conf-dir DIR --pod-cidr CIDR ... [--conflist TEMPLATE]]

Copies this executable into DIR (as --bin-name, default local-ipam) and then writes the conflist (as --conf-name,
default 10-local-ipam.conflist) into the conf dir, each atomically: a temporary file in the same directory, fsynced,
renamed over the target. A runtime running the plugin during an upgrade runs the old or the new binary, never half
of one; a runtime reading the conf dir never sees a conflist before its plugin is installed. Unchanged files are
not rewritten. The conflist comes from TEMPLATE (default: bridge + local-ipam + portmap), where "{{ranges}}" becomes
one range set per --pod-cidr (one per family), "{{routes}}" a default route per family, "{{podCIDRs}}" the list,
and {{podCIDR}}, {{podCIDRv4}}, {{podCIDRv6}} the CIDR text; it must load as the plugin would load it. Without
--bin-dir only the conflist is written (the node agent does so when the Node's pod CIDRs change).`;
HELP.migrate = `local-ipam migrate --conf-dir DIR [--to local-ipam|host-local] [--dry-run]

Switches every CNI config in DIR (.conf, .conflist, .json) whose IPAM type is host-local to local-ipam (or back with
--to host-local), changing only that word of each file, each file replaced atomically, and prints the diff. The
leases stay: both plugins use the same files, lock and dataDir.`;

const common = { values: ["data-dir"], repeatable: ["network", "config"], switches: ["json", "help"] };
const SPECS = {
  leases: common,
  usage: { values: ["data-dir", "warn"], repeatable: ["network", "config"], switches: ["json", "help"] },
  release: { values: ["data-dir", "network", "ip", "container", "ifname"], switches: ["dry-run", "help"] },
  metrics: { values: ["data-dir", "textfile"], repeatable: ["network", "config"], switches: ["help"] },
  install: {
    values: ["bin-dir", "bin-name", "conf-dir", "conf-name", "conflist"],
    repeatable: ["pod-cidr"],
    switches: ["help"],
  },
  migrate: { values: ["conf-dir", "to"], switches: ["dry-run", "help"] },
  gc: { values: ["config", "min-age"], repeatable: ["stale"], switches: ["dry-run", "json", "help"] },
  blocks: { values: ["config"], repeatable: ["add", "remove", "drop"], switches: ["json", "help"] },
  pool: { values: ["network", "socket"], switches: ["json", "help"] },
  "release-node": { values: ["network", "socket"], switches: ["force", "help"] },
} as const;
type Command = keyof typeof SPECS;

function age(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.floor(s / 60)}m`;
  if (s < 172800) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86400)}d`;
}

/** A text table that fits the terminal: columns padded, the widest column (container IDs) cut short. */
function table(header: string[], rows: string[][], shrink: number): string {
  const width = Number(platform().env().COLUMNS) || 100;
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const total = widths.reduce((a, b) => a + b + 2, 0);
  if (total > width) widths[shrink] = Math.max(header[shrink]!.length, 12, widths[shrink]! - (total - width));
  const cut = (s: string, w: number) => (s.length > w ? `${s.slice(0, w - 1)}…` : s);
  return [header, ...rows]
    .map((r) =>
      r
        .map((c, i) => cut(c, widths[i]!).padEnd(widths[i]!))
        .join("  ")
        .trimEnd(),
    )
    .join("\n");
}

/** The networks the flags name (--config, --network, --data-dir), with their leases and usage. */
function networksOf(p: Parsed) {
  return collect(sourcesFor(p.values.get("config") ?? [], p.values.get("network") ?? [], one(p, "data-dir")));
}

function cmdLeases(p: Parsed): number {
  const now = platform().realtimeMs();
  const boot = bootTimeMs();
  const nets = networksOf(p);
  const rows = nets.flatMap(({ usage, leases }) =>
    leases.map((l) => ({
      network: usage.network,
      address: l.name,
      containerId: l.containerId,
      ifname: l.ifname,
      ageSeconds: Math.floor((now - l.mtimeMs) / 1000),
      beforeBoot: boot !== null && l.mtimeMs < boot,
      readable: l.owner !== null,
    })),
  );
  if (p.switches.has("json")) {
    json({ leases: rows });
    return 0;
  }
  if (rows.length === 0) {
    out(nets.length === 0 ? "no networks found" : "no leases");
    return 0;
  }
  const text = rows.map((r) => [
    r.network,
    r.address,
    r.readable ? printable(r.containerId) : "(unreadable)",
    r.ifname ? printable(r.ifname) : "(legacy)",
    age(r.ageSeconds * 1000),
    r.beforeBoot ? "yes" : "",
  ]);
  out(table(["NETWORK", "ADDRESS", "CONTAINER", "IFNAME", "AGE", "BEFORE BOOT"], text, 2));
  return 0;
}

function bar(percent: number, width = 20): string {
  const filled = Math.round((percent / 100) * width);
  return `[${"#".repeat(filled)}${".".repeat(width - filled)}]`;
}

function cmdUsage(p: Parsed): number {
  const warnText = one(p, "warn") ?? "90";
  const warn = Number(warnText);
  if (!/^\d+(\.\d+)?$/.test(warnText) || warn > 100)
    throw new UsageError(`--warn takes a percentage, not "${warnText}"`);
  const nets = networksOf(p).map((n) => n.usage);
  if (p.switches.has("json")) {
    json({
      networks: nets.map((n) => ({
        ...n,
        rangeSets: n.rangeSets?.map((s) => ({ ...s, total: jsonCount(s.total), free: jsonCount(s.free) })) ?? null,
      })),
    });
    return 0;
  }
  if (nets.length === 0) {
    out("no networks found");
    return 0;
  }
  const lines: string[] = [];
  for (const n of nets) {
    if (!n.rangeSets) {
      lines.push(
        `${n.network}: ${n.leases} leases, ${n.leasesBeforeBoot} from before the boot (give --config for totals)`,
      );
      continue;
    }
    for (const s of n.rangeSets) {
      const pct = percentUsed(s);
      if (pct > warn)
        lines.push(`WARNING: ${n.network} range set ${s.index} is ${pct.toFixed(1)}% used (above ${warn}%)`);
    }
    const rows = n.rangeSets.map((s) => [
      n.network,
      String(s.index),
      s.ranges,
      humanCount(s.total),
      humanCount(s.used),
      humanCount(s.free),
      humanCount(s.reclaimable),
      humanCount(s.cooling),
      `${bar(percentUsed(s))} ${percentUsed(s).toFixed(1)}%`,
    ]);
    lines.push(table(["NETWORK", "SET", "RANGES", "TOTAL", "USED", "FREE", "RECLAIMABLE", "COOLING", "USE"], rows, 2));
  }
  out(lines.join("\n"));
  return 0;
}

function cmdRelease(p: Parsed): number {
  const network = one(p, "network");
  const ip = one(p, "ip");
  const container = one(p, "container");
  const ifname = one(p, "ifname");
  if (!network) throw new UsageError("release needs --network");
  checkNetworkName(network);
  if ((ip === undefined) === (container === undefined))
    throw new UsageError("release needs exactly one of --ip and --container");
  if (ifname !== undefined && container === undefined) throw new UsageError("--ifname goes with --container");
  const wanted = ip === undefined ? null : parseIP(ip);
  if (ip !== undefined && !wanted) throw new UsageError(`--ip: ${JSON.stringify(ip)} is not an IP address`);
  const dataDir = one(p, "data-dir") ?? DEFAULT_DATA_DIR;
  const dry = p.switches.has("dry-run");

  const store = NetworkStore.open(dataDir, network, { create: false, lockTimeoutMs: lockTimeoutMs(platform().env()) });
  if (!store) {
    out(`local-ipam: no network "${network}" under ${printable(dataDir)}`);
    return 1;
  }
  try {
    const leases = inspectNetwork(dataDir, network).leases;
    let chosen = leases;
    if (wanted) chosen = leases.filter((l) => l.name === formatIP(wanted));
    else {
      chosen = leases.filter(
        (l) => l.containerId === goTrim(container!) && (ifname === undefined || l.ifname === ifname || l.ifname === ""),
      );
      const ifnames = [...new Set(chosen.map((l) => l.ifname).filter((i) => i !== ""))];
      if (ifname === undefined && ifnames.length > 1) {
        out(
          `local-ipam: container ${printable(container!)} has leases on ${ifnames.map(printable).join(", ")}: name one with --ifname`,
        );
        return 1;
      }
    }
    if (chosen.length === 0) {
      const what = wanted ? `--ip ${ip}` : `--container ${container}${ifname ? ` --ifname ${ifname}` : ""}`;
      out(`local-ipam: no lease in ${network} matches ${printable(what)}`);
      return 1;
    }
    const lines: string[] = [];
    for (const l of chosen) {
      const what = `${l.name} (container ${printable(l.containerId) || "?"}${l.ifname ? `, ${printable(l.ifname)}` : ""})`;
      if (dry) {
        lines.push(`would release ${what}`);
        continue;
      }
      // the file may have changed hands since it was listed: only remove it if it still has that owner
      const err = store.removeLease(l.name, l.owner);
      lines.push(err ? `failed ${l.name}: ${printable(err)}` : `released ${what}`);
    }
    store.commit();
    out(lines.join("\n"));
    return lines.some((l) => l.startsWith("failed")) ? 1 : 0;
  } finally {
    store.close();
  }
}

function cmdMetrics(p: Parsed): number {
  const nets = networksOf(p).map((n) => n.usage);
  const per = (f: (n: NetworkUsage) => number) => nets.map((n) => ({ labels: { network: n.network }, value: f(n) }));
  const families: Family[] = [
    {
      name: "local_ipam_addresses",
      help: "Addresses of a range set by state: total (gateways and exclusions left out), used, free, reclaimable (leases from before the boot), cooling (free but within reuseDelay).",
      type: "gauge",
      samples: nets.flatMap((n) =>
        (n.rangeSets ?? []).flatMap((s) =>
          (["total", "used", "free", "reclaimable", "cooling"] as const).map((state) => ({
            labels: { network: n.network, range_set: String(s.index), ranges: s.ranges, state },
            value: Number(s[state]),
          })),
        ),
      ),
    },
    {
      name: "local_ipam_leases",
      help: "Lease files in the network directory.",
      type: "gauge",
      samples: per((n) => n.leases),
    },
    {
      name: "local_ipam_leases_before_boot",
      help: "Leases last written before the current boot: their network namespaces are gone.",
      type: "gauge",
      samples: per((n) => n.leasesBeforeBoot),
    },
    {
      name: "local_ipam_index_rebuilds_total",
      help: "Times the lease index was rebuilt from the lease files (after another writer changed the directory).",
      type: "counter",
      samples: per((n) => n.indexRebuilds),
    },
  ];
  const text = exposition(families);
  const textfile = one(p, "textfile");
  if (!textfile) {
    out(text);
    return 0;
  }
  writeTextfile(textfile, text);
  return 0;
}

/**
 * The textfile for node_exporter, replaced whole (it never reads half a file): only in a directory that its owner
 * alone can change, through a temporary file with an unpredictable name, never through a symlink at the target.
 */
function writeTextfile(path: string, text: string): void {
  const slash = path.lastIndexOf("/");
  const dirPath = slash < 0 ? "." : slash === 0 ? "/" : path.slice(0, slash);
  const name = path.slice(slash + 1);
  if (name === "" || name === "." || name === "..")
    throw new UsageError(`--textfile: ${JSON.stringify(path)} names no file`);
  const dir = Dir.open(null, dirPath, null, true);
  if (!dir) throw new UsageError(`--textfile: no directory ${dirPath}`);
  try {
    dir.requireSafe();
    replaceFile(dir, name, platform().utf8Encode(text), 0o644, true);
  } finally {
    dir.close();
  }
}

function plainName(flag: string, value: string): string {
  if (value.includes("/") || value === "." || value === "..")
    throw new UsageError(`--${flag}: ${JSON.stringify(value)} must be a file name`);
  return value;
}

function cmdInstall(p: Parsed): number {
  const binDir = one(p, "bin-dir");
  if (!binDir && !one(p, "conf-dir")) throw new UsageError("install needs --bin-dir, --conf-dir or both");
  const templatePath = one(p, "conflist");
  const template = templatePath === undefined ? undefined : readTextAt(null, templatePath, 1 << 20);
  if (template === null) throw new UsageError(`--conflist: cannot read ${templatePath}`);
  const lines = runInstall({
    binDir,
    binName: plainName("bin-name", one(p, "bin-name") ?? "local-ipam"),
    confDir: one(p, "conf-dir"),
    confName: plainName("conf-name", one(p, "conf-name") ?? "10-local-ipam.conflist"),
    template,
    podCidrs: p.values.get("pod-cidr") ?? [],
  });
  out(lines.join("\n"));
  return 0;
}

function cmdMigrate(p: Parsed): number {
  const confDir = one(p, "conf-dir");
  if (!confDir) throw new UsageError("migrate needs --conf-dir");
  const to = one(p, "to") ?? "local-ipam";
  if (to !== "local-ipam" && to !== "host-local")
    throw new UsageError(`--to: "${to}" is neither local-ipam nor host-local`);
  const lines = runMigrate({ confDir, to, dryRun: p.switches.has("dry-run") });
  out(lines.length > 0 ? lines.join("\n") : `nothing to change in ${confDir}`);
  return 0;
}

function cmdGc(p: Parsed): number {
  const file = one(p, "config");
  if (!file) throw new UsageError("gc needs --config");
  const minAgeText = one(p, "min-age") ?? "0s";
  const minAgeMs = parseDuration(minAgeText);
  if (minAgeMs === null || minAgeMs < 0)
    throw new UsageError(`--min-age: ${JSON.stringify(minAgeText)} is not a duration (e.g. 10m)`);
  const stale = new Set<string>();
  for (const a of p.values.get("stale") ?? []) {
    const slash = a.lastIndexOf("/");
    const [id, ifname] = slash < 0 ? [a, null] : [a.slice(0, slash), a.slice(slash + 1)];
    if (goTrim(id) === "" || ifname === "")
      throw new UsageError(`--stale: ${JSON.stringify(a)} is not ID/IFNAME or ID`);
    stale.add(ifname === null ? goTrim(id) : ownerKey(id, ifname));
  }
  const conf = loadConfigFile(file);
  const dry = p.switches.has("dry-run");
  const store = NetworkStore.open(conf.dataDir, conf.name, {
    create: false,
    lockTimeoutMs: lockTimeoutMs(platform().env()),
  });
  const now = platform().realtimeMs();
  let collected: Collected[] = [];
  if (store && stale.size > 0) {
    try {
      const old = (name: string) => {
        const ip = parseIP(name);
        const written = ip && store.leaseWrittenMs(ip);
        return written !== null && written !== undefined && now - written >= minAgeMs;
      };
      const isStale = (owner: string, name: string) => stale.has(owner) && old(name);
      collected = dry
        ? store
            .scan()
            .flatMap(({ name, owner }) =>
              owner !== null && isStale(owner, name) ? [{ name, owner, error: null }] : [],
            )
        : collectLeases(store, isStale);
    } finally {
      store.close();
    }
  }
  const rows = collected.map((c) => {
    const [containerId = "", ifname = ""] = c.owner.split("\r\n");
    return { network: conf.name, address: c.name, containerId, ifname, error: c.error };
  });
  if (p.switches.has("json")) json({ network: conf.name, dryRun: dry, released: rows });
  else
    out(
      rows
        .map((r) => {
          const what = `${r.address} (container ${printable(r.containerId)}${r.ifname ? `, ${printable(r.ifname)}` : ""})`;
          return r.error ? `failed ${what}: ${printable(r.error)}` : `${dry ? "would release" : "released"} ${what}`;
        })
        .join("\n") || `nothing to release in ${conf.name}`,
    );
  return rows.some((r) => r.error) ? 1 : 0;
}

const agentSocket = (p: Parsed) => one(p, "socket") ?? DEFAULT_AGENT_SOCKET;

/** One request to the node agent, for the operator: a usage-style failure when it cannot be asked. */
function agent(p: Parsed, request: Record<string, unknown>): AgentAnswer {
  try {
    return askAgent("-", { agentSocket: agentSocket(p), claimTimeoutMs: 0 }, request, 15_000);
  } catch (e) {
    if (e instanceof CniError)
      throw new AgentDown(
        `the node agent at ${agentSocket(p)} is not answering${e.msg.slice(e.msg.lastIndexOf(" ("))}`,
      );
    throw e;
  }
}

class AgentDown extends Error {}

interface PoolView {
  network: string;
  blocks: { block: string; set: number; node: string; nodeAlive: boolean; used: number | null; claimed: string }[];
  totalBlocks: string;
  freeBlocks: string;
}

function cmdPool(p: Parsed): number {
  const network = one(p, "network");
  const a = agent(p, { op: "pool", ...(network && { network: checkNetworkName(network) }) });
  if (!a.ok) {
    out(`local-ipam: ${a.msg ?? a.reason}`);
    return 1;
  }
  const nets = a.networks as PoolView[];
  if (p.switches.has("json")) {
    json({ networks: nets });
    return 0;
  }
  if (nets.length === 0) {
    out("no cluster networks");
    return 0;
  }
  const rows = nets.flatMap((n) =>
    n.blocks
      .sort((x, y) => x.block.localeCompare(y.block, "en", { numeric: true }))
      .map((b) => [
        n.network,
        b.block,
        printable(b.node),
        b.nodeAlive ? "yes" : "NO",
        b.used === null ? "?" : String(b.used),
        b.claimed,
      ]),
  );
  const summary = nets.map(
    (n) => `${n.network}: ${n.blocks.length} blocks claimed, ${n.freeBlocks} of ${n.totalBlocks} free`,
  );
  out(`${table(["NETWORK", "BLOCK", "NODE", "ALIVE", "USED", "CLAIMED"], rows, 2)}\n${summary.join("\n")}`);
  return 0;
}

function cmdReleaseNode(p: Parsed, node: string | undefined): number {
  if (!node) throw new UsageError("release-node needs the node's name");
  const network = one(p, "network");
  const a = agent(p, {
    op: "release-node",
    node,
    force: p.switches.has("force"),
    ...(network && { network: checkNetworkName(network) }),
  });
  if (!a.ok) {
    out(`local-ipam: ${a.msg ?? a.reason}`);
    return 1;
  }
  const released = a.released as string[];
  out(released.length > 0 ? released.map((b) => `released ${b}`).join("\n") : `node ${printable(node)} owns no block`);
  return 0;
}

/** Runs the CLI; returns the exit status (2 for usage errors). */
export function runCli(args: string[]): number {
  const [command = "", ...rest] = args;
  if (command === "--version" || command === "version") {
    out(`local-ipam ${VERSION} (${BUILD})`);
    return 0;
  }
  if (command === "--help" || command === "-h" || command === "help") {
    out(HELP[""]!);
    return 0;
  }
  if (!(command in SPECS)) {
    writeAll(2, `local-ipam: unknown command "${command}"\n\n${HELP[""]}\n`);
    return 2;
  }
  const cmd = command as Command;
  // release-node names its node first, without a flag
  const node = cmd === "release-node" && rest[0] !== undefined && !rest[0].startsWith("--") ? rest[0] : undefined;
  try {
    const p = parseFlags(node === undefined ? rest : rest.slice(1), SPECS[cmd]);
    if (p.switches.has("help")) {
      out(HELP[cmd]!);
      return 0;
    }
    switch (cmd) {
      case "leases":
        return cmdLeases(p);
      case "usage":
        return cmdUsage(p);
      case "release":
        return cmdRelease(p);
      case "metrics":
        return cmdMetrics(p);
      case "install":
        return cmdInstall(p);
      case "migrate":
        return cmdMigrate(p);
      case "gc":
        return cmdGc(p);
      case "pool":
        return cmdPool(p);
      case "release-node":
        return cmdReleaseNode(p, node);
      case "blocks": {
        const file = one(p, "config");
        if (!file) throw new UsageError("blocks needs --config");
        const v = (k: string) => p.values.get(k) ?? [];
        json(runBlocks(loadConfigFile(file), { add: v("add"), remove: v("remove"), drop: v("drop") }));
        return 0;
      }
    }
  } catch (e) {
    if (e instanceof UsageError) {
      writeAll(2, `local-ipam ${cmd}: ${e.message}\n\n${HELP[cmd]}\n`);
      return 2;
    }
    if (e instanceof CniError) {
      writeAll(2, `local-ipam ${cmd}: ${printable(e.msg)}\n`);
      return 1;
    }
    if (e instanceof AgentDown) {
      writeAll(2, `local-ipam ${cmd}: ${e.message}\n`);
      return 1;
    }
    throw e;
  }
  return 0;
}
