// Who owns which block of a cluster network, cluster-wide: the agent's only view of the shared store, in domain
// verbs. etcd implements it (etcd-registry.ts); a Kubernetes-API backend can implement the same verbs. What each
// implementation must guarantee is written on each verb; the agent's invariants (README) rest on nothing else.

/** A block's owner as the store holds it. */
export interface BlockRecord {
  node: string;
  /** the range set the block belongs to */
  set: number;
  /** when it was claimed (ms since the epoch, the claiming node's clock: for people, never compared) */
  claimed: number;
  /** opaque: changes whenever the record changes; `release` compares it */
  version: string;
}

/** A call's own bound; without one, the implementation's default. */
export interface CallBound {
  timeoutMs?: number;
}

/** The store did not do what was asked (unreachable, no leader, timed out, refused): nothing changed, or the
 * verb says how it found out. The agent reports it and tries again later. */
export class RegistryError extends Error {
  override readonly name: string = "RegistryError";
}

/**
 * This node's block grid of a network differs from the cluster's: the same CIDR would not name the same block on
 * every node, so nothing is claimed until the configs agree.
 */
export class GridMismatch extends RegistryError {
  override readonly name = "GridMismatch";
  constructor(
    readonly network: string,
    readonly mine: string,
    readonly cluster: string,
  ) {
    super(
      `the ranges of ${network} here (${mine}) are cut into other blocks than the cluster's (${cluster}): give every node the same subnets and blockSize`,
    );
    // (a grid that is part of the cluster's, or the reverse, is no mismatch: useGrid accepts or extends it)
  }
}

/**
 * A network's block grid as text: every range's "subnet=blockSize", sorted, comma-separated. Two configs with one
 * grid name every block alike (rangeStart, rangeEnd and exclude do not change the grid).
 */
export function gridText(ranges: readonly { subnet: string; blockSize: number }[]): string {
  return [...new Set(ranges.map((r) => `${r.subnet}=${r.blockSize}`))].sort().join(",");
}

/** Whether grid `older` is part of grid `newer` (ranges were added, none changed or removed). */
export function gridExtends(newer: string, older: string): boolean {
  const mine = new Set(newer.split(","));
  return older.split(",").every((e) => mine.has(e));
}

export interface BlockRegistry {
  /** This node's name: the owner `claim` writes, the liveness `heartbeat` keeps. */
  readonly node: string;

  /**
   * Agrees on the network's block grid with the cluster before any claim: records `grid` when the cluster has
   * none, or when it only adds ranges to the cluster's; accepts the cluster's when `grid` is part of it (this node
   * lacks ranges others have); otherwise throws GridMismatch. Every later `claim` holds only while the cluster's
   * grid is still the one agreed (checked in the same atomic step).
   */
  useGrid(network: string, grid: string, bound?: CallBound): Promise<void>;

  /**
   * Makes this node the owner of block `cidr` (of range set `set`) when nobody owns it and the cluster's grid is
   * the one `useGrid` agreed, atomically: of two nodes claiming one block, exactly one gets it. True when this node
   * owns it now (a claim whose answer was lost is read back, never sent twice). GridMismatch when the grid moved.
   */
  claim(network: string, set: number, cidr: string, bound?: CallBound): Promise<boolean>;
  /** The block's owner, if any. */
  owner(network: string, cidr: string, bound?: CallBound): Promise<BlockRecord | undefined>;
  /** Every owned block of the network, by CIDR. */
  blocks(network: string, bound?: CallBound): Promise<Map<string, BlockRecord>>;
  /** The blocks `node` owns, without reading the others'. */
  ownedBy(network: string, node: string, bound?: CallBound): Promise<string[]>;
  /**
   * Frees a block if its record is still `record` (nobody took or changed it meanwhile); true when freed. False
   * may also mean "not yet": a release whose answer was lost can still apply later, so a block given back is
   * never allocated from again before `keep` has changed its record.
   */
  release(network: string, cidr: string, record: BlockRecord, bound?: CallBound): Promise<boolean>;
  /**
   * Makes `record` (this node's) a new version, if it is still that one: a release of the old version sent
   * earlier, whose answer was lost, can then no longer apply. True when done.
   */
  keep(network: string, cidr: string, record: BlockRecord, bound?: CallBound): Promise<boolean>;

  /**
   * Keeps this node alive in the store for its TTL (the agent calls it every third of that, on its own timer).
   * True when its liveness had to be made anew (first call, or it expired): what rode on the old one is gone.
   * Nothing ends it early: a stopped agent's node stays alive for the TTL, so a restart never looks like a death.
   */
  heartbeat(bound?: CallBound): Promise<boolean>;
  /** Whether `node` is alive (its liveness has not expired). */
  alive(node: string, bound?: CallBound): Promise<boolean>;
  /** The nodes alive now. */
  liveNodes(bound?: CallBound): Promise<Set<string>>;
  /** Publishes this node's use of its blocks (CIDR -> leases) for `network`; it lives as long as the liveness. */
  publish(network: string, used: Record<string, number>, bound?: CallBound): Promise<void>;
  /** The use each node published for a network. */
  usage(network: string, bound?: CallBound): Promise<Map<string, Record<string, number>>>;
}
