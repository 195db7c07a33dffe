// Concurrent pulls of one image on one machine download and unpack it once, and nobody sees a half-made rootfs.
import { afterAll, expect, test } from "bun:test";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { pullImage } from "../../../src/image/pull.ts";
import { fixtureRegistry } from "../../helpers/silo.ts";
import { freshHome, removeHomes } from "./_registry.ts";

afterAll(removeHomes);

test("two processes and a third in-process pull of python:3.11-slim fetch each layer once", async () => {
  const blobGets = new Map<string, number>();
  const proxy = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    async fetch(req) {
      const u = new URL(req.url);
      const m = /\/blobs\/(sha256:[a-f0-9]{64})$/.exec(u.pathname);
      if (m && req.method === "GET") blobGets.set(m[1]!, (blobGets.get(m[1]!) ?? 0) + 1);
      const headers = new Headers(req.headers);
      headers.delete("host");
      return fetch(`${fixtureRegistry}${u.pathname}${u.search}`, { headers, redirect: "manual" });
    },
  });
  try {
    const home = freshHome();
    const mirror = `http://127.0.0.1:${proxy.port}`;
    const child = () =>
      Bun.spawn(["bun", join(import.meta.dir, "_pull-child.ts"), home.home, "python:3.11-slim", mirror], { stdout: "pipe", stderr: "pipe" });
    const kids = [child(), child()];
    // settled into a value at once, so a failing child cannot leave it as an unhandled rejection
    const inProcess = pullImage("python:3.11-slim", { home, mirrors: { "docker.io": mirror }, quiet: true }).catch((e: Error) => e);
    const results = await Promise.all(
      kids.map(async (k) => {
        const [out, err, code] = await Promise.all([new Response(k.stdout).text(), new Response(k.stderr).text(), k.exited]);
        expect({ code, err }).toEqual({ code: 0, err: "" });
        return JSON.parse(out) as { digest: string; rootfs: string };
      }),
    );
    const mine = await inProcess;
    if (mine instanceof Error) throw mine;
    expect(new Set([mine.rootfs, ...results.map((r) => r.rootfs)]).size).toBe(1);
    // every layer and the config came over the wire exactly once
    expect(blobGets.size).toBeGreaterThanOrEqual(3);
    for (const [digest, n] of blobGets) expect({ digest, n }).toEqual({ digest, n: 1 });
    expect(readdirSync(home.rootfs).sort()).toEqual([mine.digest.slice(7), `${mine.digest.slice(7)}.json`]);
  } finally {
    proxy.stop(true);
  }
});
