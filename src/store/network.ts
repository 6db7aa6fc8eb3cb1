// The network directory, byte-compatible with host-local: <dataDir>/<name>/<ip> holding "<id>\r\n<ifname>",
// last_reserved_ip.<N>, and the flock on <dir>/lock. What we add: a lease appears whole or not at all (written
// and fsynced as an anonymous O_TMPFILE file in the network directory before the lock is taken, then given its
// name with linkat, which fails if the name exists exactly as host-local's O_EXCL create does); leases are 0600;
// the directory is fsynced before the result is printed; nothing planted in the directory is followed or opened
// blocking; a failed ADD removes every lease it made; and an index of the leases in our own state directory.
import type { Store } from "../allocator/store.js";
import { type Block, formatBlocksFile, parseBlocksFile } from "../cluster/blocks.js";
import { E, ERRNO } from "../errors.js";
import { faultPoint } from "../faults.js";
import { goTrim } from "../go/strings.js";
import { type Addr, formatIP, parseIP, parseV4Number } from "../net/ip.js";
import { firstAtLeast } from "../net/sorted.js";
import { platform } from "../platform/index.js";
import {
  createExclusive,
  Dir,
  errnoOf,
  ioError,
  isReg,
  randomHex,
  readFileAt,
  readTextAt,
  removeAt,
  removeLeftovers,
  removeQuietly,
  replaceFile,
  TMP_PREFIX,
  writeFd,
} from "./files.js";
import { LeaseIndex, LeaseIndexBuilder } from "./lease-index.js";

/** The blocks file: some 600,000 blocks; a node owning more is refused rather than misread */
const MAX_BLOCKS_FILE = 16 << 20;

import { FileLock } from "./lock.js";
import {
  BLOCKS,
  encodeMap,
  INDEX,
  JOURNAL,
  REBUILDS,
  RELEASED,
  readCounter,
  readReleaseTimes,
  readStaticLeases,
  STATE_DIR,
  STATIC,
} from "./state.js";

const LEASE_MODE = 0o600;
/** A container ID comes from the environment, at most 128 KiB on Linux: a lease is never longer than this. */
export const MAX_LEASE_BYTES = 256 << 10;
const MAX_INDEX_BYTES = 256 << 20;
/** Journal lines before the index is written whole again. */
const COMPACT_AFTER = 128;

/** The owner text host-local writes: trimmed container ID, CRLF, interface name. */
export function ownerKey(id: string, ifname: string): string {
  return `${goTrim(id)}\r\n${ifname}`;
}

/** The address a lease file is named by, or null: names are Go's canonical form ("010.0.0.1" is no lease). */
export function leaseAddr(name: string): Addr | null {
  if (name.length > 39 || name.length < 7) return null;
  if (!name.includes(":")) {
    const n = parseV4Number(name); // Go's rules admit one spelling of an IPv4 address: no need to print it back
    return n < 0 ? null : { v6: false, n: BigInt(n) };
  }
  const ip = parseIP(name);
  return ip && formatIP(ip) === name ? ip : null;
}

interface ScannedLease {
  name: string;
  ip: Addr;
  /** The trimmed owner text, or null when the lease is not a readable regular file. */
  owner: string | null;
}

/**
 * The lease content of an ADD, written and fsynced once, then linked to as many addresses as the ADD reserves: a
 * lease appears whole or not at all, and the link fails if the name exists, exactly as host-local's O_EXCL create.
 * Where the file system has O_TMPFILE, it is written before the lock is taken, as a file without a name in the
 * network directory: nobody can open, swap or see it, and a process killed before linking leaves nothing behind.
 * Elsewhere it is a named temporary file in the network directory, made under the lock (so that one left by a
 * killed writer is provably stale for the next lock holder) and removed when the ADD ends.
 */
class PreparedLease {
  private linkByFd = true;
  private constructor(
    private fd: number,
    private readonly dir: Dir,
    /** null for an O_TMPFILE file */
    private readonly tmpName: string | null,
  ) {}

