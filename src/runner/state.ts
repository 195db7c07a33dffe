/**
 * Running sandboxes, for `silo status`: one row per sandbox in SILO_HOME/state/sandboxes.db (its own file,
 * so it never contends with the cache index). A sandbox registers when it starts and removes itself when
 * it ends; a silo killed before that leaves a row whose pid is gone (or reused by another process, which
 * the recorded start time exposes), and listing reaps those.
 */
import type { Database } from "bun:sqlite";
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { processStartTime } from "./run.ts";
import { isAlive } from "../core/fs.ts";

export interface SandboxEntry {
  id: string;
  tool: string;
  /** Project root on the host. */
  project: string;
  /** pid of the silo process that runs the sandbox. */
  pid: number;
  driver: string;
  /** Milliseconds since the epoch. */
  started: number;
}

const SCHEMA = `CREATE TABLE IF NOT EXISTS sandboxes (
  id TEXT PRIMARY KEY, tool TEXT NOT NULL, project TEXT NOT NULL, pid INTEGER NOT NULL,
  pid_start INTEGER, driver TEXT NOT NULL, started INTEGER NOT NULL)`;

export const stateDbPath = (home: string) => join(home, "state", "sandboxes.db");

async function openDb(home: string): Promise<Database> {
  const { Database } = await import("bun:sqlite");
  mkdirSync(join(home, "state"), { recursive: true });
  const db = new Database(stateDbPath(home), { create: true });
  // Twenty sandboxes may start at once: wait for the lock rather than fail.
  db.exec("PRAGMA busy_timeout = 5000");
  db.exec("PRAGMA journal_mode = WAL");
  // Every `silo run` writes here twice: no fsync (a lost row after a power cut is a sandbox that is gone too).
  db.exec("PRAGMA synchronous = OFF");
  db.exec(SCHEMA);
  return db;
}

/** Record a started sandbox; returns the function that removes the record. */
export async function registerSandbox(home: string, e: SandboxEntry): Promise<() => void> {
  const db = await openDb(home);
  db.query("INSERT OR REPLACE INTO sandboxes VALUES (?, ?, ?, ?, ?, ?, ?)").run(
    e.id, e.tool, e.project, e.pid, processStartTime(e.pid), e.driver, e.started,
  );
  return () => {
    try {
      db.query("DELETE FROM sandboxes WHERE id = ?").run(e.id);
    } finally {
      db.close();
    }
  };
}

/** The sandboxes that are running now, oldest first; rows of dead silo processes are deleted. */
export async function listSandboxes(home: string): Promise<SandboxEntry[]> {
  const db = await openDb(home);
  try {
    const rows = db.query("SELECT * FROM sandboxes ORDER BY started").all() as (SandboxEntry & { pid_start: number | null })[];
    const live: SandboxEntry[] = [];
    for (const r of rows) {
      if (!isRunning(r.pid, r.pid_start)) {
        db.query("DELETE FROM sandboxes WHERE id = ?").run(r.id);
        continue;
      }
      live.push({ id: r.id, tool: r.tool, project: r.project, pid: r.pid, driver: r.driver, started: r.started });
    }
    return live;
  } finally {
    db.close();
  }
}

function isRunning(pid: number, startedAt: number | null): boolean {
  const now = processStartTime(pid);
  if (now !== null) return startedAt === null || now === startedAt;
  if (existsSync("/proc/self/stat")) return false;
  return isAlive(pid); // no /proc (macOS): the pid alone has to do
}
