import pino from 'pino';
import type { Knex } from 'knex';
import type { Logger } from '../../src/log.js';
import { REDIS_URL, redisPrefix, wipeRedisPrefix } from '../helpers/redis.js';
import { waitFor } from '../helpers/wait.js';
export { waitFor };
export { REDIS_URL, redisPrefix, wipeRedisPrefix };

// Shared by the test/jobs files: test job kinds, a quiet logger, Redis key
// prefixes per file, and a polling wait.

declare module '../../src/jobs/contract/types.js' {
  interface JobPayloads {
    'test-crash': { tag: string };
    'test-slow': { tag: string; ms: number; ignoreAbort?: boolean; alignEnd?: boolean };
  }
}


export const quietLog: Logger = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });

/** A Redis key prefix of this test file's own (several test files share one Redis). */



/** Side-effect table the test handlers write to, so tests can count real runs. */
export async function createRunsTable(db: Knex): Promise<void> {
  await db.raw(`CREATE TABLE IF NOT EXISTS test_job_runs (
    id serial PRIMARY KEY, job_id bigint NOT NULL, tag text NOT NULL, attempt integer NOT NULL, at timestamptz NOT NULL DEFAULT clock_timestamp())`);
  await db.raw(`CREATE TABLE IF NOT EXISTS test_job_effects (job_id bigint PRIMARY KEY)`);
}

export async function runsOf(db: Knex, tag?: string): Promise<{ job_id: number; tag: string; attempt: number }[]> {
  const q = db('test_job_runs').select('job_id', 'tag', 'attempt').orderBy('id');
  return tag === undefined ? q : q.where({ tag });
}

export async function jobStatuses(db: Knex): Promise<Record<string, number>> {
  const rows = await db('jobs').select('status').count<{ status: string; count: string | number }[]>({ count: '*' }).groupBy('status');
  return Object.fromEntries(rows.map((r) => [r.status, Number(r.count)]));
}
