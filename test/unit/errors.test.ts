// The error catalogue: every entry is used by the code and documented, and errnos read as Go prints them.
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { CniError, E, errnoText, setErrnoArch } from "../../src/errors.js";
import { ROOT } from "../helpers.js";

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? sources(p) : p.endsWith(".ts") ? [p] : [];
  });
}

const code = sources(join(ROOT, "src"))
  .filter((p) => !p.endsWith("/errors.ts"))
  .map((p) => readFileSync(p, "utf8"))
  .join("\n");
const readme = readFileSync(join(ROOT, "README.md"), "utf8");

describe("the error catalogue", () => {
  for (const key of Object.keys(E)) {
    it(`${key}: thrown or built somewhere in src/, and listed in the README`, () => {
      expect(code).toMatch(new RegExp(`\\bE\\.${key}\\b`));
      expect(readme).toContain(`\`${key}\``);
    });
  }
  it("each entry builds a CniError with a CNI code", () => {
    const e = E.lockTimeout("/x/lock", 5);
    expect(e).toBeInstanceOf(CniError);
    expect(e.toJSON()).toEqual({
      code: 11,
      msg: "timed out after 5 ms waiting for the lock /x/lock",
      details: "another process holds the lock",
    });
  });
  it("prints a failed system call as Go's os.PathError, never Node's or libc's words", () => {
    expect(E.io({ errno: 18, syscall: "rename", path: "/d/x" }).msg).toBe("rename /d/x: invalid cross-device link");
    expect(E.io({ errno: 36, syscall: "mkdir", path: "/d/x" }).msg).toBe("mkdir /d/x: file name too long");
    expect(E.io({ errno: 28, syscall: "write", path: "/d/x" }).toJSON()).toEqual({
      code: 5,
      msg: "write /d/x: no space left on device",
      details: "free space in the data directory and retry",
    });
    expect(errnoText(41)).toBe("errno 41");
    expect(errnoText(116)).toBe("stale NFS file handle");
    setErrnoArch("arm64");
    try {
      expect(errnoText(116)).toBe("stale file handle");
      expect(errnoText(133)).toBe("memory page has hardware error");
    } finally {
      setErrnoArch("x86_64");
    }
  });
});

describe("UTF-8 from the system, decoded as Go decodes it (the native module does the same)", () => {
  it("one U+FFFD per byte that starts no valid sequence", async () => {
    const { nodePlatform } = await import("../../src/platform/node.js");
    const d = (bytes: number[]) => nodePlatform.utf8Decode(new Uint8Array(bytes), 0, bytes.length);
    expect(d([0xe2, 0x82, 0x41])).toBe("\ufffd\ufffdA");
    expect(d([0x61, 0xe2, 0x82, 0xac, 0x62])).toBe("a€b");
    expect(d([0xed, 0xa0, 0x80])).toBe("\ufffd\ufffd\ufffd"); // an encoded surrogate
    expect(d([0xc0, 0xaf])).toBe("\ufffd\ufffd"); // overlong
    expect(d([0xf0, 0x9f, 0x98, 0x80])).toBe("😀");
    expect(d([0xf4, 0x90, 0x80, 0x80])).toBe("\ufffd\ufffd\ufffd\ufffd"); // past U+10FFFF
    expect(d([0xe2])).toBe("\ufffd");
  });
});
