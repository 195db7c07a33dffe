/**
 * silo's state database (SILO_HOME/state/silo.db, bun:sqlite, WAL). It indexes; it never holds blobs:
 * refs → manifest digest → layers, with sizes and times, for `silo cache` reports and gc.
 * Schema changes are numbered migrations appended to MIGRATIONS (never edit a shipped one); the index of
 * the last applied one is SQLite's user_version.
 */
import { Database } from "bun:sqlite";
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import { homePaths, type HomePaths } from "../core/paths.ts";

export const MIGRATIONS: string[] = [
  // 1: the image index
  `CREATE TABLE manifests (
     digest TEXT PRIMARY KEY,
     config_digest TEXT NOT NULL,
     platform TEXT NOT NULL,
     download_size INTEGER NOT NULL,
     unpacked_size INTEGER NOT NULL,
     created_at INTEGER NOT NULL,
     last_used INTEGER NOT NULL
   );
   CREATE TABLE refs (
     ref TEXT NOT NULL,
     platform TEXT NOT NULL,
     digest TEXT NOT NULL REFERENCES manifests(digest) ON DELETE CASCADE,
     index_digest TEXT,
     pulled_at INTEGER NOT NULL,
     PRIMARY KEY (ref, platform)
   );
   CREATE TABLE layers (
     digest TEXT PRIMARY KEY,
     media_type TEXT NOT NULL,
     size INTEGER NOT NULL,
     last_used INTEGER NOT NULL
   );
   CREATE TABLE manifest_layers (
     manifest TEXT NOT NULL REFERENCES manifests(digest) ON DELETE CASCADE,
     position INTEGER NOT NULL,
     layer TEXT NOT NULL REFERENCES layers(digest),
     PRIMARY KEY (manifest, position)
   );
   CREATE INDEX manifest_layers_layer ON manifest_layers(layer);`,
];

const open = new Map<string, Database>();

/** The state database of `home`, migrated; one handle per path per process. */
export function openDb(home: HomePaths = homePaths()): Database {
  const cached = open.get(home.db);
  if (cached) return cached;
  mkdirSync(dirname(home.db), { recursive: true });
  const db = new Database(home.db, { create: true });
  // busy_timeout first: switching to WAL and migrating wait for a concurrent silo instead of failing.
  db.exec("PRAGMA busy_timeout = 10000; PRAGMA journal_mode = WAL; PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL;");
  migrate(db);
  open.set(home.db, db);
  return db;
}

export function closeDb(home: HomePaths = homePaths()) {
  open.get(home.db)?.close();
  open.delete(home.db);
}

/** Apply the migrations this database has not seen, in one write transaction. */
export function migrate(db: Database) {
  const version = () => (db.query("PRAGMA user_version").get() as { user_version: number }).user_version;
  if (version() >= MIGRATIONS.length) return;
  // Re-read inside the write transaction: another process may have migrated while we looked.
  db.transaction(() => {
    for (let v = version(); v < MIGRATIONS.length; v++) {
      db.exec(MIGRATIONS[v]!);
      db.exec(`PRAGMA user_version = ${v + 1}`);
    }
  }).immediate();
}

export interface PullRecord {
  ref: string;
  platform: string;
  digest: string;
  indexDigest?: string;
  configDigest: string;
  layers: { digest: string; mediaType: string; size: number }[];
  downloadSize: number;
  unpackedSize: number;
}