  /** Before the lock: an anonymous file, or null where the platform or file system has no O_TMPFILE. */
  static anonymous(dir: Dir, bytes: Uint8Array): PreparedLease | null {
    const p = platform();
    if (p.c.O_TMPFILE === 0) return null;
    let fd: number;
    try {
      fd = p.openat(dir.fd, ".", p.c.O_TMPFILE | p.c.O_WRONLY | p.c.O_CLOEXEC, LEASE_MODE);
    } catch (e) {
      const errno = errnoOf(e);
      if (errno === ERRNO.EOPNOTSUPP || errno === ERRNO.EISDIR || errno === ERRNO.EINVAL) return null;
      throw ioError(e, dir.path);
    }
    try {
      p.fchmod(fd, LEASE_MODE);
      writeFd(fd, bytes);
      p.fsync(fd);
    } catch (e) {
      p.close(fd);
      throw ioError(e, dir.path);
    }
    return new PreparedLease(fd, dir, null);
  }

  /** Under the lock: a named temporary file, whole and fsynced. */
  static named(dir: Dir, bytes: Uint8Array): PreparedLease {
    const name = TMP_PREFIX + randomHex(12);
    createExclusive(dir, name, bytes, LEASE_MODE, true);
    return new PreparedLease(-1, dir, name);
  }

  /** Names the file `name`: true when linked, false when the name is taken, null when linking is impossible here. */
  linkTo(name: string): boolean | null {
    const p = platform();
    const attempts: (() => void)[] = [];
    if (this.tmpName !== null) attempts.push(() => p.linkat(this.dir.fd, this.tmpName!, this.dir.fd, name, 0));
    else {
      // AT_EMPTY_PATH needs CAP_DAC_READ_SEARCH; without it, the /proc link of the descriptor does the same
      if (this.linkByFd) attempts.push(() => p.linkat(this.fd, "", this.dir.fd, name, p.c.AT_EMPTY_PATH));
      attempts.push(() => p.linkat(p.c.AT_FDCWD, `/proc/self/fd/${this.fd}`, this.dir.fd, name, p.c.AT_SYMLINK_FOLLOW));
    }
    for (const [k, attempt] of attempts.entries()) {
      try {
        attempt();
        return true;
      } catch (e) {
        const errno = errnoOf(e);
        if (errno === ERRNO.EEXIST) return false;
        if (errno !== ERRNO.ENOENT && errno !== ERRNO.EPERM && errno !== ERRNO.EOPNOTSUPP && errno !== ERRNO.EINVAL)
          throw ioError(e, this.dir.child(name));
        if (k === 0 && this.tmpName === null) this.linkByFd = false;
      }
    }
    return null;
  }

  close(): void {
    if (this.tmpName !== null) removeQuietly(this.dir, this.tmpName);
    if (this.fd >= 0) platform().close(this.fd);
    this.fd = -1;
  }
}

export interface StoreOptions {
  lockTimeoutMs: number;
  /** Create the data and network directories (ADD) instead of returning null when they are missing. */
  create: boolean;
  /** ADD: whose lease this invocation writes; its content is prepared before the lock is taken. */
  leaseFor?: { id: string; ifname: string };
  /** How long release times matter (the config's reuseDelay); 0: they are neither kept nor read. */
  reuseDelayMs?: number;
}

export class NetworkStore implements Store {
  private lock: FileLock | null = null;
  private prepared: PreparedLease | null = null;
  private stateDir: Dir | null = null;
  private idx: LeaseIndex | null = null;
  private baseId: string | null = null;
  private journalClean = true;
  private rebuilt = false;
  /** The network directory changed in this invocation: fsync and stamp it before answering. */
  private changed = false;
  private readonly contents = new Map<string, string | null>();
  /** Leases this invocation created or took over: what a failed ADD removes again. */
  private made: Addr[] = [];
  private released: Map<string, number> | null = null;
  private releasedDirty = false;
  private statics: Map<string, string> | null = null;
  private staticsDirty = false;
  /** How many times this invocation rebuilt the index from the lease files. */
  rebuilds = 0;
  private readonly reuseDelayMs: number;

  private constructor(
    private readonly data: Dir,
    readonly net: Dir,
    readonly network: string,
    opts: StoreOptions,
  ) {
    this.reuseDelayMs = opts.reuseDelayMs ?? 0;
  }

