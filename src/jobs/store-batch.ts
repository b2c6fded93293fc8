import { NOW, rows, ts, type At, type Db, type RunEnd } from './store.js';
import type { JobRow } from './types.js';

// The SQL of batched kinds (batch-loop.ts): claim the due rows of one kind
// by scanning for them, and end many runs in one statement. Same
// compare-and-set rules as store.ts: a claim moves only due pending/failed
// rows, an end only rows still held under the run's own claim token.

/**
 * Claims up to `limit` due rows of `kind`, most overdue first, each under a
 * claim token of its own. SKIP LOCKED: two workers scanning at once split
 * the due rows between them instead of waiting on each other.
 */
export async function claimDueJobsOfKind(db: Db, kind: string, limit: number, at?: At): Promise<JobRow[]> {
  return rows<JobRow>(
    db,
    `UPDATE jobs j
        SET status = 'processing', claim_token = gen_random_uuid(), attempts = j.attempts + 1,
            started_at = ${NOW}, heartbeat_at = ${NOW}
      WHERE j.id IN (SELECT id FROM jobs
                      WHERE status IN ('pending', 'failed') AND scheduled_at <= ${NOW} AND kind = ?
                      ORDER BY scheduled_at, id LIMIT ?
                      FOR UPDATE SKIP LOCKED)
        AND j.status IN ('pending', 'failed')
      RETURNING j.*`,
    [ts(at), ts(at), ts(at), kind, limit],
  );
}

/** How long until the next row of `kind` is due (0: one is due now), or null when none waits. */
export async function findNextDueOfKind(db: Db, kind: string, at?: At): Promise<number | null> {
  const [row] = await rows<{ wait_ms: string | null }>(
    db,
    `SELECT greatest(0, ceil(extract(epoch FROM min(scheduled_at) - ${NOW}) * 1000))::bigint AS wait_ms
       FROM jobs WHERE status IN ('pending', 'failed') AND kind = ?`,
    [ts(at), kind],
  );
  return row?.wait_ms === null || row?.wait_ms === undefined ? null : Number(row.wait_ms);
}

/**
 * endJobRun for many runs in one statement (not for moves into
 * failed_permanent that have a hook to run: those go one by one, in their
 * own transaction). Returns the ids of the rows moved; a run whose claim
 * was lost is simply absent.
 */
export async function endJobRuns(db: Db, ends: readonly RunEnd[], at?: At): Promise<number[]> {
  if (ends.length === 0) return [];
  const runs = ends.map((e) => ({
    id: e.id,
    token: e.token,
    status: e.status,
    outcome: e.outcome,
    terminal: e.status === 'completed' || e.status === 'failed_permanent',
    delay_ms: e.delayMs ?? null,
    give_back: e.giveBackAttempt ? 1 : 0,
    error: e.error ?? null,
    error_class: e.errorClass ?? null,
  }));
  const moved = await rows<{ id: string | number }>(
    db,
    `WITH r AS (
       SELECT * FROM jsonb_to_recordset(?::jsonb) AS r (id bigint, token uuid, status text, outcome text, terminal boolean,
                                                       delay_ms bigint, give_back int, error text, error_class text)
     ), moved AS (
       UPDATE jobs j
          SET status = r.status, claim_token = NULL,
              finished_at = CASE WHEN r.terminal THEN ${NOW} END,
              scheduled_at = coalesce(${NOW} + r.delay_ms * interval '1 millisecond', j.scheduled_at),
              attempts = j.attempts - r.give_back,
              last_error = coalesce(r.error, j.last_error),
              error_class = coalesce(r.error_class, j.error_class)
         FROM r
        WHERE j.id = r.id AND j.claim_token = r.token AND j.status = 'processing'
        RETURNING j.*, r.outcome AS run_outcome, r.give_back AS run_give_back, r.error AS run_error, r.error_class AS run_error_class
     ), history AS (
       INSERT INTO job_attempts (job_id, attempt, started_at, finished_at, outcome, error_class, error, duration_ms)
       SELECT id, attempts + run_give_back, started_at, ${NOW}, run_outcome, run_error_class, run_error,
              greatest(0, round(extract(epoch FROM ${NOW} - started_at) * 1000))::int
         FROM moved
     )
     SELECT id FROM moved`,
    [JSON.stringify(runs), ts(at), ts(at), ts(at), ts(at)],
  );
  return moved.map((r) => Number(r.id));
}
