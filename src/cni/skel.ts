// The CNI protocol as CNI's pkg/skel implements it for host-local: environment, stdin, validation order,
// version checks and the error envelope. Like skel's dispatcher, it takes its environment and streams as
// arguments, so that every protocol test runs in-process; main.ts passes the real ones.
import { CniError, Code, E } from "../errors.js";
import { goDecode, goErrorText, goMarshal, HardError, parseJsonGo, type Schema, TypeError_ } from "../go/json.js";
import { hasGoSpace, utf8Length } from "../go/strings.js";
import { CURRENT_VERSION, isSupported, SUPPORTED_VERSIONS, versionAtLeast } from "./version.js";

interface PluginIO {
  env: Record<string, string | undefined>;
  /** Reads the whole of stdin (only called for commands that take a config). */
  readStdin(): string;
  stdout(text: string): void;
  stderr(text: string): void;
}

export interface CmdArgs {
  command: string;
  containerId: string;
  netns: string;
  ifname: string;
  args: string;
  path: string;
  /** The config on stdin, parsed (Go's rules: see go/json.ts). */
  config: unknown;
  /** cniVersion of the config ("" when absent). */
  cniVersion: string;
  /** The whole environment, for local-ipam's own knobs (LOCAL_IPAM_LOCK_TIMEOUT_MS). */
  env: Record<string, string | undefined>;
  /** Lines for the runtime's log; printed only when the command succeeds. */
  notes: string[];
}

/** A command returns the JSON to print, or null to print nothing. */
type CommandFn = (args: CmdArgs) => unknown;

export interface Commands {
  ADD: CommandFn;
  DEL: CommandFn;
  CHECK: CommandFn;
  GC: CommandFn;
  STATUS: CommandFn;
}

const REQUIRED: Record<string, string[]> = {
  ADD: ["CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_PATH"],
  CHECK: ["CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_PATH"],
  DEL: ["CNI_CONTAINERID", "CNI_IFNAME", "CNI_PATH"],
  GC: ["CNI_PATH"],
  STATUS: ["CNI_PATH"],
};
const ENV_ORDER = ["CNI_COMMAND", "CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_ARGS", "CNI_PATH"];

const CONTAINER_ID = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;
const NETWORK_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

export function validateContainerId(id: string): void {
  if (id === "") throw E.missingContainerId();
  if (!CONTAINER_ID.test(id)) throw E.badContainerId(id);
}

/** skel's ValidateInterfaceName: at most 15 bytes, not . or .., no / or :, no rune Go counts as white space. */
export function validateIfname(name: string): void {
  if (name === "") throw E.emptyIfname();
  if (utf8Length(name) > 15) throw E.longIfname();
  if (name === "." || name === "..") throw E.dotIfname();
  if (name.includes("/") || name.includes(":") || hasGoSpace(name)) throw E.badCharIfname();
}

export function isValidNetworkName(name: string): boolean {
  return NETWORK_NAME.test(name);
}

// the anonymous structs skel and libcni's version decoder unmarshal into, named as Go prints them
const nameSchema: Schema = {
  t: "struct",
  goType: 'struct { Name string "json:\\"name\\"" }',
  name: "",
  fields: { name: { t: "string" } },
};
const versionSchema: Schema = {
  t: "struct",
  goType: 'struct { CNIVersion string "json:\\"cniVersion\\"" }',
  name: "",
  fields: { cniVersion: { t: "string" } },
};

function decodeField(parsed: unknown, schema: Schema, wrap: (msg: string) => CniError): Record<string, string> {
  try {
    return goDecode(parsed, schema) as Record<string, string>;
  } catch (e) {
    if (e instanceof TypeError_ || e instanceof HardError) throw wrap(goErrorText(e));
    throw e;
  }
}

/** skel's validateConfig: the config parses, has a name, and the name is safe as a directory name. */
function parseAndValidateConfig(stdin: string): unknown {
  let parsed: unknown;
  try {
    parsed = parseJsonGo(stdin);
  } catch (e) {
    throw E.badConfigJson(goErrorText(e));
  }
  const { name } = decodeField(parsed, nameSchema, E.badConfigJson);
  if (!name) throw E.missingNetworkName();
  if (!isValidNetworkName(name)) throw E.badNetworkName(name);
  return parsed;
}

function configVersion(parsed: unknown): string {
  return decodeField(parsed, versionSchema, E.badVersionJson).cniVersion ?? "";
}

function checkVersion(v: string): void {
  if (!isSupported(v === "" ? "0.1.0" : v)) throw E.incompatibleVersion(v === "" ? "0.1.0" : v, SUPPORTED_VERSIONS);
}

function dispatch(io: PluginIO, cmds: Commands, notes: string[]): unknown {
  const get = (k: string) => io.env[k] ?? "";
  const command = get("CNI_COMMAND");
  const required = REQUIRED[command] ?? [];
  const missing = ENV_ORDER.filter((k) => get(k) === "" && (k === "CNI_COMMAND" || required.includes(k)));
  if (missing.length > 0) throw E.missingEnv(missing);

  if (command === "VERSION") return { cniVersion: CURRENT_VERSION, supportedVersions: SUPPORTED_VERSIONS };

  const config = parseAndValidateConfig(io.readStdin());
  const args: CmdArgs = {
    command,
    containerId: get("CNI_CONTAINERID"),
    netns: get("CNI_NETNS"),
    ifname: get("CNI_IFNAME"),
    args: get("CNI_ARGS"),
    path: get("CNI_PATH"),
    config,
    cniVersion: "",
    env: io.env,
    notes,
  };
  if (command !== "GC" && command !== "STATUS") {
    validateContainerId(args.containerId);
    validateIfname(args.ifname);
  }
  args.cniVersion = configVersion(config);
  switch (command) {
    case "ADD":
    case "DEL":
      checkVersion(args.cniVersion);
      return cmds[command](args);
    case "CHECK":
      if (!versionAtLeast(args.cniVersion || "0.1.0", "0.4.0")) throw E.checkNotAllowed();
      checkVersion(args.cniVersion);
      return cmds.CHECK(args);
    case "GC":
    case "STATUS":
      if (!versionAtLeast(args.cniVersion || "0.1.0", "1.1.0")) throw E.commandNeedsVersion(command, "1.1.0");
      checkVersion(args.cniVersion);
      return cmds[command](args);
    default:
      throw E.unknownCommand(command);
  }
}

/** Anything that is not a CNI error is a bug: still one JSON error on stdout, never a stack trace. */
function toCniError(e: unknown): CniError {
  if (e instanceof CniError) return e;
  return new CniError(Code.Internal, e instanceof Error ? e.message : String(e));
}

/** Runs one CNI invocation and returns the exit status. */
export function pluginMain(io: PluginIO, cmds: Commands, about: string): number {
  if ((io.env.CNI_COMMAND ?? "") === "") {
    io.stderr(`${about}\nCNI protocol versions supported: ${SUPPORTED_VERSIONS.join(", ")}\n`);
    return 0;
  }
  const notes: string[] = [];
  try {
    const out = dispatch(io, cmds, notes);
    // as skel prints them: VERSION compact with a newline, results indented by four spaces without one
    if (out !== null && out !== undefined)
      io.stdout(io.env.CNI_COMMAND === "VERSION" ? `${goMarshal(out)}\n` : goMarshal(out, "    "));
    for (const note of notes) io.stderr(`${note}\n`);
    return 0;
  } catch (e) {
    io.stdout(goMarshal(toCniError(e), "    "));
    return 1;
  }
}