  /**
   * Opens <dataDir>/<network> (creating it, 0755, when `create`) and takes its lock. Null when the network does
   * not exist and `create` is false. A network directory that is a symlink is refused.
   */
  static open(dataDir: string, network: string, opts: StoreOptions): NetworkStore | null {
    const data = opts.create ? Dir.openPath(dataDir, 0o755) : Dir.open(null, dataDir, null, true);
    if (!data) return null;
    let net: Dir | null;
    try {
      net = Dir.open(data, network, opts.create ? { mode: 0o755 } : null);
    } catch (e) {
      data.close();
      throw e;
    }
    if (!net) {
      data.close();
      return null;
    }
    const store = new NetworkStore(data, net, network, opts);
    try {
      if (opts.leaseFor)
        store.prepared = PreparedLease.anonymous(net, store.ownerBytes(opts.leaseFor.id, opts.leaseFor.ifname));
      faultPoint("after-prepare");
      store.lock = FileLock.acquire(net, opts.lockTimeoutMs);
      faultPoint("after-lock");
    } catch (e) {
      store.close();
      throw e;
    }
    return store;
  }

  private ownerBytes(id: string, ifname: string): Uint8Array {
    return platform().utf8Encode(ownerKey(id, ifname));
  }

  /** Our state directory for this network, checked to be ours alone; temporary files of killed writers go. */
  private state(): Dir {
    if (this.stateDir) return this.stateDir;
    const top = Dir.open(this.data, STATE_DIR, { mode: 0o700 })!;
    try {
      top.requireSafe();
      const dir = Dir.open(top, this.network, { mode: 0o700 })!;
      try {
        dir.requireSafe();
        removeLeftovers(dir, dir.names()); // we hold the lock: any temporary file here is a dead writer's
      } catch (e) {
        dir.close();
        throw e;
      }
      this.stateDir = dir;
      return dir;
    } finally {
      top.close();
    }
  }

  /** How the index names the state of the network directory it describes. */
  private dirStamp(): string {
    const st = this.net.stat();
    return `${st.dev}:${st.ino}:${st.mtimeSec}.${st.mtimeNsec}`;
  }

  private index(): LeaseIndex {
    if (this.idx) return this.idx;
    const p = platform();
    const hashBytes = (b: Uint8Array) => p.hash32(b, 0, b.length);
    const hashText = (s: string) => hashBytes(p.utf8Encode(s));
    const st = this.state();
    const base = readFileAt(st, INDEX, MAX_INDEX_BYTES);
    const decoded = base && LeaseIndex.decodeBase(base.bytes, hashBytes);
    if (decoded) {
      const journal = readTextAt(st, JOURNAL, MAX_INDEX_BYTES);
      const replay = journal ? decoded.index.replay(journal, decoded.id, hashText) : { stamp: null, clean: true };
      if ((replay.stamp ?? decoded.stamp) === this.dirStamp()) {
        this.idx = decoded.index;
        this.baseId = decoded.id;
        this.journalClean = replay.clean;
        return this.idx;
      }
    }
    return this.rebuild();
  }

  /**
   * Rebuilds the index from the lease files: after another writer changed the directory, or a damaged index. The
   * leases go straight into the new index, without an object each (60,000 of them on a big node).
   */
  private rebuild(): LeaseIndex {
    const names = this.net.names();
    if (removeLeftovers(this.net, names) > 0) this.changed = true;
    const builder = new LeaseIndexBuilder();
    for (let i = 0; i < names.length; i++) {
      const ip = leaseAddr(names[i]!);
      if (!ip) continue;
      const content = this.readLease(names[i]!, false);
      builder.add(ip, content === null ? null : goTrim(content));
    }
    this.idx = builder.build();
    this.baseId = null;
    this.rebuilt = true;
    this.rebuilds++;
    this.contents.clear();
    return this.idx;
  }

  /** Every lease file with its owner, read from disk. Temporary files of killed writers are removed on the way. */
  scan(): ScannedLease[] {
    const names = this.net.names().sort();
    if (removeLeftovers(this.net, names) > 0) this.changed = true;
    const out: ScannedLease[] = [];
    for (const name of names) {
      const ip = leaseAddr(name);
      if (!ip) continue;
      const content = this.readLease(name);
      out.push({ name, ip, owner: content === null ? null : goTrim(content) });
    }
    return out;
  }

  /** The raw content of the lease `name`, or null when it is not a readable regular file. */
  readLease(name: string, remember = true): string | null {
    if (this.contents.has(name)) return this.contents.get(name)!;
    const r = readFileAt(this.net, name, MAX_LEASE_BYTES, true);
    const text = r ? platform().utf8Decode(r.bytes, 0, r.bytes.length) : null;
    if (remember) this.contents.set(name, text);
    return text;
  }

