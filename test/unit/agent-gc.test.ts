// The agent's GC decision, without a runtime or a clock: an attachment is released only after `needed` complete
// listings in a row without its sandbox, and only when its youngest lease is older than the grace.
import { describe, expect, it } from "vitest";
import { AbsenceTracker, type LeaseRow } from "../../src/agent/gc.js";

const lease = (containerId: string, o: Partial<LeaseRow> = {}): LeaseRow => ({
  network: "net",
  address: `10.0.0.${containerId.length}`,
  containerId,
  ifname: "eth0",
  ageSeconds: 3600,
  readable: true,
  ...o,
});

describe("AbsenceTracker", () => {
  it("releases after N listings in a row without the sandbox, not before", () => {
    const t = new AbsenceTracker(3, 600);
    const leases = [lease("live"), lease("gone")];
    const live = new Set(["live"]);
    expect(t.observe(live, leases)).toEqual([]);
    expect(t.observe(live, leases)).toEqual([]);
    expect(t.observe(live, leases)).toEqual([{ network: "net", stale: "gone/eth0" }]);
    expect(t.watching).toBe(1);
  });
  it("starts counting again when the sandbox shows up between misses", () => {
    const t = new AbsenceTracker(2, 0);
    const leases = [lease("flaky")];
    expect(t.observe(new Set(), leases)).toEqual([]);
    expect(t.observe(new Set(["flaky"]), leases)).toEqual([]);
    expect(t.observe(new Set(), leases)).toEqual([]);
    expect(t.observe(new Set(), leases)).toEqual([{ network: "net", stale: "flaky/eth0" }]);
  });
  it("keeps an attachment whose youngest lease is within the grace, however long it has been missing", () => {
    const t = new AbsenceTracker(1, 600);
    const young = [lease("new", { ageSeconds: 5 }), lease("new", { address: "fd00::1", ageSeconds: 4000 })];
    for (let i = 0; i < 5; i++) expect(t.observe(new Set(), young)).toEqual([]);
    expect(t.observe(new Set(), [lease("new", { ageSeconds: 601 })])).toEqual([{ network: "net", stale: "new/eth0" }]);
  });
  it("judges each (network, container, ifname) alone; legacy leases by bare ID; never an unreadable one", () => {
    const t = new AbsenceTracker(1, 0);
    const got = t.observe(new Set(["c1"]), [
      lease("c1"),
      lease("c1", { network: "other" }),
      lease("c2", { ifname: "net1" }),
      lease("c3", { ifname: "" }),
      lease("", { readable: false }),
    ]);
    expect(got).toEqual([
      { network: "net", stale: "c2/net1" },
      { network: "net", stale: "c3" },
    ]);
  });
  it("forgets attachments whose leases are gone, so memory stays bounded", () => {
    const t = new AbsenceTracker(5, 0);
    for (let i = 0; i < 1000; i++) t.observe(new Set(), [lease(`c${i}`)]);
    expect(t.watching).toBe(1);
    t.observe(new Set(), []);
    expect(t.watching).toBe(0);
  });
});
