// The one catalogue of every error local-ipam reports, and of the notes it prints on stderr. Each error entry is a
// factory that returns the error, with its CNI code and its message template; a throw site names an entry and
// passes values, it never writes a message of its own. Messages that host-local also prints are kept word for
// word, so that what operators search for still finds answers. This module imports nothing: everything imports it.

export const Code = {
  IncompatibleVersion: 1,
  UnsupportedField: 2,
  UnknownContainer: 3,
  InvalidEnv: 4,
  IOFailure: 5,
  DecodingFailure: 6,
  InvalidNetworkConfig: 7,
  TryAgainLater: 11,
  NotAvailable: 50,
  LimitedConnectivity: 51,
  Internal: 999,
} as const;

export class CniError extends Error {
  constructor(
    readonly code: number,
    readonly msg: string,
    readonly details: string = "",
  ) {
    super(msg);
  }

  toJSON(): { code: number; msg: string; details?: string } {
    return this.details
      ? { code: this.code, msg: this.msg, details: this.details }
      : { code: this.code, msg: this.msg };
  }
}

const q = (s: string): string => JSON.stringify(s); // Go's %q for the strings we quote
const make = (code: number, msg: string, details = ""): CniError => new CniError(code, msg, details);
const internal = (msg: string): CniError => make(Code.Internal, msg);

/**
 * What Go prints for an errno (syscall.Errno.Error(), Linux; the numbers are the same on x86-64 and arm64), so
 * that an I/O failure reads as host-local's would: "open /x: no such file or directory".
 */
/** Go's texts, indexed by errno, "|"-separated: one string to read at start-up, split only when an error is printed. */
const ERRNO_TEXTS =
  "|operation not permitted|no such file or directory|no such process|interrupted system call|" +
  "input/output error|no such device or address|argument list too long|exec format error|" +
  "bad file descriptor|no child processes|resource temporarily unavailable|cannot allocate memory|" +
  "permission denied|bad address|block device required|device or resource busy|file exists|" +
  "invalid cross-device link|no such device|not a directory|is a directory|invalid argument|" +
  "too many open files in system|too many open files|inappropriate ioctl for device|text file busy|" +
  "file too large|no space left on device|illegal seek|read-only file system|too many links|" +
  "broken pipe|numerical argument out of domain|numerical result out of range|" +
  "resource deadlock avoided|file name too long|no locks available|function not implemented|" +
  "directory not empty|too many levels of symbolic links||no message of desired type|" +
  "identifier removed|channel number out of range|level 2 not synchronized|level 3 halted|" +
  "level 3 reset|link number out of range|protocol driver not attached|no CSI structure available|" +
  "level 2 halted|invalid exchange|invalid request descriptor|exchange full|no anode|" +
  "invalid request code|invalid slot||bad font file format|device not a stream|no data available|" +
  "timer expired|out of streams resources|machine is not on the network|package not installed|" +
  "object is remote|link has been severed|advertise error|srmount error|communication error on send|" +
  "protocol error|multihop attempted|RFS specific error|bad message|" +
  "value too large for defined data type|name not unique on network|file descriptor in bad state|" +
  "remote address changed|can not access a needed shared library|accessing a corrupted shared library|" +
  ".lib section in a.out corrupted|attempting to link in too many shared libraries|" +
  "cannot exec a shared library directly|invalid or incomplete multibyte or wide character|" +
  "interrupted system call should be restarted|streams pipe error|too many users|" +
  "socket operation on non-socket|destination address required|message too long|" +
  "protocol wrong type for socket|protocol not available|protocol not supported|" +
  "socket type not supported|operation not supported|protocol family not supported|" +
  "address family not supported by protocol|address already in use|cannot assign requested address|" +
  "network is down|network is unreachable|network dropped connection on reset|" +
  "software caused connection abort|connection reset by peer|no buffer space available|" +
  "transport endpoint is already connected|transport endpoint is not connected|" +
  "cannot send after transport endpoint shutdown|too many references: cannot splice|" +
  "connection timed out|connection refused|host is down|no route to host|operation already in progress|" +
  "operation now in progress|stale NFS file handle|structure needs cleaning|" +
  "not a XENIX named type file|no XENIX semaphores available|is a named type file|remote I/O error|" +
  "disk quota exceeded|no medium found|wrong medium type|operation canceled|required key not available|" +
  "key has expired|key has been revoked|key was rejected by service|owner died|state not recoverable|" +
  "operation not possible due to RF-kill";
