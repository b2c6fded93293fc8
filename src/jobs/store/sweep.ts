import type { Knex } from 'knex';
import { NOW, rows, ts, type At, type Db } from './runs.js';
import type { JobRow } from '../contract/types.js';
import type { WorkerRow } from './workers.js';

// The sweeper's SQL: stuck-row resets, pages of due rows to re-ring, and the
// lock that lets one sweeper at a time do the resets.

// Arbitrary but fixed: pg_try_advisory_xact_lock key for "a sweeper runs".
export const SWEEPER_LOCK_KEY = 0x6a6f6273; // 'jobs'
// ... and for "a worker resets dead workers' jobs" (after every heartbeat of every worker: one at a time is enough).
export const REAPER_LOCK_KEY = 0x6a6f6277; // 'jobw'

export interface KindLimits {
  kind: string;
  /** Processing with no heartbeat for this long counts as stuck (3x the kind's timeout). */
  stuckAfterMs: number;
  maxStalls: number;
}

function kindsTable(kinds: readonly KindLimits[]): { sql: string; bindings: unknown[] } {
  if (kinds.length === 0) return { sql: 'SELECT NULL::text AS kind, NULL::bigint AS stuck_ms, NULL::int AS max_stalls WHERE false', bindings: [] };
  return {
    sql: `SELECT * FROM (VALUES ${kinds.map(() => '(?::text, ?::bigint, ?::int)').join(', ')}) AS k (kind, stuck_ms, max_stalls)`,
    bindings: kinds.flatMap((k) => [k.kind, k.stuckAfterMs, k.maxStalls]),
  };
}

/**
 * The shared end of every reset: the rows `targets` selects (id, max_stalls,
 * why) go back to pending with stall_count + 1 and their attempt given back
 * (a dead or hung worker is not the job's fault), or to failed_permanent
 * once stall_count exceeds max_stalls; each reset run is written to
 * job_attempts with `outcome`, in the same statement.
 */
function resetRunsSql(targets: string, outcome: 'stalled' | 'worker_lost'): string {
  return `${targets},
     moved AS (
       UPDATE jobs j
          SET status = CASE WHEN j.stall_count + 1 > s.max_stalls THEN 'failed_permanent' ELSE 'pending' END,
              finished_at = CASE WHEN j.stall_count + 1 > s.max_stalls THEN ${NOW} END,
              stall_count = j.stall_count + 1,
              attempts = greatest(j.attempts - 1, 0),
              claim_token = NULL,
              last_error = CASE WHEN j.stall_count + 1 > s.max_stalls
                                THEN format('stalled %s times (limit %s): each run''s worker died or stopped heartbeating', j.stall_count + 1, s.max_stalls)
                                ELSE j.last_error END,
              error_class = CASE WHEN j.stall_count + 1 > s.max_stalls THEN 'stalled' ELSE j.error_class END
         FROM targets s
        WHERE j.id = s.id AND j.status = 'processing'
        RETURNING j.*, s.why
     ), history AS (
       INSERT INTO job_attempts (job_id, attempt, started_at, finished_at, outcome, error_class, error, duration_ms, worker_id)
       SELECT id, attempts + 1, started_at, ${NOW}, '${outcome}', 'stalled', format('%s (stall %s)', why, stall_count),
              greatest(0, round(extract(epoch FROM ${NOW} - started_at) * 1000))::int, worker_id
         FROM moved
     )`;
}

/**
 * Rows stuck in processing (no heartbeat for stuckAfterMs: a run hung in a
 * live worker, or one claimed by a worker too old to register) are reset as
 * stalls (resetRunsSql). Kinds not in `kinds` use `fallback`. Pass `ids` to
 * limit it (admin unstick).
 */
export async function resetStuckJobs(
  db: Db,
  kinds: readonly KindLimits[],
  fallback: Omit<KindLimits, 'kind'>,
  at?: At,
  ids?: readonly number[],
): Promise<JobRow[]> {
  const k = kindsTable(kinds);
  const idFilter = ids ? `AND j.id = ANY(?::bigint[])` : '';
  const moved = await rows<JobRow & { why: string }>(
    db,
    `${resetRunsSql(
      `WITH k AS (${k.sql}),
       targets AS (
         SELECT j.id, coalesce(k.max_stalls, ?) AS max_stalls, format('no heartbeat since %s', j.heartbeat_at) AS why
           FROM jobs j LEFT JOIN k ON k.kind = j.kind
          WHERE j.status = 'processing' ${idFilter}
            AND coalesce(j.heartbeat_at, j.started_at) < ${NOW} - coalesce(k.stuck_ms, ?) * interval '1 millisecond'
          FOR UPDATE OF j SKIP LOCKED
       )`,
      'stalled',
    )}
     SELECT * FROM moved ORDER BY id`,
    [...k.bindings, fallback.maxStalls, ...(ids ? [ids] : []), ts(at), fallback.stuckAfterMs, ts(at), ts(at), ts(at)],
  );
  return moved.map(({ why: _, ...row }) => row);
}

