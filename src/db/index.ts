import fs from 'node:fs';
import path from 'node:path';
import knexFactory, { type Knex } from 'knex';
import pg from 'pg';
import type { Logger } from '../log.js';

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

/** A pool of one connection (the embedded database: knex-pglite forces it). */
export function isSingleConnection(db: Knex): boolean {
  return ((db.client.config as Knex.Config).pool?.max ?? 10) <= 1;
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

/**
 * What a Herald process's connections are called in pg_stat_activity, so
 * they can be traced to it (and a dead process's told apart).
 */
export function connectionName(pid: number): string {
  return `herald pid ${pid}`;
}

export interface OpenDbOptions {
  databaseUrl?: string | undefined;
  dataDir?: string;
  poolMax?: number;
  /** Where knex's own warnings go (default: its console.log, which would mix into --json output). */
  log?: Logger;
  /** Give up opening a connection after this long (default: pg's, none; knex's pool waits 60 s). */
  connectTimeoutMs?: number;
}

/** Connections `herald serve` (and any command) may hold at once, unless told otherwise. */
export const DEFAULT_POOL_MAX = 10;

export interface DbHandle {
  db: Knex;
  embedded: boolean;
  close(): Promise<void>;
}

export async function openDb(opts: OpenDbOptions): Promise<DbHandle> {
  if (opts.databaseUrl) {
    const db = knexFactory({
      client: 'pg',
      connection: {
        connectionString: opts.databaseUrl,
        // An application_name in the URL (or PGAPPNAME) wins.
        fallback_application_name: connectionName(process.pid),
        ...(opts.connectTimeoutMs && { connectionTimeoutMillis: opts.connectTimeoutMs }),
      } as Knex.PgConnectionConfig,
      pool: { min: 0, max: opts.poolMax ?? DEFAULT_POOL_MAX },
      ...(opts.connectTimeoutMs && { acquireConnectionTimeout: opts.connectTimeoutMs }),
      ...(opts.log && { log: knexLog(opts.log) }),
    });
    return { db, embedded: false, close: () => db.destroy() };
  }
  const dir = path.resolve(opts.dataDir ?? '.herald', 'pgdata');
  fs.mkdirSync(dir, { recursive: true });
  const release = takeLock(`${dir}.lock`);
  // Loaded only here: PGlite is large and a server-backed process never needs it.
  const { default: ClientPgLite } = await import('knex-pglite');
  const db = knexFactory({
    client: ClientPgLite, dialect: 'postgres', connection: { filename: dir }, ...(opts.log && { log: knexLog(opts.log) }),
  } as Knex.Config);
  return {
    db,
    embedded: true,
    async close() {
      await db.destroy();
      release();
    },
  };
}

/**
 * knex logs with console.log, stack included ("Acquire connection error: ...
 * 9 frames"). Its failed connection attempt also rejects the query that
 * needed it, and the caller reports that, so it is debug here; the rest keep
 * their level, first line only (stacks are for HERALD_DEBUG / LOG_LEVEL=debug).
 */
export function knexLog(log: Logger): NonNullable<Knex.Config['log']> {
  const firstLine = (m: unknown) => (typeof m === 'string' ? m : m instanceof Error ? m.message : String(m)).split('\n')[0]!;
  return {
    warn: (m: unknown) => (/^Acquire connection error/.test(firstLine(m)) ? log.debug(firstLine(m)) : log.warn(firstLine(m))),
    error: (m: unknown) => log.error(firstLine(m)),
    deprecate: (m: unknown) => log.debug(firstLine(m)),
    debug: (m: unknown) => log.debug(firstLine(m)),
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
