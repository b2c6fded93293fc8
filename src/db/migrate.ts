import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Knex } from 'knex';
import pg from 'pg';
import { pgConnectionOf } from './index.js';

// Migrations run from code, named without their extension, so a .ts file run
// by tsx and the same file compiled to .js keep one history.
const MIGRATIONS_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../migrations');

interface Migration {
  up(knex: Knex): Promise<void>;
  down?(knex: Knex): Promise<void>;
}

const source: Knex.MigrationSource<string> = {
  async getMigrations() {
    return fs
      .readdirSync(MIGRATIONS_DIR)
      .filter((f) => /^\d{4}_[\w-]+\.(ts|js)$/.test(f))
      .map((f) => f.replace(/\.(ts|js)$/, ''))
      .sort();
  },
  getMigrationName: (name) => name,
  async getMigration(name) {
    const file = ['ts', 'js'].map((ext) => path.join(MIGRATIONS_DIR, `${name}.${ext}`)).find((f) => fs.existsSync(f));
    if (!file) throw new Error(`migration ${name} not found in ${MIGRATIONS_DIR}`);
    const mod = (await import(pathToFileURL(file).href)) as Migration;
    return { up: mod.up, down: mod.down ?? (async () => {}) };
  },
};

// Arbitrary but fixed: pg_advisory_lock key for "a migration runs" ('migr').
const MIGRATE_LOCK_KEY = 0x6d696772;

/**
 * Runs the migrations not yet run. Several processes may call it at once
 * (hosts starting together): they take turns on a session advisory lock,
 * held on a connection of its own so the pool's size does not matter.
 * knex's own lock row is not enough on an empty database: two migrators
 * both create its history tables, and one fails with "already exists".
 */
export async function migrateLatest(db: Knex): Promise<string[]> {
  const connection = pgConnectionOf(db);
  const lock = connection ? new pg.Client(typeof connection === 'string' ? { connectionString: connection } : connection) : null;
  if (lock) {
    // A dropped connection fails the migration's own queries; it must not also crash the process.
    lock.on('error', () => undefined);
    await lock.connect();
    await lock.query('SELECT pg_advisory_lock($1)', [MIGRATE_LOCK_KEY]);
  }
  try {
    const [, applied] = (await db.migrate.latest({ migrationSource: source })) as [number, string[]];
    return applied;
  } finally {
    // Ending the session releases the lock, also when the unlock is never sent.
    await lock?.end();
  }
}

/**
 * Migrations this code has that the database has not run, oldest first
 * (empty: the schema is current, or newer, as during a rolling upgrade).
 * Reads only; a database never migrated lacks them all.
 */
export async function pendingMigrations(db: Knex): Promise<string[]> {
  const all = await source.getMigrations([]);
  const { rows } = await db.raw(`SELECT to_regclass('knex_migrations') IS NOT NULL AS present`);
  if (!(rows as { present: boolean }[])[0]?.present) return all;
  const done = new Set(((await db.raw(`SELECT name FROM knex_migrations`)).rows as { name: string }[]).map((r) => r.name));
  return all.filter((name) => !done.has(name));
}

export class SchemaBehindError extends Error {
  constructor(readonly pending: string[]) {
    super(`the database schema is behind this release (${pending.length} migration(s) not run: ${pending.join(', ')}); run \`herald migrate\` first`);
    this.name = 'SchemaBehindError';
  }
}

/**
 * Long-running processes refuse a schema older than their code: new code on
 * an old schema fails in ways no retry fixes, and the exit lets a supervisor
 * restart them once `herald migrate` has run (docs/deploy.md).
 */
export async function requireCurrentSchema(db: Knex): Promise<void> {
  const pending = await pendingMigrations(db);
  if (pending.length > 0) throw new SchemaBehindError(pending);
}

export interface MigrationStatus {
  applied: string[];
  /** Known to this code, not yet applied: run `herald migrate`. */
  pending: string[];
  /** Applied, but unknown to this code: the database was migrated by a newer Herald. */
  unknown: string[];
}

/**
 * Which migrations the database has, read without writing anything (knex's
 * migrate.list would create its bookkeeping tables in an empty database).
 */
export async function migrationStatus(db: Knex): Promise<MigrationStatus> {
  const known = await source.getMigrations([]);
  const { rows: present } = await db.raw<{ rows: Array<{ present: boolean }> }>(`SELECT to_regclass('knex_migrations') IS NOT NULL AS present`);
  const applied = present[0]?.present
    ? (await db.raw<{ rows: Array<{ name: string }> }>('SELECT name FROM knex_migrations ORDER BY id')).rows.map((r) => r.name)
    : [];
  const done = new Set(applied);
  return { applied, pending: known.filter((m) => !done.has(m)), unknown: applied.filter((m) => !known.includes(m)) };
}
