// The CNI protocol as CNI's pkg/skel implements it for host-local: environment, stdin, validation order,
// version checks and the error envelope. Commands receive validated arguments and the parsed config.
import { readSync } from "node:fs";
import { goDecode, goErrorText, HardError, parseJsonGo, type Schema, TypeError_ } from "../config/gojson.js";
import { CniError, Code, E } from "./errors.js";
import { writeAll } from "./output.js";
import { CURRENT_VERSION, SUPPORTED_VERSIONS, isSupported, versionAtLeast } from "./version.js";

export interface CmdArgs {
  command: string;
  containerId: string;
  netns: string;
  ifname: string;
  args: string;
  path: string;
  /** The config on stdin, parsed (undefined for VERSION). */
  config: unknown;
  /** cniVersion of the config ("" when absent). */
  cniVersion: string;
}

/** A command returns the JSON to print, or null to print nothing. */
export type CommandFn = (args: CmdArgs) => unknown;

export interface Commands {
  ADD: CommandFn;
  DEL: CommandFn;
  CHECK: CommandFn;
  GC: CommandFn;
  STATUS: CommandFn;
}

const MAX_STDIN = 16 << 20; // a config is kilobytes; anything near this is an attack or an accident

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

export function validateIfname(name: string): void {
  if (name === "") throw E.emptyIfname();
  if (Buffer.byteLength(name) > 15) throw E.longIfname();
  if (name === "." || name === "..") throw E.dotIfname();
  if (/[/:\s]/.test(name)) throw E.badCharIfname();
}

export function isValidNetworkName(name: string): boolean {
  return NETWORK_NAME.test(name);
}

function readStdin(): string {
  const chunks: Buffer[] = [];
  let total = 0;
  const buf = Buffer.allocUnsafe(65536);
  for (;;) {
    let n: number;
    try {
      n = readSync(0, buf, 0, buf.length, null);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === "EAGAIN") {
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1);
        continue;
      }
      if (code === "EOF" || code === "EBADF") break;
      throw E.stdinRead(String((e as Error).message));
    }
    if (n === 0) break;
    total += n;
    if (total > MAX_STDIN) throw E.stdinTooLarge(MAX_STDIN);
    chunks.push(Buffer.from(buf.subarray(0, n)));
  }
  return Buffer.concat(chunks).toString("utf8");
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

function toCniError(e: unknown): CniError {
  if (e instanceof CniError) return e;
  const err = e as NodeJS.ErrnoException;
  if (err && typeof err.code === "string" && typeof err.syscall === "string")
    return new CniError(Code.IOFailure, err.message);
  return new CniError(Code.Internal, err instanceof Error ? err.message : String(e));
}

function dispatch(env: NodeJS.ProcessEnv, cmds: Commands): unknown {
  const get = (k: string) => env[k] ?? "";
  const command = get("CNI_COMMAND");
  const required = REQUIRED[command] ?? [];
  const missing = ENV_ORDER.filter((k) => get(k) === "" && (k === "CNI_COMMAND" || required.includes(k)));
  if (missing.length > 0) throw E.missingEnv(missing);

  if (command === "VERSION") return { cniVersion: CURRENT_VERSION, supportedVersions: SUPPORTED_VERSIONS };

  const config = parseAndValidateConfig(readStdin());
  const args: CmdArgs = {
    command,
    containerId: get("CNI_CONTAINERID"),
    netns: get("CNI_NETNS"),
    ifname: get("CNI_IFNAME"),
    args: get("CNI_ARGS"),
    path: get("CNI_PATH"),
    config,
    cniVersion: "",
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

/** Runs one CNI invocation and returns the exit status. Output goes to fd 1, the about text to fd 2. */
export function pluginMain(env: NodeJS.ProcessEnv, cmds: Commands, about: string): number {
  if ((env.CNI_COMMAND ?? "") === "") {
    writeAll(2, `${about}\nCNI protocol versions supported: ${SUPPORTED_VERSIONS.join(", ")}\n`);
    return 0;
  }
  try {
    const out = dispatch(env, cmds);
    if (out !== null && out !== undefined) writeAll(1, env.CNI_COMMAND === "VERSION" ? `${JSON.stringify(out)}\n` : `${JSON.stringify(out, null, 4)}\n`);
    return 0;
  } catch (e) {
    writeAll(1, `${JSON.stringify(toCniError(e), null, 4)}\n`);
    return 1;
  }
}
