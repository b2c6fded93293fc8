import fs from 'node:fs';
import path from 'node:path';
import knexFactory, { type Knex } from 'knex';
import pg from 'pg';
import ClientPgLite from 'knex-pglite';

// Postgres is the source of truth. With DATABASE_URL unset Herald opens an
// embedded PGlite database instead: one connection, one process (a lockfile
// stops a second process from opening the same directory), demo use only.

// pg returns int8 and numeric as strings; counts and ids in Herald fit in a
// double, and exact decimals (money, duty amounts) stay numeric -> string.
pg.types.setTypeParser(pg.types.builtins.INT8, (v) => Number.parseInt(v, 10));

export type Db = Knex;
export type DbOrTrx = Knex | Knex.Transaction;

/** Whether `db` talks to a Postgres server through node-postgres (false: embedded PGlite). */
export function isNodePostgres(db: Knex | Knex.Transaction): boolean {
  const client = (db.client.config as Knex.Config).client;
  return client === 'pg' || client === 'postgres' || client === 'postgresql';
}

/**
 * The settings to open a connection of one's own to the same Postgres (LISTEN,
 * after-commit NOTIFY, the migration lock), or null for the embedded database.
 */
export function pgConnectionOf(db: Knex | Knex.Transaction): string | pg.ClientConfig | null {
  if (!isNodePostgres(db)) return null;
  const c = (db.client.config as Knex.Config).connection;
  if (typeof c === 'string') return c;
  if (c && typeof c === 'object') return c as pg.ClientConfig;
  return null;
}

export interface OpenDbOptions {
  databaseUrl?: string | undefined;
  dataDir?: string;
  poolMax?: number;
}

export interface DbHandle {
  db: Knex;
  embedded: boolean;
  close(): Promise<void>;
}

export async function openDb(opts: OpenDbOptions): Promise<DbHandle> {
  if (opts.databaseUrl) {
    const db = knexFactory({
      client: 'pg',
      connection: opts.databaseUrl,
      pool: { min: 0, max: opts.poolMax ?? 10 },
    });
    return { db, embedded: false, close: () => db.destroy() };
  }
  const dir = path.resolve(opts.dataDir ?? '.herald', 'pgdata');
  fs.mkdirSync(dir, { recursive: true });
  const release = takeLock(`${dir}.lock`);
  const db = knexFactory({ client: ClientPgLite, dialect: 'postgres', connection: { filename: dir } } as Knex.Config);
  return {
    db,
    embedded: true,
    async close() {
      await db.destroy();
      release();
    },
  };
}

function takeLock(file: string): () => void {
  try {
    fs.writeFileSync(file, String(process.pid), { flag: 'wx' });
  } catch (err) {
    const holder = Number(fs.readFileSync(file, 'utf8'));
    if (holder && isAlive(holder)) {
      throw new Error(`embedded database is in use by process ${holder} (${file}); set DATABASE_URL to share a real Postgres`, { cause: err });
    }
    fs.writeFileSync(file, String(process.pid));
  }
  return () => fs.rmSync(file, { force: true });
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
