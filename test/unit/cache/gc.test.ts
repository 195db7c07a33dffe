import { describe, expect, test } from "bun:test";
import { DAY, MB, planCompress, planImages, planRootfsGc, planTrim, type RootfsEntry } from "../../../src/cache/gc.ts";

const now = 1_000 * DAY;
const entry = (digest: string, mb: number, daysAgo: number, keep: string[] = []): RootfsEntry => ({
  digest, dir: `/r/${digest}`, archive: null, bytes: mb * MB, lastUsed: now - daysAgo * DAY, refs: [], keep,
});

describe("planRootfsGc", () => {
  test("age first, then least recently used while above the cap; kept entries count but never go", () => {
    const entries = [entry("installed", 500, 300, ["installed: python"]), entry("old", 100, 90), entry("a", 300, 30), entry("b", 300, 5), entry("c", 300, 1)];
    const plan = planRootfsGc(entries, { maxBytes: 1000 * MB, maxAgeMs: 60 * DAY, now });
    expect(plan.map((a) => "digest" in a && a.digest)).toEqual(["old", "a", "b"]);
    expect(plan[0]!.reason).toContain("unused for 90 days");
    expect(plan[1]!.reason).toContain("least recently used");
  });

  test("nothing to do under both limits; an entry used exactly maxAge ago stays", () => {
    expect(planRootfsGc([entry("a", 10, 60), entry("b", 10, 1)], { maxBytes: 100 * MB, maxAgeMs: 60 * DAY, now })).toEqual([]);
  });

  test("everything kept: the cache stays above its cap", () => {
    expect(planRootfsGc([entry("a", 900, 100, ["x"]), entry("b", 900, 100, ["y"])], { maxBytes: 0, maxAgeMs: 0, now })).toEqual([]);
  });
});

describe("planImages", () => {
  test("forgets images not kept and removes blobs only they need; shared and recent blobs stay", () => {
    const images = [
      { digest: "m1", blobs: ["m1", "c1", "l-shared", "l1"], keep: true },
      { digest: "m2", blobs: ["m2", "c2", "l-shared", "l2"], keep: false },
    ];
    const blob = (digest: string, ageMs = 2 * DAY) => ({ digest, size: 10, mtimeMs: now - ageMs });
    const blobs = ["m1", "c1", "l-shared", "l1", "m2", "c2", "l2", "orphan"].map((d) => blob(d));
    blobs.push(blob("fresh-orphan", 60_000));
    const plan = planImages(images, blobs, now);
    expect(plan.filter((a) => a.kind === "remove-image").map((a) => "digest" in a && a.digest)).toEqual(["m2"]);
    expect(plan.filter((a) => a.kind === "remove-blob").map((a) => "digest" in a && a.digest)).toEqual(["m2", "c2", "l2", "orphan"]);
    expect(plan.find((a) => "digest" in a && a.digest === "orphan")!.reason).toContain("orphan");
  });
});

describe("planTrim", () => {
  test("oldest-used files go first until the total fits", () => {
    const files = [
      { path: "/c/new", disk: 4 * MB, used: 3 },
      { path: "/c/old", disk: 4 * MB, used: 1 },
      { path: "/c/mid", disk: 4 * MB, used: 2 },
    ];
    expect(planTrim(files, 5 * MB, "pip").map((a) => "path" in a && a.path)).toEqual(["/c/old", "/c/mid"]);
    expect(planTrim(files, 12 * MB, "pip")).toEqual([]);
  });
});

describe("planCompress", () => {
  test("unpacked entries unused for the minimum age, not running; --all takes every unpacked one", () => {
    const entries = [entry("stale", 1, 20), entry("fresh", 1, 2), entry("running", 1, 30), { ...entry("packed", 1, 40), dir: null, archive: "/r/packed.tar.zst" }];
    const running = new Set(["running"]);
    const pick = (all: boolean) => planCompress(entries, { minAgeMs: 14 * DAY, all, now, running }).map((a) => "digest" in a && a.digest);
    expect(pick(false)).toEqual(["stale"]);
    expect(pick(true)).toEqual(["stale", "fresh"]);
  });
});
