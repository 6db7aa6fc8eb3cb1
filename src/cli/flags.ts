// A strict flag parser for the operator CLI: every command names its flags; anything else is a usage error
// (exit status 2), so that a typo never runs with a default by accident.
export class UsageError extends Error {}

interface FlagSpec {
  /** flags that take a value; repeatable ones collect every value */
  values?: readonly string[];
  repeatable?: readonly string[];
  /** flags without a value */
  switches?: readonly string[];
}

export interface Parsed {
  values: Map<string, string[]>;
  switches: Set<string>;
}

export function parseFlags(args: string[], spec: FlagSpec): Parsed {
  const values = new Map<string, string[]>();
  const switches = new Set<string>();
  const takes = new Set([...(spec.values ?? []), ...(spec.repeatable ?? [])]);
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (!arg.startsWith("--")) throw new UsageError(`unexpected argument "${arg}"`);
    const eq = arg.indexOf("=");
    const name = eq > 0 ? arg.slice(2, eq) : arg.slice(2);
    if (spec.switches?.includes(name)) {
      if (eq > 0) throw new UsageError(`--${name} takes no value`);
      switches.add(name);
      continue;
    }
    if (!takes.has(name)) throw new UsageError(`unknown flag --${name}`);
    const value = eq > 0 ? arg.slice(eq + 1) : args[++i];
    if (value === undefined || value === "") throw new UsageError(`--${name} needs a value`);
    const seen = values.get(name) ?? [];
    if (seen.length > 0 && !spec.repeatable?.includes(name)) throw new UsageError(`--${name} given twice`);
    values.set(name, [...seen, value]);
  }
  return { values, switches };
}

export function one(p: Parsed, name: string): string | undefined {
  return p.values.get(name)?.[0];
}