  /** Lease names whose trimmed owner is exactly `key`, in lexical order; verified against the files. */
  private owned(key: string): string[] {
    for (let attempt = 0; ; attempt++) {
      const found: string[] = [];
      let stale = false;
      for (const ip of this.index().candidatesFor(key)) {
        const name = formatIP(ip);
        const content = this.readLease(name);
        if (content !== null && goTrim(content) === key) found.push(name);
        else stale = true; // a hash collision, or an index that missed a change
      }
      if (!stale || attempt > 0) return found.sort();
      this.rebuild();
    }
  }

  // --- the read side (LeaseFacts) ---

  nextUnused(from: Addr, to: Addr): bigint | null {
    return this.index().nextUnused(from, to);
  }

  countLeased(from: Addr, to: Addr): number {
    return this.index().countIn(from, to);
  }

  forEachLeased(from: Addr, to: Addr, fn: (n: bigint) => void): void {
    this.index().forEachIn(from, to, fn);
  }

  leaseWrittenMs(ip: Addr): number | null {
    const p = platform();
    try {
      const st = p.fstatat(this.net.fd, formatIP(ip), p.c.AT_SYMLINK_NOFOLLOW);
      return isReg(st) ? st.mtimeSec * 1000 + st.mtimeNsec / 1e6 : null;
    } catch {
      return null;
    }
  }

  isStatic(ip: Addr): boolean {
    const name = formatIP(ip);
    const owner = this.staticLeases().get(name);
    const content = owner === undefined ? null : this.readLease(name);
    return content !== null && goTrim(content) === owner;
  }

  releasedAt(ip: Addr): number | undefined {
    return this.releaseTimes().get(formatIP(ip));
  }

  /** How many addresses in [from, to] were released less than reuseDelay ago (0 without a reuseDelay). */
  coolingBetween(from: Addr, to: Addr): number {
    if (this.reuseDelayMs <= 0) return 0;
    if (!this.coolingSorted) {
      // sorted once per store: a report asks this for every owned block
      const now = platform().realtimeMs();
      const sorted: { v4: bigint[]; v6: bigint[] } = { v4: [], v6: [] };
      for (const [name, at] of this.releaseTimes()) {
        const ip = parseIP(name);
        if (ip && now - at < this.reuseDelayMs) sorted[ip.v6 ? "v6" : "v4"].push(ip.n);
      }
      for (const xs of [sorted.v4, sorted.v6]) xs.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
      this.coolingSorted = sorted;
    }
    const xs = this.coolingSorted[from.v6 ? "v6" : "v4"];
    return firstAtLeast(xs, to.n + 1n) - firstAtLeast(xs, from.n);
  }

  private coolingSorted: { v4: bigint[]; v6: bigint[] } | null = null;

  // --- the Store verbs ---

  getByID(id: string, ifname: string): Addr[] {
    const names = new Set([...this.owned(ownerKey(id, ifname)), ...this.owned(goTrim(id))]);
    return [...names].sort().map((n) => leaseAddr(n)!);
  }

  lastReservedIP(rangeId: number): Addr | null {
    const text = readTextAt(this.net, `last_reserved_ip.${rangeId}`, 256);
    return text === null ? null : parseIP(text); // host-local parses it untrimmed
  }

  reserve(id: string, ifname: string, ip: Addr, rangeId: number, requested: boolean): boolean {
    const name = formatIP(ip);
    if (!this.linkLease(name, id, ifname)) return false;
    const key = ownerKey(id, ifname);
    this.recordLease(ip, name, key, rangeId, requested ? key : null, "after-link");
    return true;
  }

  /**
   * A lease file for `ip` now exists (linked or taken over): everything else that must follow it, in this order
   * (the fault point after the first step, where a rollback must find the lease listed as made).
   */
  private recordLease(
    ip: Addr,
    name: string,
    key: string,
    rangeId: number,
    staticKey: string | null,
    fault: "after-link" | "after-takeover",
  ): void {
    this.made.push(ip);
    this.changed = true;
    faultPoint(fault);
    this.contents.set(name, key);
    this.index().add(ip, key);
    this.forgetRelease(name);
    this.markStatic(name, staticKey);
    this.setLastReserved(rangeId, name);
  }

  private linkLease(name: string, id: string, ifname: string): boolean {
    for (;;) {
      this.prepared ??= PreparedLease.named(this.net, this.ownerBytes(id, ifname));
      const linked = this.prepared.linkTo(name);
      if (linked !== null) return linked;
      // an anonymous file that cannot be linked here: write a named one instead (a named one always links)
      this.prepared.close();
      this.prepared = PreparedLease.named(this.net, this.ownerBytes(id, ifname));
    }
  }

