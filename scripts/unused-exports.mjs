#!/usr/bin/env node
// Lists exports of src/ that no other file imports (src, test, conformance, bench): dead API to remove, or a
// symbol that should not be exported. Exits 1 when there is any. Plain text matching of our own code style:
// `export function|const|class|interface|type|enum Name` and `import { a, type b } from "..."`.
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";

const root = new URL("..", import.meta.url).pathname;
const walk = (dir) =>
  readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    if (name === "node_modules" || name === "dist") return [];
    return statSync(p).isDirectory() ? walk(p) : /\.(ts|mts|mjs)$/.test(name) ? [p] : [];
  });
const files = ["src", "test", "conformance", "bench"].flatMap((d) => walk(join(root, d)));
const text = new Map(files.map((f) => [f, readFileSync(f, "utf8")]));

const imported = new Set();
for (const t of text.values()) {
  for (const m of t.matchAll(/(?:import|export)\s+(?:type\s+)?\{([^}]*)\}\s+from/g))
    for (const part of m[1].split(",")) {
      const name = part
        .trim()
        .replace(/^type\s+/, "")
        .split(/\s+as\s+/)[0]
        .trim();
      if (name) imported.add(name);
    }
  for (const m of t.matchAll(/import\(\s*["'][^"']+["']\s*\)\)?\.(\w+)/g)) imported.add(m[1]);
  for (const m of t.matchAll(/typeof import\([^)]*\)\)?\[?["']?(\w+)/g)) imported.add(m[1]);
}

const unused = [];
for (const [file, t] of text) {
  if (!file.startsWith(join(root, "src"))) continue;
  for (const m of t.matchAll(
    /^export\s+(?:declare\s+)?(?:async\s+)?(?:function\*?|const|let|class|interface|type|enum)\s+(\w+)/gm,
  ))
    if (!imported.has(m[1])) unused.push(`${relative(root, file)}: ${m[1]}`);
}
if (unused.length > 0) {
  console.error(`exported but imported nowhere (${unused.length}):\n  ${unused.join("\n  ")}`);
  process.exit(1);
}
console.log(`unused exports: none (${text.size} files)`);
