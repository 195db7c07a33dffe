// What the sandbox reads of the host in /proc/self/mountinfo (issue 12, item 11). overlayfs shows its
// options as they were given, so the stage mounts the root and the .git overlay with names relative to
// the run dir (symlinks there name the layers): SILO_HOME, and with it the user's name, is not in their
// options. What bwrap binds shows its source path within its filesystem, and cannot be hidden: the
// project (/workspace) and, where a tool has them, its cache directories (the README lists what stays).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { makeProject, runSilo } from "../../helpers/silo.ts";
import { cleanUp, installedHome, ok } from "./_helpers.ts";

const T = 60_000;
const PRINT = "print(open('/proc/self/mountinfo').read())";

/** The mount options of the overlay mounted at `target`, from mountinfo text. */
function overlayOptions(mountinfo: string, target: string): string {
  const line = mountinfo.split("\n").find((l) => l.split(" ")[4] === target && l.includes(" - overlay "));
  if (!line) throw new Error(`no overlay at ${target} in:\n${mountinfo}`);
  return line.split(" - overlay ")[1]!;
}

describe("isolation: host paths in /proc/self/mountinfo", () => {
  let home: string;
  beforeAll(async () => {
    home = await installedHome("python");
  }, T);
  afterAll(cleanUp);

  for (const stage of ["native", "sh"]) {
    test(`the overlays' options name no host path (${stage} stage); the project's path stays visible`, async () => {
      const project = makeProject();
      mkdirSync(join(project, ".git/objects"), { recursive: true });
      const env: Record<string, string> = stage === "sh" ? { SILO_STAGE: "sh" } : {};
      const r = ok(await runSilo(["run", "python", "-c", PRINT], { home, cwd: project, env }));
      const root = overlayOptions(r.stdout, "/");
      expect(root).toContain("lowerdir=l0,upperdir=t/u,workdir=t/w"); // the writable layer: a tmpfs on t
      expect(root).not.toContain("upperdir=/");
      const git = overlayOptions(r.stdout, "/workspace/.git");
      expect(git).toMatch(/upperdir=\.\.\/\d+-[0-9a-z]+-git\/upper,workdir=\.\.\/\d+-[0-9a-z]+-git\/work/);
      expect(root + git).not.toContain(home);
      // a bind mount shows its source's path within its filesystem: the project's cannot be hidden
      const ws = r.stdout.split("\n").find((l) => l.split(" ")[4] === "/workspace")!.split(" ")[3]!;
      expect(ws.length > 1 && project.endsWith(ws)).toBe(true);
    }, T);
  }
});
