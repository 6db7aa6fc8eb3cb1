// Cluster networks, the plugin's side: allocate only inside the blocks this node owns (read under the network's
// lock, where the agent also changes them), and when they are full ask the node agent, over its unix socket, for
// one more. The plugin never talks to etcd and holds no credentials; DEL and CHECK never need the agent.
import { type Block, blockOf, restrictToBlocks } from "../cluster/blocks.js";
import type { ClusterConfig, IpamConfig } from "../config/ipam.js";
import { type CniError, E, errnoText } from "../errors.js";
import { type Addr, formatIP, inSubnet } from "../net/ip.js";
import { type RangeSet, rangeIndexFor } from "../net/range.js";
import { platform } from "../platform/index.js";
import { SysError } from "../platform/types.js";

/** What the agent answers (one JSON line): done, or why not. */
export interface AgentAnswer {
  ok: boolean;
  /** when not ok: "full" (no free block in the pool), "taken" (the requested address's block is another
   * node's), "unavailable" (etcd cannot be reached or did not answer in time), "unknown" (not a network it serves) */
  reason?: string;
  msg?: string;
  /** what else an answer carries (the operator's views) */
  [more: string]: unknown;
}

/** Each range set of `conf` as this node may allocate from it: inside the owned blocks only. */
export function ownedRangeSets(conf: IpamConfig, blocks: readonly Block[]): RangeSet[] {
  return conf.rangeSets.map((set, i) =>
    restrictToBlocks(
      set,
      blocks.filter((b) => b.set === i).map((b) => b.cidr),
    ),
  );
}

/** Whether `ip` lies in a block of range set `set` this node owns (a block of its range's size). */
export function ownsAddress(conf: IpamConfig, blocks: readonly Block[], set: number, ip: Addr): boolean {
  const range = conf.rangeSets[set]?.[rangeIndexFor(conf.rangeSets[set]!, ip)];
  return blocks.some(
    (b) =>
      b.set === set &&
      b.cidr.prefix === range?.blockSize &&
      b.cidr.ip.v6 === ip.v6 &&
      inSubnet(ip, b.cidr.ip, b.cidr.prefix),
  );
}

/** Why the agent gave no answer, and whether asking again may help (it is starting, or went away mid-answer). */
interface NoAnswer {
  why: string;
  retry: boolean;
}

/** errnos of a socket nobody serves right now: a restarting agent's (gone, or its old socket file still there) */
const NOBODY_THERE = new Set([2, 111, 104, 32]); // ENOENT, ECONNREFUSED, ECONNRESET, EPIPE

function requestOnce(
  cluster: ClusterConfig,
  request: Record<string, unknown>,
  timeoutMs: number,
): AgentAnswer | NoAnswer {
  let text: string;
  try {
    text = platform().unixRequest(cluster.agentSocket, `${JSON.stringify(request)}\n`, Math.max(1, timeoutMs));
  } catch (e) {
    if (e instanceof SysError) return { why: `${e.syscall}: ${errnoText(e.errno)}`, retry: NOBODY_THERE.has(e.errno) };
    throw e;
  }
  if (text === "") return { why: "it closed the connection without an answer", retry: true };
  try {
    const answer = JSON.parse(text) as AgentAnswer;
    if (typeof answer === "object" && answer !== null && typeof answer.ok === "boolean") return answer;
  } catch {
    // below
  }
  return { why: `not an answer: ${JSON.stringify(text.slice(0, 200))}`, retry: false };
}

const isAnswer = (a: AgentAnswer | NoAnswer): a is AgentAnswer => "ok" in a;

/** Between attempts to reach an agent that is not there (yet). */
const RETRY_MS = 200;

/**
 * One request to the node agent; a CniError (code 11) when it cannot be asked or gives no answer. With `retry`,
 * an agent that is not listening (restarting: a DaemonSet rollout, a crash) is asked again until `timeoutMs`.
 */
export function askAgent(
  network: string,
  cluster: ClusterConfig,
  request: Record<string, unknown>,
  timeoutMs: number,
  retry = false,
): AgentAnswer {
  const p = platform();
  const deadline = p.monotonicMs() + timeoutMs;
  for (;;) {
    const left = deadline - p.monotonicMs();
    // a claim tells the agent how long the plugin waits: what is left of it
    const got = requestOnce(
      cluster,
      "timeoutMs" in request ? { ...request, timeoutMs: Math.floor(left) } : request,
      left,
    );
    if (isAnswer(got)) return got;
    if (!retry || !got.retry || deadline - p.monotonicMs() < 2 * RETRY_MS)
      throw E.agentUnreachable(network, cluster.agentSocket, got.why);
    p.sleepMs(RETRY_MS);
  }
}

/**
 * Asks the agent for a block of range set `set` (the one holding `ip` when an address was requested), within
 * `timeoutMs`. Returns when the agent has written it into the blocks file; throws what the ADD reports otherwise:
 * `exhausted` when the pool has no free block, code 11 when the agent or etcd cannot help now.
 */
export function claimBlock(
  conf: IpamConfig,
  set: number,
  ip: Addr | null,
  timeoutMs: number,
  exhausted: CniError,
): void {
  const cluster = conf.cluster!;
  const request: Record<string, unknown> = { op: "claim", network: conf.name, set, timeoutMs: Math.floor(timeoutMs) };
  if (ip) {
    const range = conf.rangeSets[set]![rangeIndexFor(conf.rangeSets[set]!, ip)]!;
    request.ip = formatIP(ip);
    request.block = formatIP(blockOf(range, ip).ip);
  }
  const answer = askAgent(conf.name, cluster, request, timeoutMs, true);
  if (answer.ok) return;
  if (answer.reason === "full" || answer.reason === "taken") throw exhausted;
  throw E.claimFailed(conf.name, answer.msg ?? answer.reason ?? "the agent said no");
}