  takeOver(ip: Addr, id: string, ifname: string, rangeId: number): string {
    const name = formatIP(ip);
    const previous = goTrim(this.readLease(name) ?? "");
    const key = ownerKey(id, ifname);
    replaceFile(this.net, name, this.ownerBytes(id, ifname), LEASE_MODE, true);
    this.recordLease(ip, name, key, rangeId, null, "after-takeover");
    return previous;
  }

  private setLastReserved(rangeId: number, name: string): void {
    replaceFile(this.net, `last_reserved_ip.${rangeId}`, platform().utf8Encode(name), LEASE_MODE, false);
    faultPoint("after-last-reserved");
  }

  releaseByID(id: string, ifname: string): void {
    let names = this.owned(ownerKey(id, ifname));
    if (names.length === 0) names = this.owned(goTrim(id));
    for (const name of names) this.removeLease(name); // host-local swallows release errors, to release all it can
  }

  /** Removes the lease `name` if it is still held by `owner` (any owner when undefined); why not, or null. */
  removeLease(name: string, owner?: string | null): string | null {
    const ip = leaseAddr(name);
    if (!ip) return `${name} is not a lease`;
    if (owner !== undefined) {
      const now = this.readLease(name);
      if ((now === null ? null : goTrim(now)) !== owner) return `${name}: its owner changed meanwhile`;
    }
    try {
      removeAt(this.net, name);
    } catch (e) {
      return (e as { msg?: string }).msg ?? String(e);
    }
    this.changed = true;
    faultPoint("after-remove");
    this.contents.delete(name);
    this.index().remove(ip);
    if (this.reuseDelayMs > 0) {
      this.releaseTimes().set(name, platform().realtimeMs());
      this.coolingSorted = null;
      this.releasedDirty = true;
    }
    this.markStatic(name, null);
    return null;
  }

  // --- our own state: release times and static leases ---

  private releaseTimes(): Map<string, number> {
    this.released ??= this.reuseDelayMs > 0 ? readReleaseTimes(this.state()) : new Map();
    return this.released;
  }

  private forgetRelease(name: string): void {
    if (this.reuseDelayMs <= 0) return; // without a delay release times are neither kept nor read
    if (this.releaseTimes().delete(name)) {
      this.releasedDirty = true;
      this.coolingSorted = null;
    }
  }

  private staticLeases(): Map<string, string> {
    this.statics ??= readStaticLeases(this.state());
    return this.statics;
  }

  /** Records (owner) or forgets (null) that the lease `name` was made for a requested address. */
  private markStatic(name: string, owner: string | null): void {
    if (owner === null && this.statics === null) {
      // most networks never see a requested address: do not read a file that does not exist on every ADD
      const p = platform();
      try {
        p.fstatat(this.state().fd, STATIC, p.c.AT_SYMLINK_NOFOLLOW);
      } catch {
        return;
      }
    }
    const map = this.staticLeases();
    if (owner === null) {
      if (map.delete(name)) this.staticsDirty = true;
    } else if (map.get(name) !== owner) {
      map.set(name, owner);
      this.staticsDirty = true;
    }
  }

  // --- the end of an invocation ---

  /** Someone (a STATUS probe) changed the directory under our lock without changing a lease. */
  touched(): void {
    this.index();
    this.changed = true;
  }

  /** A failed ADD: removes every lease this invocation made, whatever step failed. */
  rollback(): void {
    if (this.made.length > 0) this.changed = true;
    for (const ip of this.made) {
      const name = formatIP(ip);
      removeQuietly(this.net, name);
      this.contents.delete(name);
      this.index().remove(ip);
      if (this.statics?.delete(name)) this.staticsDirty = true;
    }
    this.made = [];
  }

  /**
   * Makes every change durable (directory fsync) before a result is printed, then brings our state up to date.
   * Our changes end with the directory's mtime set to a moment two seconds ago, recorded in the index: any later
   * create or unlink by someone else (host-local, a person) stamps the current time, which cannot be that value,
   * so the index is never taken for current after a foreign change, however coarse the kernel's clock tick.
   */
  commit(): void {
    this.prepared?.close();
    this.prepared = null;
    faultPoint("before-sync");
    if (this.changed) this.net.sync();
    faultPoint("after-sync");
    this.writeOwnState();
    this.writeIndex();
    faultPoint("after-index");
    this.changed = false;
    this.made = [];
  }