export type LostWorker = Pick<WorkerRow, 'id' | 'pid' | 'host' | 'heartbeat_at'>;

/**
 * Workers that missed their heartbeats for lostAfterMs are deleted, and in
 * the same statement every processing row claimed by them, or by a worker
 * that no longer exists (it stopped while a handler ignored its abort, or a
 * claim committed just after its worker was reaped), is reset as
 * `worker_lost` (resetRunsSql). Rows claimed by live workers are the
 * stuck rule's (resetStuckJobs).
 */
export async function resetJobsOfLostWorkers(
  db: Db,
  kinds: readonly KindLimits[],
  fallback: Omit<KindLimits, 'kind'>,
  lostAfterMs: number,
  at?: At,
): Promise<{ workers: LostWorker[]; jobs: JobRow[] }> {
  const k = kindsTable(kinds);
  // The NOT EXISTS sees the statement's snapshot, where the dead workers still exist: hence "dead or absent".
  const out = await rows<{ workers: LostWorker[] } & Partial<JobRow & { why: string }>>(
    db,
    `${resetRunsSql(
      `WITH k AS (${k.sql}),
       dead AS (
         DELETE FROM job_workers WHERE heartbeat_at < ${NOW} - ? * interval '1 millisecond'
         RETURNING id, pid, host, heartbeat_at
       ),
       targets AS (
         SELECT j.id, coalesce(k.max_stalls, ?) AS max_stalls,
                CASE WHEN d.id IS NULL THEN format('worker %s is gone', j.worker_id)
                     ELSE format('worker lost: worker %s (pid %s on %s) last heartbeat %s', d.id, d.pid, d.host, d.heartbeat_at) END AS why
           FROM jobs j LEFT JOIN k ON k.kind = j.kind LEFT JOIN dead d ON d.id = j.worker_id
          WHERE j.status = 'processing' AND j.worker_id IS NOT NULL
            AND (d.id IS NOT NULL OR NOT EXISTS (SELECT 1 FROM job_workers w WHERE w.id = j.worker_id))
          FOR UPDATE OF j SKIP LOCKED
       )`,
      'worker_lost',
    )}
     SELECT w.workers, m.* FROM (SELECT coalesce(json_agg(dead), '[]') AS workers FROM dead) w LEFT JOIN moved m ON true ORDER BY m.id`,
    [...k.bindings, ts(at), lostAfterMs, fallback.maxStalls, ts(at), ts(at), ts(at)],
  );
  const workers = (out[0]?.workers ?? []).map((w) => ({ ...w, id: Number(w.id), heartbeat_at: new Date(w.heartbeat_at) }));
  const jobs = out.filter((r) => r.id !== null && r.id !== undefined).map(({ workers: _w, why: _, ...row }) => row as JobRow);
  return { workers, jobs };
}

/** One page of due rows, in (scheduled_at, id) order, after the given cursor. */
export async function listDueJobs(
  db: Db,
  opts: { after?: { scheduledAt: Date; id: number } | null; limit: number; at?: At; kind?: string; skipKinds?: readonly string[] | undefined },
): Promise<{ id: number; scheduled_at: Date }[]> {
  const after = opts.after ? `AND (scheduled_at, id) > (?::timestamptz, ?)` : '';
  const kind = opts.kind ? `AND kind = ?` : '';
  const skip = opts.skipKinds?.length ? `AND kind <> ALL(?::text[])` : '';
  return rows(
    db,
    `SELECT id, scheduled_at FROM jobs
      WHERE status IN ('pending', 'failed') AND scheduled_at <= ${NOW} ${after} ${kind} ${skip}
      ORDER BY scheduled_at, id LIMIT ?`,
    [
      ts(opts.at),
      ...(opts.after ? [opts.after.scheduledAt.toISOString(), opts.after.id] : []),
      ...(opts.kind ? [opts.kind] : []),
      ...(opts.skipKinds?.length ? [opts.skipKinds] : []),
      opts.limit,
    ],
  );
}

/** Transaction-scoped: held until the caller's transaction ends, so one sweeper runs at a time. */
export function tryLockSweeper(trx: Knex.Transaction): Promise<boolean> {
  return tryXactLock(trx, SWEEPER_LOCK_KEY);
}

/** As tryLockSweeper, for resetJobsOfLostWorkers. */
export function tryLockReaper(trx: Knex.Transaction): Promise<boolean> {
  return tryXactLock(trx, REAPER_LOCK_KEY);
}

async function tryXactLock(trx: Knex.Transaction, key: number): Promise<boolean> {
  const [row] = await rows<{ locked: boolean }>(trx, `SELECT pg_try_advisory_xact_lock(?) AS locked`, [key]);
  return row?.locked === true;
}
