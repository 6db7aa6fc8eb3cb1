// The agent does nothing to leases or configs itself: it runs the plugin binary's CLI (install, leases, gc, metrics),
// so that every change on disk goes through the code, the lock and the checks a CNI call goes through.
import { execFile } from "node:child_process";

interface RunResult {
  status: number;
  stdout: string;
  stderr: string;
}

export class PluginRunner {
  constructor(
    readonly path: string,
    private readonly timeoutMs = 60_000,
  ) {}

  /** Runs `<plugin> args...` without CNI_COMMAND (the CLI); never rejects: a failure to start is status 127. */
  run(args: string[], extraEnv: Record<string, string> = {}): Promise<RunResult> {
    // the CLI reads nothing from the environment but these; CNI_COMMAND must not leak in from ours
    const env: NodeJS.ProcessEnv = { PATH: process.env.PATH ?? "/usr/bin:/bin", ...extraEnv };
    return new Promise((resolvePromise) => {
      execFile(
        this.path,
        args,
        { env, timeout: this.timeoutMs, killSignal: "SIGKILL", maxBuffer: 64 << 20, encoding: "utf8" },
        (err, stdout, stderr) => {
          if (!err) return resolvePromise({ status: 0, stdout, stderr });
          const e = err as NodeJS.ErrnoException & { code?: number | string; killed?: boolean };
          const status = typeof e.code === "number" ? e.code : 127;
          const why = e.killed ? `killed after ${this.timeoutMs} ms` : typeof e.code === "string" ? e.message : "";
          resolvePromise({ status, stdout: stdout ?? "", stderr: `${stderr ?? ""}${why}` });
        },
      );
    });
  }

  /** Runs and parses the JSON it prints; throws with its stderr when it fails. */
  async json<T>(args: string[]): Promise<T> {
    const r = await this.run(args);
    if (r.status !== 0) throw new Error(`${this.path} ${args[0]}: exit ${r.status}: ${(r.stderr || r.stdout).trim()}`);
    return JSON.parse(r.stdout) as T;
  }
}