  private writeOwnState(): void {
    try {
      if (this.releasedDirty) {
        const now = platform().realtimeMs();
        const kept = new Map([...this.releaseTimes()].filter(([, at]) => now - at < this.reuseDelayMs));
        replaceFile(this.state(), RELEASED, encodeMap(kept), LEASE_MODE, false);
      }
      if (this.staticsDirty) replaceFile(this.state(), STATIC, encodeMap(this.staticLeases()), LEASE_MODE, true);
    } catch {
      /* release times are a preference, not a promise; a lost static mark only allows a takeover after a reboot */
    }
    this.releasedDirty = this.staticsDirty = false;
  }

  private writeIndex(): void {
    const idx = this.idx;
    if (!idx || (!idx.hasPending && !this.rebuilt && !this.changed)) return;
    const p = platform();
    let state: Dir | null = null;
    try {
      state = this.state();
      const when = p.realtimeMs() / 1000 - 2 - Math.random() / 2;
      const sec = Math.floor(when);
      p.futimens(this.net.fd, sec, Math.floor((when - sec) * 1e9), sec, Math.floor((when - sec) * 1e9));
      const stamp = this.dirStamp();
      const hashText = (s: string) => {
        const b = p.utf8Encode(s);
        return p.hash32(b, 0, b.length);
      };
      const line = this.baseId === null || !this.journalClean ? null : idx.journalLine(this.baseId, stamp, hashText);
      if (line !== null && idx.journalLines + 1 < COMPACT_AFTER) {
        appendLine(state, JOURNAL, p.utf8Encode(line));
        idx.journalLines++;
      } else {
        const id = randomHex(8);
        const pieces = idx.compacted().encodeBase(
          id,
          stamp,
          (b) => p.hash32(b, 0, b.length),
          (s) => p.utf8Encode(s),
        );
        replaceFile(state, INDEX, pieces, LEASE_MODE, false);
        removeQuietly(state, JOURNAL);
        this.baseId = id;
        this.journalClean = true;
        idx.journalLines = 0;
      }
      idx.clearPending();
      if (this.rebuilds > 0) {
        replaceFile(
          state,
          REBUILDS,
          p.utf8Encode(String(readCounter(state, REBUILDS) + this.rebuilds)),
          LEASE_MODE,
          false,
        );
        this.rebuilds = 0;
      }
    } catch {
      // the index is only a cache: without it the next invocation scans the lease files, as host-local does
      if (state) removeQuietly(state, INDEX);
    }
    this.rebuilt = false;
  }

  /** Cluster networks: the blocks this node owns, as the agent last wrote them (none when there is no file). */
  readBlocks(): Block[] {
    const state = this.state();
    const r = readFileAt(state, BLOCKS, MAX_BLOCKS_FILE);
    if (!r) return [];
    // a cut-off list would lose owned blocks when rewritten, and its last line could name a larger block
    if (r.stat.size > MAX_BLOCKS_FILE) throw E.io({ syscall: "read", path: state.child(BLOCKS), errno: ERRNO.EFBIG });
    return parseBlocksFile(platform().utf8Decode(r.bytes, 0, r.bytes.length));
  }

  /** Replaces the blocks file, durably, under the lock (only `local-ipam blocks` writes it, for the agent). */
  writeBlocks(blocks: readonly Block[]): void {
    const state = this.state();
    replaceFile(state, BLOCKS, platform().utf8Encode(formatBlocksFile(blocks)), LEASE_MODE, true);
    state.sync();
  }

  close(): void {
    this.prepared?.close();
    this.prepared = null;
    this.lock?.release();
    this.lock = null;
    this.stateDir?.close();
    this.stateDir = null;
    this.net.close();
    this.data.close();
  }
}

function appendLine(dir: Dir, name: string, bytes: Uint8Array): void {
  const p = platform();
  const fd = p.openat(
    dir.fd,
    name,
    p.c.O_WRONLY | p.c.O_APPEND | p.c.O_CREAT | p.c.O_NOFOLLOW | p.c.O_CLOEXEC,
    LEASE_MODE,
  );
  try {
    writeFd(fd, bytes);
  } finally {
    p.close(fd);
  }
}
