// Fault points for test builds: the fault tests run a build with __LOCAL_IPAM_FAULTS__ true and name, in
// LOCAL_IPAM_FAULT, a phase at which the process kills itself ("kill:after-link") or at which a system call
// fails ("fail:after-link:28", errno 28 = ENOSPC). In the shipped build the define is false and esbuild drops
// every trace of this, so no environment variable can make a production plugin misbehave.
import { E } from "./errors.js";
import { platform } from "./platform/index.js";

declare const __LOCAL_IPAM_FAULTS__: boolean | undefined;

export type Phase =
  | "after-prepare" // ADD's lease content written, before the lock
  | "after-lock"
  | "after-link" // a lease linked into the network directory
  | "after-last-reserved" // last_reserved_ip.N written
  | "after-takeover" // a lease from before the boot rewritten for its new owner
  | "after-remove" // DEL, GC or release removed one lease
  | "before-sync" // all changes made, before the directory fsync
  | "after-sync" // durable, before the index and our state are written
  | "after-index"; // everything written, before the result is printed

let wanted: string[] | null | undefined;

function fault(phase: Phase): void {
  if (wanted === undefined) {
    const spec = platform().env().LOCAL_IPAM_FAULT;
    wanted = spec ? spec.split(":") : null;
  }
  if (!wanted || wanted[1] !== phase) return;
  if (wanted[0] === "kill") platform().killSelf(9);
  // what a failed system call at that moment turns into
  if (wanted[0] === "fail")
    throw E.io({ errno: Number(wanted[2]) || 5, syscall: "write", path: `(fault injected at ${phase})` });
}

/** Does nothing outside test builds. */
export const faultPoint: (phase: Phase) => void =
  typeof __LOCAL_IPAM_FAULTS__ === "boolean" && __LOCAL_IPAM_FAULTS__ ? fault : () => {};
