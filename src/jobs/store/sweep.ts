import type { Knex } from 'knex';
import { NOW, rows, ts, type At, type Db } from './runs.js';
import type { JobRow } from '../contract/types.js';

// The sweeper's SQL: stuck-row resets, pages of due rows to re-ring, and the
// lock that lets one sweeper at a time do the resets.

// Arbitrary but fixed: pg_try_advisory_xact_lock key for "a sweeper runs".
export const SWEEPER_LOCK_KEY = 0x6a6f6273; // 'jobs'

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
 * Rows stuck in processing (no heartbeat for stuckAfterMs) go back to pending
 * with stall_count + 1 and their attempt given back (a dead worker is not the
 * job's fault), or to failed_permanent once stall_count exceeds maxStalls.
 * Kinds not in `kinds` use `fallback`. Pass `ids` to limit it (admin unstick).
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
  return rows<JobRow>(
    db,
    `WITH k AS (${k.sql}),
     stuck AS (
       SELECT j.id, coalesce(k.max_stalls, ?) AS max_stalls
         FROM jobs j LEFT JOIN k ON k.kind = j.kind
        WHERE j.status = 'processing' ${idFilter}
          AND coalesce(j.heartbeat_at, j.started_at) < ${NOW} - coalesce(k.stuck_ms, ?) * interval '1 millisecond'
        FOR UPDATE OF j SKIP LOCKED
     ), moved AS (
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
         FROM stuck s
        WHERE j.id = s.id AND j.status = 'processing'
        RETURNING j.*
     ), history AS (
       INSERT INTO job_attempts (job_id, attempt, started_at, finished_at, outcome, error_class, error, duration_ms)
       SELECT id, attempts + 1, started_at, ${NOW}, 'stalled', 'stalled',
              format('no heartbeat since %s (stall %s)', heartbeat_at, stall_count),
              greatest(0, round(extract(epoch FROM ${NOW} - started_at) * 1000))::int
         FROM moved
     )
     SELECT * FROM moved ORDER BY id`,
    [...k.bindings, fallback.maxStalls, ...(ids ? [ids] : []), ts(at), fallback.stuckAfterMs, ts(at), ts(at), ts(at)],
  );
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
export async function tryLockSweeper(trx: Knex.Transaction): Promise<boolean> {
  const [row] = await rows<{ locked: boolean }>(trx, `SELECT pg_try_advisory_xact_lock(?) AS locked`, [SWEEPER_LOCK_KEY]);
  return row?.locked === true;
}
