import { describe, expect, it } from "vitest";
import { validAttachments } from "../../src/commands/gc.js";
import type { CniError } from "../../src/errors.js";

describe("GC attachment list", () => {
  it("reads cni.dev/valid-attachments, or the cni.dev/attachments spelling", () => {
    const list = [{ containerID: "a", ifname: "eth0" }];
    expect(validAttachments({ "cni.dev/valid-attachments": list })).toEqual(list);
    expect(validAttachments({ "cni.dev/attachments": list })).toEqual(list);
    expect(validAttachments({ "cni.dev/valid-attachments": [] })).toEqual([]);
  });
  it("tells 'no list' (null: delete nothing) from an empty list", () => {
    expect(validAttachments({ name: "x" })).toBeNull();
    expect(validAttachments({ "cni.dev/valid-attachments": null })).toBeNull();
  });
  it("refuses malformed lists with code 7", () => {
    for (const bad of ["x", [{ containerID: 1, ifname: "eth0" }], [{ containerID: "a" }], [null]]) {
      try {
        validAttachments({ "cni.dev/valid-attachments": bad });
        throw new Error("accepted");
      } catch (e) {
        expect((e as CniError).code).toBe(7);
      }
    }
  });
});
