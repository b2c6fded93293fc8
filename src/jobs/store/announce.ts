import type { Knex } from 'knex';
import pg from 'pg';
import { pgConnectionOf } from '../../db/index.js';
import { CHANNEL } from './runs.js';

// After-commit announcements for the rows enqueueJob writes.
//
// Why not just the insert trigger's NOTIFY: Postgres serialises the commits
// of every transaction that issued a NOTIFY and wrote data, holding one
// cluster-wide lock through its WAL flush, so group commit stops and one-row
// enqueues top out near 1/fsync per second (measured here: p95 of the
// enqueue call went from ~14 ms to ~500 ms between 50 and 200 enqueues/s).
// A transaction that only NOTIFYs writes no WAL and holds the lock for
// microseconds, so enqueueJob marks its rows writer_announces (the trigger
// stays quiet) and NOTIFYs them from a small pool of its own right after the
// caller's commit. Fire-and-forget: an announcement lost to a crash or an
// outage is the sweeper's, like any other missed bell.

const pools = new Map<string, pg.Pool>();

function poolFor(connection: string | pg.ClientConfig): pg.Pool {
  const key = typeof connection === 'string' ? connection : JSON.stringify(connection);
  let pool = pools.get(key);
  if (!pool) {
    const base = typeof connection === 'string' ? { connectionString: connection } : connection;
    // Idle connections close after a second and never keep a process alive.
    pool = new pg.Pool({ ...base, max: 2, idleTimeoutMillis: 1000, allowExitOnIdle: true });
    // An idle connection killed by the server (restart, dropped test database) must not crash the process.
    pool.on('error', () => undefined);
    pools.set(key, pool);
  }
  return pool;
}

/** NOTIFY the workers about committed rows (with each row's delay until due). Never throws. */
export function announceJobs(connection: string | pg.ClientConfig, ids: readonly number[]): void {
  if (ids.length === 0) return;
  poolFor(connection)
    .query(
      `SELECT pg_notify($1, format('%s:%s:%s', id, greatest(0, ceil(extract(epoch FROM scheduled_at - clock_timestamp()) * 1000))::bigint, kind))
         FROM jobs WHERE id = ANY($2::bigint[]) AND status IN ('pending', 'failed')`,
      [CHANNEL, ids],
    )
    .catch(() => undefined);
}

const pending = new WeakMap<object, number[]>();

interface TrxInternals {
  executionPromise?: Promise<unknown>;
  parentTransaction?: Knex.Transaction;
}

/**
 * Decided before the insert: how a row written through `db` gets announced.
 * Returns a function to call with the new row's id (it NOTIFYs once the
 * caller's outermost transaction commits, never on rollback), or null when
 * that cannot be done here (embedded database; a transaction knex gives no
 * execution promise for) and the insert trigger must do it.
 */
export function planAnnouncement(db: Knex | Knex.Transaction): ((id: number) => void) | null {
  const connection = pgConnectionOf(db);
  if (!connection) return null;
  if (!db.isTransaction) return (id) => announceJobs(connection, [id]); // autocommit: already committed
  let top = db as Knex.Transaction & TrxInternals;
  // A savepoint's promise settles before the real commit: wait for the outermost transaction.
  while (top.parentTransaction) top = top.parentTransaction as Knex.Transaction & TrxInternals;
  const committed = top.executionPromise;
  if (!committed) return null;
  return (id) => {
    let ids = pending.get(top);
    if (!ids) {
      const list: number[] = [];
      pending.set(top, list);
      committed.then(
        () => announceJobs(connection, list),
        () => undefined, // rolled back: nothing to announce
      );
      ids = list;
    }
    ids.push(id);
  };
}
