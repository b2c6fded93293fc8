import type { Knex } from 'knex';
import { DEFAULT_POOL_MAX, openDb } from '../../db/index.js';
import { migrationStatus } from '../../db/migrate.js';
import { workerPoolMax } from '../../jobs/commands.js';
import { fail, failed, ok, skip, type Check, type CheckContext, type Outcome } from '../check.js';

// Postgres: reachable (and the login works), migrations current, and
// max_connections enough for the processes that will run:
//   workers x (pool of JOBS_CONCURRENCY + 4, plus the LISTEN connection)
//   + servers x the serve pool + a few for commands (migrate, queue, doctor).

const COMMAND_CONNECTIONS = 3;

export function connectionsNeeded(ctx: Pick<CheckContext, 'workers' | 'servers' | 'config'>): { total: number; formula: string } {
  const perWorker = workerPoolMax(ctx.config.JOBS_CONCURRENCY) + 1;
  const total = ctx.workers * perWorker + ctx.servers * DEFAULT_POOL_MAX + COMMAND_CONNECTIONS;
  return {
    total,
    formula: `${ctx.workers} worker(s) x ${perWorker} (JOBS_CONCURRENCY ${ctx.config.JOBS_CONCURRENCY} + 4 pool + 1 LISTEN) + ${ctx.servers} serve x ${DEFAULT_POOL_MAX} + ${COMMAND_CONNECTIONS} for commands`,
  };
}

interface ServerFacts {
  version: string;
  max_connections: number;
  reserved: number;
  in_use: number;
}

async function serverFacts(db: Knex): Promise<ServerFacts> {
  // reserved_connections is Postgres 16+; current_setting(.., true) is NULL before.
  const { rows } = await db.raw<{ rows: ServerFacts[] }>(
    `SELECT current_setting('server_version') AS version,
            current_setting('max_connections')::int AS max_connections,
            current_setting('superuser_reserved_connections')::int
              + coalesce(nullif(current_setting('reserved_connections', true), '')::int, 0) AS reserved,
            (SELECT count(*)::int FROM pg_stat_activity WHERE backend_type = 'client backend') AS in_use`,
  );
  return rows[0]!;
}

function migrations(status: Awaited<ReturnType<typeof migrationStatus>>): Outcome {
  const name = 'migrations';
  if (status.unknown.length) {
    return { name, ...fail(`the database has migrations this Herald does not know: ${status.unknown.join(', ')}`, 'run the Herald version that migrated it (a newer one), or point DATABASE_URL elsewhere') };
  }
  if (status.pending.length) return { name, ...fail(`${status.pending.length} pending: ${status.pending.join(', ')}`, 'run `herald migrate`') };
  return { name, ...ok(`${status.applied.length} applied, none pending`) };
}

function connections(facts: ServerFacts, ctx: CheckContext): Outcome {
  const name = 'connections';
  const usable = facts.max_connections - facts.reserved;
  const need = connectionsNeeded(ctx);
  const detail = `max_connections ${facts.max_connections} (${usable} usable, ${facts.in_use} in use now); Herald needs ${need.total}: ${need.formula}`;
  if (need.total > usable) return { name, ...fail(detail, `raise max_connections to at least ${need.total + facts.reserved} (postgresql.conf, then restart), or lower JOBS_CONCURRENCY / --workers`) };
  return { name, ...ok(detail) };
}

export const postgresCheck: Check = {
  name: 'postgres',
  async run(ctx) {
    const url = ctx.config.DATABASE_URL;
    if (!url) {
      const why = 'DATABASE_URL unset: the embedded database (one process, for the demo and trying things out)';
      return [skip(why, 'set DATABASE_URL to a Postgres server for anything shared'), { name: 'migrations', ...skip('embedded database: migrated by every command') }, { name: 'connections', ...skip('embedded database: one connection') }];
    }
    const handle = await openDb({ databaseUrl: url, poolMax: 1, connectTimeoutMs: ctx.timeoutMs, log: ctx.log });
    const onAbort = () => void handle.close();
    ctx.signal.addEventListener('abort', onAbort);
    try {
      let facts: ServerFacts;
      try {
        facts = await serverFacts(handle.db);
      } catch (err) {
        const unreachable = 'Postgres did not answer';
        return [failed(err, { name: 'Postgres', url, setting: 'DATABASE_URL' }, 'check DATABASE_URL'), { name: 'migrations', ...skip(unreachable) }, { name: 'connections', ...skip(unreachable) }];
      }
      const where = new URL(url);
      return [
        ok(`PostgreSQL ${facts.version} at ${where.host}${where.pathname}`),
        migrations(await migrationStatus(handle.db)),
        connections(facts, ctx),
      ];
    } finally {
      ctx.signal.removeEventListener('abort', onAbort);
      await handle.close();
    }
  },
};
