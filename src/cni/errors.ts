// The one catalogue of every error local-ipam reports. Each entry has its CNI code and its message template;
// a throw site names an entry and passes values, it never writes a message of its own. Messages that
// host-local also prints are kept word for word, so that what operators search for still finds answers.

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
    return this.details ? { code: this.code, msg: this.msg, details: this.details } : { code: this.code, msg: this.msg };
  }
}

const q = (s: string): string => JSON.stringify(s); // Go's %q for the strings we quote
const make = (code: number, msg: string, details = ""): CniError => new CniError(code, msg, details);

export const E = {
  // protocol and environment (skel)
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
    make(Code.IncompatibleVersion, `config version does not allow ${cmd}`, `${cmd} needs cniVersion ${version} or later`),
  badAttachments: (key: string, why: string) => make(Code.InvalidNetworkConfig, `invalid ${key}: ${why}`),
  gcFailed: (errs: string[]) =>
    make(Code.IOFailure, `GC could not remove ${errs.length} lease${errs.length === 1 ? "" : "s"}`, errs.join("; ")),
  statusExhausted: (sets: { index: number; set: string }[]) =>
    make(
      Code.NotAvailable,
      sets.map((s) => `no IP addresses available in range set ${s.index}: ${s.set}`).join("; "),
      "every address is leased and none was written before the last boot",
    ),

  // configuration (host-local's allocator/config.go and range.go wording)
  goJson: (msg: string) => make(Code.Internal, msg),
  ipamMissing: () => make(Code.Internal, "IPAM config missing 'ipam' key"),
  argsInvalidPair: (pair: string) => make(Code.Internal, `ARGS: invalid pair ${q(pair)}`),
  argsUnknown: (pairs: string[]) => make(Code.Internal, `ARGS: unknown args [${pairs.map(q).join(" ")}]`),
  argsBadValue: (pair: string, err: string) => make(Code.Internal, `ARGS: error parsing value of pair ${q(pair)}: ${err}`),
  argsNotUnmarshalable: (key: string, type: string) =>
    make(
      Code.Internal,
      `ARGS: cannot unmarshal into field '${key}' - type '${type}' does not implement encoding.TextUnmarshaler`,
    ),
  boolInvalid: (s: string) => `boolean unmarshal error: invalid input ${s}`,
  cannotUnderstandIp: (err: string) => make(Code.Internal, `cannot understand ip: ${err}`),
  noRanges: () => make(Code.Internal, "no IP ranges specified"),
  invalidRangeSet: (i: number, err: string) => make(Code.Internal, `invalid range set ${i}: ${err}`),
  tooManyPerFamily: (version: string) =>
    make(Code.Internal, `CNI version ${version} does not support more than 1 address per family`),
  rangeSetsOverlap: (i: number, j: number) => make(Code.Internal, `range set ${i} overlaps with ${j}`),
  badExclude: (where: string, entry: string, why: string) =>
    make(Code.InvalidNetworkConfig, `invalid ${where} exclude entry ${q(entry)}: ${why}`),
  allExcluded: (set: number, range: string) =>
    make(Code.InvalidNetworkConfig, `invalid range set ${set}: every address of range ${range} is excluded`),
  badDuration: (key: string, text: string) =>
    make(Code.InvalidNetworkConfig, `invalid ipam.${key}: time: invalid duration ${q(text)}`),
  coolingNote: (ip: string, releasedAgo: string) =>
    `local-ipam: only addresses in their reuse delay are free; reusing ${ip}, released ${releasedAgo} ago`,
  routeWithoutDst: (i: number) => make(Code.InvalidNetworkConfig, `invalid route ${i} in ipam.routes: missing "dst"`),
  rangeStartAfterEnd: (set: number, start: string, end: string) =>
    make(Code.InvalidNetworkConfig, `invalid range set ${set}: rangeStart ${start} is after rangeEnd ${end}`),
  // range-level messages, wrapped by invalidRangeSet
  rangeMsg: {
    emptySet: () => "empty range set",
    mixedFamilies: () => "mixed address families",
    subnetsOverlap: (a: string, b: string) => `subnets ${a} and ${b} overlap`,
    notV4NorV6: (ip: string) => `IP ${ip} not v4 nor v6`,
    tooSmall: (cidr: string) => `Network ${cidr} too small to allocate from`,
    versionMismatch: () => "IPNet IP and Mask version mismatch",
    hostBits: (ones: number, net: string) =>
      `Network has host bits set. For a subnet mask of length ${ones} the network address is ${net}`,
    startNotIn: (ip: string, cidr: string) => `RangeStart ${ip} not in network ${cidr}`,
    endNotIn: (ip: string, cidr: string) => `RangeEnd ${ip} not in network ${cidr}`,
  },
  resolvConf: (err: string) => make(Code.Internal, err),

  // allocation (host-local's allocator.go wording)
  isGateway: (ip: string) => `requested ip ${ip} is subnet's gateway`,
  requestedTaken: (ip: string, set: string) => `requested IP address ${ip} is not available in range set ${set}`,
  duplicate: (ip: string, id: string) => `${ip} has been allocated to ${id}, duplicate allocation is not allowed`,
  exhausted: (set: string) => `no IP addresses available in range set: ${set}`,
  failedRange: (idx: number, err: string) => make(Code.Internal, `failed to allocate for range ${idx}: ${err}`),
  leftoverRequested: (ips: string[]) =>
    make(Code.Internal, `failed to allocate all requested IPs: ${ips.join(" ")}`),
  reclaimedNote: (ip: string, previous: string, written: string) =>
    `local-ipam: range set full; reclaimed ${ip} from ${previous || "an unknown owner"}, whose lease was written ${written}, before the last boot`,
  notFound: (id: string) => make(Code.Internal, `host-local: Failed to find address added by container ${id}`),

  // store
  io: (what: string, path: string, err: string) => make(Code.IOFailure, `${what} ${path}: ${err}`),
  noSpace: (path: string) =>
    make(Code.IOFailure, `no space left on device while writing ${path}`, "free space in the data directory and retry"),
  symlinkRefused: (path: string) =>
    make(Code.IOFailure, `refusing to use ${path}: it is a symbolic link, not a directory`),
  lockTimeout: (path: string, ms: number) =>
    make(Code.TryAgainLater, `timed out after ${ms} ms waiting for the lock ${path}`, "another process holds the lock"),
} as const;

// Messages of allocation steps are plain strings so that the command can wrap them ("failed to allocate for
// range N: ..."), exactly as host-local nests its errors.
export class AllocError extends Error {}

/** Go's os.PathError text for a Node error: "open /x: no such file or directory". */
export function goErrText(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  const table: Record<string, string> = {
    ENOENT: "no such file or directory",
    EACCES: "permission denied",
    EPERM: "operation not permitted",
    EISDIR: "is a directory",
    ENOTDIR: "not a directory",
    ENOSPC: "no space left on device",
    EROFS: "read-only file system",
    EEXIST: "file exists",
    ELOOP: "too many levels of symbolic links",
    EDQUOT: "disk quota exceeded",
    EIO: "input/output error",
  };
  return (e && e.code && table[e.code]) || (e && e.message) || String(err);
}
