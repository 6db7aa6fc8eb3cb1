// The node agent as a child process for tests: dist/local-ipam-agent on this Node, its log, its metrics port,
// its metrics read back with a real parser of the exposition format, SIGTERM.
import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import parsePrometheusTextFormat from "parse-prometheus-text-format";
import { LOCAL_IPAM } from "./helpers.js";

const AGENT = join(LOCAL_IPAM, "..", "local-ipam-agent");

/** node, the V8 flags of the agent's first line (#!/usr/bin/env -S node FLAGS), the agent: as it runs on a node. */
export function agentCommand(): string[] {
  const first = readFileSync(AGENT, "utf8").slice(0, 300).split("\n")[0]!;
  const flags = first
    .replace(/^#!\/usr\/bin\/env -S node ?/, "")
    .split(" ")
    .filter(Boolean);
  return [process.execPath, ...flags, AGENT];
}

/** Polls `cond` until true; a condition, not a time, is what a test waits for. */
export async function until(what: string, cond: () => boolean | Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export class AgentProcess {
  readonly child: ChildProcess;
  log = "";
  port = 0;
  exit: Promise<number | null>;

  /** `stops` collects a stop function, for the test's afterEach. */
  constructor(
    args: string[],
    stops: (() => Promise<unknown>)[],
    plugin = LOCAL_IPAM,
    env: Record<string, string> = {},
  ) {
    const [node, ...command] = agentCommand();
    this.child = spawn(node!, [...command, "--plugin", plugin, "--metrics-addr", "127.0.0.1:0", ...args], {
      env: { PATH: process.env.PATH, ...env },
      stdio: ["ignore", "ignore", "pipe"],
    });
    this.child.stderr!.setEncoding("utf8");
    this.child.stderr!.on("data", (d: string) => {
      this.log += d;
    });
    this.exit = new Promise((resolve) => this.child.on("exit", (code) => resolve(code)));
    stops.push(() => this.stop());
  }

  async started(): Promise<this> {
    await until(
      "the agent to start",
      () => /started metrics="127\.0\.0\.1:\d+"/.test(this.log) || this.child.exitCode !== null,
    );
    const m = /started metrics="127\.0\.0\.1:(\d+)"/.exec(this.log);
    if (!m) throw new Error(`the agent did not start:\n${this.log}`);
    this.port = Number(m[1]);
    return this;
  }

  async get(path: string): Promise<{ status: number; text: string }> {
    const res = await fetch(`http://127.0.0.1:${this.port}${path}`);
    return { status: res.status, text: await res.text() };
  }

  /** One sample of a metric family, by labels; 0 when absent. */
  async metric(name: string, labels: Record<string, string> = {}): Promise<number> {
    const families = parsePrometheusTextFormat((await this.get("/metrics")).text) as {
      name: string;
      metrics: { value: string; labels?: Record<string, string> }[];
    }[];
    const f = families.find((x) => x.name === name);
    const m = f?.metrics.find((s) => Object.entries(labels).every(([k, v]) => s.labels?.[k] === v));
    return m ? Number(m.value) : 0;
  }

  async stop(): Promise<number | null> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill("SIGTERM");
    return this.exit;
  }
}