let errnoTexts: string[] | undefined;
/** zerrors_linux_arm64.go differs from amd64's in these two. */
const ERRNO_TEXT_ARM64: Record<number, string> = { 116: "stale file handle", 133: "memory page has hardware error" };

export const ERRNO = {
  EPERM: 1,
  ENOENT: 2,
  EINTR: 4,
  EIO: 5,
  EAGAIN: 11,
  EACCES: 13,
  EBUSY: 16,
  EEXIST: 17,
  EXDEV: 18,
  ENOTDIR: 20,
  EISDIR: 21,
  EINVAL: 22,
  EMFILE: 24,
  EFBIG: 27,
  ENOSPC: 28,
  EROFS: 30,
  EMLINK: 31,
  EPIPE: 32,
  ENAMETOOLONG: 36,
  ELOOP: 40,
  EOPNOTSUPP: 95,
  ETIMEDOUT: 110,
  EDQUOT: 122,
} as const;

let arm64 = false;
/** The entry point says which table Go would print from (the errno numbers are the same on both). */
export function setErrnoArch(arch: string): void {
  arm64 = arch === "arm64" || arch === "aarch64";
}

/** Go's text for an errno: "no such file or directory", or "errno N" for one it does not name. */
export function errnoText(errno: number): string {
  errnoTexts ??= ERRNO_TEXTS.split("|");
  return (arm64 ? ERRNO_TEXT_ARM64[errno] : undefined) || errnoTexts[errno] || `errno ${errno}`;
}

/** A failed system call as the platform reports it (platform/types.ts SysError has this shape). */
interface SysFailure {
  errno: number;
  syscall: string;
  path: string;
}

