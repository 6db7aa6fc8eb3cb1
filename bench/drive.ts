// bench/driver.c from the benchmarks' side: compiled once into a work dir, given a plan, its JSON lines parsed.
import { execFileSync, spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join, resolve } from "node:path";

/** Compiles the driver into `work`; returns a function that runs one plan and returns what it measured. */
export function timingDriver<T>(work: string): (plan: string) => T[] {
  const driver = join(work, "driver");
  execFileSync("gcc", ["-O2", "-o", driver, join(resolve(__dirname, ".."), "bench", "driver.c")]);
  return (plan) => {
    const file = join(work, "plan");
    writeFileSync(file, plan);
    const r = spawnSync(driver, [file], {
      encoding: "utf8",
      maxBuffer: 64 << 20,
      stdio: ["ignore", "pipe", "inherit"],
    });
    if (r.status !== 0) throw new Error(`driver exited ${r.status}`);
    return r.stdout
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as T);
  };
}
