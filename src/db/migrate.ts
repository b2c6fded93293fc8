import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Knex } from 'knex';

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

export async function migrateLatest(db: Knex): Promise<string[]> {
  const [, applied] = (await db.migrate.latest({ migrationSource: source })) as [number, string[]];
  return applied;
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