export const E = {
  // --- protocol and environment (CNI's skel) ---
  missingEnv: (names: string[]) => make(Code.InvalidEnv, `required env variables [${names.join(",")}] missing`),
  unknownCommand: (cmd: string) => make(Code.InvalidEnv, `unknown CNI_COMMAND: ${cmd}`),
  missingContainerId: () => make(Code.UnknownContainer, "missing containerID"),
  badContainerId: (id: string) => make(Code.InvalidEnv, "invalid characters in containerID", id),
  emptyIfname: () => make(Code.InvalidEnv, "interface name is empty"),
  longIfname: () =>
    make(Code.InvalidEnv, "interface name is too long", "interface name should be less than 16 characters"),
  dotIfname: () => make(Code.InvalidEnv, "interface name is . or .."),
  badCharIfname: () => make(Code.InvalidEnv, "interface name contains / or : or whitespace characters"),
  stdinRead: (err: string) => make(Code.IOFailure, `error reading from stdin: ${err}`),
  stdinTooLarge: (limit: number) =>
    make(Code.DecodingFailure, `error reading from stdin: network config larger than ${limit} bytes`),
  badConfigJson: (err: string) => make(Code.DecodingFailure, `error unmarshall network config: ${err}`),
  badVersionJson: (err: string) => make(Code.DecodingFailure, `decoding version from network config: ${err}`),
  missingNetworkName: () => make(Code.InvalidNetworkConfig, "missing network name"),
  badNetworkName: (name: string) => make(Code.InvalidNetworkConfig, "invalid characters found in network name", name),
  incompatibleVersion: (config: string, supported: readonly string[]) =>
    make(
      Code.IncompatibleVersion,
      "incompatible CNI versions",
      `config is ${q(config)}, plugin supports [${supported.map(q).join(" ")}]`,
    ),
  checkNotAllowed: () => make(Code.IncompatibleVersion, "config version does not allow CHECK"),
  commandNeedsVersion: (cmd: string, version: string) =>
    make(
      Code.IncompatibleVersion,
      `config version does not allow ${cmd}`,
      `${cmd} needs cniVersion ${version} or later`,
    ),
  badAttachments: (key: string, why: string) => make(Code.InvalidNetworkConfig, `invalid ${key}: ${why}`),
  gcFailed: (errs: string[]) =>
    make(Code.IOFailure, `GC could not remove ${errs.length} lease${errs.length === 1 ? "" : "s"}`, errs.join("; ")),
  statusExhausted: (sets: { index: number; set: string }[], reclaimAfterReboot: boolean) =>
    make(
      Code.NotAvailable,
      sets.map((s) => `no IP addresses available in range set ${s.index}: ${s.set}`).join("; "),
      reclaimAfterReboot
        ? "every address is leased and none was written before the last boot"
        : "every address is leased (reclaimAfterReboot is off: leases from before the last boot are kept)",
    ),
  statusUnusable: (why: string) => make(Code.NotAvailable, `plugin not available: ${why}`),

  // --- configuration (host-local's allocator/config.go and range.go wording) ---
  goJson: (msg: string) => internal(msg),
  ipamMissing: () => internal("IPAM config missing 'ipam' key"),
  argsInvalidPair: (pair: string) => internal(`ARGS: invalid pair ${q(pair)}`),
  argsUnknown: (pairs: string[]) => internal(`ARGS: unknown args [${pairs.map(q).join(" ")}]`),
  argsBadValue: (pair: string, inner: CniError) =>
    internal(`ARGS: error parsing value of pair ${q(pair)}: ${inner.msg}`),
  argsNotUnmarshalable: (key: string, type: string) =>
    internal(`ARGS: cannot unmarshal into field '${key}' - type '${type}' does not implement encoding.TextUnmarshaler`),
  badBool: (s: string) => internal(`boolean unmarshal error: invalid input ${s}`),
  badIpText: (s: string) => internal(`invalid IP address ${s}`),
  cannotUnderstandIp: (inner: CniError) => internal(`cannot understand ip: ${inner.msg}`),
  noRanges: () => internal("no IP ranges specified"),
  invalidRangeSet: (i: number, inner: CniError) => internal(`invalid range set ${i}: ${inner.msg}`),
  tooManyPerFamily: (version: string) =>
    internal(`CNI version ${version} does not support more than 1 address per family`),
  rangeSetsOverlap: (i: number, j: number) => internal(`range set ${i} overlaps with ${j}`),
  badExclude: (where: string, entry: string, why: string) =>
    make(Code.InvalidNetworkConfig, `invalid ${where} exclude entry ${q(entry)}: ${why}`),
  allExcluded: (set: number, range: string) =>
    make(Code.InvalidNetworkConfig, `invalid range set ${set}: every address of range ${range} is excluded`),
  badDuration: (key: string, text: string) =>
    make(Code.InvalidNetworkConfig, `invalid ipam.${key}: time: invalid duration ${q(text)}`),
  badCluster: (why: string) => make(Code.InvalidNetworkConfig, `invalid ipam.cluster: ${why}`),
  badBlockSize: (set: number, text: string, min: number, max: number) =>
    make(
      Code.InvalidNetworkConfig,
      `invalid range set ${set}: blockSize ${text} must be a prefix length from ${min} to ${max}`,
    ),
  clusterBlocksDisagree: (a: string, b: string) =>
    make(
      Code.InvalidNetworkConfig,
      `invalid ipam.ranges: in a cluster network, ranges whose subnets overlap (${a}, ${b}) must be in one range set, with one blockSize`,
    ),
  clusterIpRanges: () =>
    make(
      Code.InvalidNetworkConfig,
      "invalid runtimeConfig.ipRanges: a cluster network's ranges are the cluster's, the same on every node; a runtime cannot replace them",
    ),
  blockSizeWithoutCluster: (set: number) =>
    make(Code.InvalidNetworkConfig, `invalid range set ${set}: blockSize is for cluster networks (ipam.cluster)`),
  badChoice: (key: string, text: string, allowed: readonly string[]) =>
    make(Code.InvalidNetworkConfig, `invalid ipam.${key} ${q(text)}: must be one of ${allowed.map(q).join(", ")}`),
  routeWithoutDst: (i: number) => make(Code.InvalidNetworkConfig, `invalid route ${i} in ipam.routes: missing "dst"`),
  rangeStartAfterEnd: (set: number, start: string, end: string) =>
    make(Code.InvalidNetworkConfig, `invalid range set ${set}: rangeStart ${start} is after rangeEnd ${end}`),
  resolvConf: (err: string) => internal(err),
  // range-level messages, wrapped by invalidRangeSet
  emptyRangeSet: () => internal("empty range set"),
  mixedFamilies: () => internal("mixed address families"),
  subnetsOverlap: (a: string, b: string) => internal(`subnets ${a} and ${b} overlap`),
  notV4NorV6: (ip: string) => internal(`IP ${ip} not v4 nor v6`),
  networkTooSmall: (cidr: string) => internal(`Network ${cidr} too small to allocate from`),
  maskVersionMismatch: () => internal("IPNet IP and Mask version mismatch"),
  hostBitsSet: (ones: number, net: string) =>
    internal(`Network has host bits set. For a subnet mask of length ${ones} the network address is ${net}`),
  rangeStartNotIn: (ip: string, cidr: string) => internal(`RangeStart ${ip} not in network ${cidr}`),
  rangeEndNotIn: (ip: string, cidr: string) => internal(`RangeEnd ${ip} not in network ${cidr}`),

  // --- allocation (host-local's allocator.go wording); wrapped by failedRange ---
  isGateway: (ip: string) => internal(`requested ip ${ip} is subnet's gateway`),
  requestedTaken: (ip: string, set: string) =>
    internal(`requested IP address ${ip} is not available in range set ${set}`),
  duplicate: (ip: string, id: string) =>
    internal(`${ip} has been allocated to ${id}, duplicate allocation is not allowed`),
  exhausted: (set: string) => internal(`no IP addresses available in range set: ${set}`),
  // --- cluster networks: the node agent claims blocks on etcd ---
  agentUnreachable: (network: string, socket: string, why: string) =>
    make(
      Code.TryAgainLater,
      `cluster network ${network}: no free address in this node's blocks, and the node agent at ${socket} is not answering (${why})`,
      "local-ipam-agent claims blocks for this node: check that it runs (kubectl -n kube-system get pods -l app.kubernetes.io/name=local-ipam)",
    ),
  claimFailed: (network: string, why: string) =>
    make(
      Code.TryAgainLater,
      `cluster network ${network}: no free address in this node's blocks, and no block could be claimed: ${why}`,
    ),
  failedRange: (idx: number, inner: CniError) =>
    make(inner.code, `failed to allocate for range ${idx}: ${inner.msg}`, inner.details),
  leftoverRequested: (ips: string[]) => internal(`failed to allocate all requested IPs: ${ips.join(" ")}`),
  notFound: (id: string) => internal(`host-local: Failed to find address added by container ${id}`),

  // --- the store ---
  /** A failed system call, as Go's os.PathError prints it: "<op> <path>: <errno text>". */
  io: (f: SysFailure) =>
    f.errno === ERRNO.ENOSPC || f.errno === ERRNO.EDQUOT
      ? make(
          Code.IOFailure,
          `${f.syscall} ${f.path}: ${errnoText(f.errno)}`,
          "free space in the data directory and retry",
        )
      : make(
          Code.IOFailure,
          f.path ? `${f.syscall} ${f.path}: ${errnoText(f.errno)}` : `${f.syscall}: ${errnoText(f.errno)}`,
        ),
  symlinkRefused: (path: string) =>
    make(Code.IOFailure, `refusing to use ${path}: it is a symbolic link, not a directory`),
  notRegular: (path: string) => make(Code.IOFailure, `refusing to use ${path}: not a regular file`),
  unsafeDir: (path: string, why: string) =>
    make(
      Code.IOFailure,
      `refusing to use ${path}: ${why}`,
      "local-ipam writes its own state only in directories that only root can change",
    ),
  lockTimeout: (path: string, ms: number) =>
    make(Code.TryAgainLater, `timed out after ${ms} ms waiting for the lock ${path}`, "another process holds the lock"),
} as const;

// every entry is a factory that returns the error (checked by the compiler)
E satisfies Record<string, (...args: never[]) => CniError>;

/** Lines for stderr: what happened that the runtime's log should show, although the command succeeded. */
export const NOTE = {
  reclaimed: (ip: string, previous: string, written: string) =>
    `local-ipam: range set full; reclaimed ${ip} from ${previous || "an unknown owner"}, whose lease was written ${written}, before the last boot`,
  cooling: (ip: string, releasedAgo: string) =>
    `local-ipam: only addresses in their reuse delay are free; reusing ${ip}, released ${releasedAgo} ago`,
  statusFull: (index: number, set: string) =>
    `local-ipam: STATUS: range set ${index} (${set}) has no free address; new ADDs fail until addresses are released (running pods are unaffected; "statusOnExhaustion": "unavailable" reports this as error 50)`,
  statusNeedsBlock: (index: number, network: string) =>
    `local-ipam: STATUS: range set ${index} of cluster network ${network} has no free address in this node's blocks; the node agent answers and claims a block at the next ADD`,
  statusNearlyFull: (index: number, set: string, free: string, total: string) =>
    `local-ipam: STATUS: range set ${index} (${set}) is nearly full: ${free} of ${total} addresses free`,
} as const;