/** Remember a pulled (or re-resolved) image: its ref, manifest and layers. */
export function recordPull(db: Database, r: PullRecord, now = Date.now()) {
  db.transaction(() => {
    db.query(
      `INSERT INTO manifests (digest, config_digest, platform, download_size, unpacked_size, created_at, last_used)
       VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)
       ON CONFLICT(digest) DO UPDATE SET last_used = ?6,
         unpacked_size = CASE WHEN ?5 > 0 THEN ?5 ELSE unpacked_size END`,
    ).run(r.digest, r.configDigest, r.platform, r.downloadSize, r.unpackedSize, now);
    const layer = db.query(
      `INSERT INTO layers (digest, media_type, size, last_used) VALUES (?1, ?2, ?3, ?4)
       ON CONFLICT(digest) DO UPDATE SET last_used = ?4`,
    );
    const link = db.query(`INSERT OR REPLACE INTO manifest_layers (manifest, position, layer) VALUES (?1, ?2, ?3)`);
    r.layers.forEach((l, i) => {
      layer.run(l.digest, l.mediaType, l.size, now);
      link.run(r.digest, i, l.digest);
    });
    db.query(
      `INSERT INTO refs (ref, platform, digest, index_digest, pulled_at) VALUES (?1, ?2, ?3, ?4, ?5)
       ON CONFLICT(ref, platform) DO UPDATE SET digest = ?3, index_digest = ?4, pulled_at = ?5`,
    ).run(r.ref, r.platform, r.digest, r.indexDigest ?? null, now);
  }).immediate();
}

/** The manifest digest a ref resolved to when last pulled for `platform`. */
export function digestForRef(db: Database, ref: string, platform: string): string | null {
  const row = db.query("SELECT digest FROM refs WHERE ref = ?1 AND platform = ?2").get(ref, platform) as { digest: string } | null;
  return row?.digest ?? null;
}

export interface ImageRow {
  digest: string;
  configDigest: string;
  platform: string;
  refs: string[];
  downloadSize: number;
  unpackedSize: number;
  createdAt: number;
  lastUsed: number;
}

/** Every indexed image, most recently used first. */
export function listImages(db: Database): ImageRow[] {
  const rows = db
    .query(
      `SELECT m.digest, m.config_digest AS configDigest, m.platform, m.download_size AS downloadSize,
              m.unpacked_size AS unpackedSize, m.created_at AS createdAt, m.last_used AS lastUsed,
              group_concat(r.ref, char(10)) AS refs
       FROM manifests m LEFT JOIN refs r ON r.digest = m.digest
       GROUP BY m.digest ORDER BY m.last_used DESC`,
    )
    .all() as (Omit<ImageRow, "refs"> & { refs: string | null })[];
  return rows.map((r) => ({ ...r, refs: r.refs ? r.refs.split("\n").sort() : [] }));
}

export interface LayerRow {
  digest: string;
  mediaType: string;
  size: number;
  lastUsed: number;
  /** How many indexed images use it; 0 means collectable. */
  users: number;
}

export function listLayers(db: Database): LayerRow[] {
  return db
    .query(
      `SELECT l.digest, l.media_type AS mediaType, l.size, l.last_used AS lastUsed,
              (SELECT count(DISTINCT manifest) FROM manifest_layers ml WHERE ml.layer = l.digest) AS users
       FROM layers l ORDER BY l.last_used DESC`,
    )
    .all() as LayerRow[];
}

/** Layer digests of an image, bottom first. */
export function layersOf(db: Database, manifest: string): string[] {
  return (db.query("SELECT layer FROM manifest_layers WHERE manifest = ?1 ORDER BY position").all(manifest) as { layer: string }[]).map((r) => r.layer);
}

/** Drop an image from the index; returns the layers no other image uses (their blobs may go). */
export function forgetImage(db: Database, digest: string): string[] {
  return db.transaction(() => {
    const layers = layersOf(db, digest);
    db.query("DELETE FROM manifests WHERE digest = ?1").run(digest);
    const orphan: string[] = [];
    for (const l of new Set(layers)) {
      const used = db.query("SELECT 1 FROM manifest_layers WHERE layer = ?1 LIMIT 1").get(l);
      if (!used) {
        db.query("DELETE FROM layers WHERE digest = ?1").run(l);
        orphan.push(l);
      }
    }
    return orphan;
  }).immediate();
}
