import type { Knex } from 'knex';
import type { AttemptOutcome, JobRow, StoredErrorClass } from '../contract/types.js';

// The SQL of a job's life: enqueue, claim, heartbeat, end of a run (the
// sweeper's statements are in store-sweep.ts, the operator's in store-admin.ts). State changes are compare-and-set:
// they name the status they expect (and the claim token for a running job)
// and return the moved row, or null when someone else got there first.
//
// `at` is an injectable "now" (tests, fake clocks); null means the database's
// now(), so one clock decides due times in every process.

export type Db = Knex | Knex.Transaction;
export type At = Date | null | undefined;

export const CHANNEL = 'herald_jobs';
export const ts = (at: At): string | null => (at ? at.toISOString() : null);
export const NOW = 'coalesce(?::timestamptz, now())';

export async function rows<T>(db: Db, sql: string, bindings: readonly unknown[]): Promise<T[]> {
  const res = (await db.raw(sql, bindings as Knex.RawBinding[])) as { rows: T[] };
  return res.rows;
}

export interface NewJob {
  kind: string;
  payload: unknown;
  subjectType: string | null;
  subjectId: string | null;
  dedupeKey: string | null;
  scheduledAt: Date | null;
  maxAttempts: number | null;
  /** true: the caller NOTIFYs after commit (announce.ts), so the insert trigger stays quiet. */
  writerAnnounces: boolean;
}

/**
 * One INSERT ... ON CONFLICT DO NOTHING, never check-then-insert: two
 * concurrent enqueues with one dedupe key both return the same row (the loser
 * waits for the winner's transaction, then reads its id).
 */
export async function insertJob(db: Db, job: NewJob): Promise<{ id: number; created: boolean }> {
  const inserted = await rows<{ id: number }>(
    db,
    `INSERT INTO jobs (kind, payload, subject_type, subject_id, dedupe_key, scheduled_at, max_attempts, writer_announces)
     VALUES (?, ?::jsonb, ?, ?, ?, coalesce(?::timestamptz, now()), ?, ?)
     ON CONFLICT ON CONSTRAINT ux_jobs_dedupe_key DO NOTHING
     RETURNING id`,
    [job.kind, JSON.stringify(job.payload ?? {}), job.subjectType, job.subjectId, job.dedupeKey, ts(job.scheduledAt), job.maxAttempts, job.writerAnnounces],
  );
  if (inserted[0]) return { id: Number(inserted[0].id), created: true };
  const existing = await rows<{ id: number }>(db, `SELECT id FROM jobs WHERE dedupe_key = ?`, [job.dedupeKey]);
  if (!existing[0]) {
    // Only possible when the caller's snapshot predates the winner's commit
    // (REPEATABLE READ / SERIALIZABLE): retrying the transaction resolves it.
    throw Object.assign(new Error(`job with dedupe key ${job.dedupeKey} exists but is not visible to this transaction; retry it`), {
      code: '40001',
    });
  }
  return { id: Number(existing[0].id), created: false };
}

/** The claim: only a due pending/failed row moves, so a duplicate bell or a second worker gets null. */
export async function claimJob(db: Db, id: number, token: string, at?: At): Promise<JobRow | null> {
  const [row] = await rows<JobRow>(
    db,
    `UPDATE jobs
        SET status = 'processing', claim_token = ?::uuid, attempts = attempts + 1,
            started_at = ${NOW}, heartbeat_at = ${NOW}, worker_id = NULL
      WHERE id = ? AND status IN ('pending', 'failed') AND scheduled_at <= ${NOW}
      RETURNING *`,
    [token, ts(at), ts(at), id, ts(at)],
  );
  return row ?? null;
}

/**
 * claimJob for many bells at once (the runner batches concurrent claims into
 * one statement). SKIP LOCKED: two workers claiming overlapping ids never
 * wait on or deadlock with each other; a skipped row is being claimed (or
 * changed) by someone else, and the caller re-checks it (findJobWait).
 */
export async function claimJobs(db: Db, claims: readonly { id: number; token: string }[], at?: At, workerId: number | null = null): Promise<JobRow[]> {
  if (claims.length === 0) return [];
  return rows<JobRow>(
    db,
    `UPDATE jobs j
        SET status = 'processing', claim_token = c.token, attempts = j.attempts + 1,
            started_at = ${NOW}, heartbeat_at = ${NOW}, worker_id = ?
       FROM (SELECT u.id, u.token FROM unnest(?::bigint[], ?::uuid[]) AS u (id, token)
              WHERE u.id IN (SELECT id FROM jobs
                              WHERE id = ANY(?::bigint[]) AND status IN ('pending', 'failed') AND scheduled_at <= ${NOW}
                              ORDER BY id FOR UPDATE SKIP LOCKED)) c
      WHERE j.id = c.id
      RETURNING j.*`,
    [ts(at), ts(at), workerId, claims.map((c) => c.id), claims.map((c) => c.token), claims.map((c) => c.id), ts(at)],
  );
}

/**
 * Claims up to `limit` due rows (of `kind`, when given), most overdue first,
 * each under a claim token of its own: the inline runner takes one at a
 * time, a batched kind's loop (batch-loop.ts) many. SKIP LOCKED: two
 * claimers scanning at once split the due rows instead of waiting.
 */
export async function claimDueJobs(db: Db, opts: { limit: number; kinds?: readonly string[]; workerId?: number | null }, at?: At): Promise<JobRow[]> {
  // The UPDATE ... FOR UPDATE SKIP LOCKED lives in herald_claim_due_jobs
  // (migrations/0016_jobs_claim_plan.ts), which pins its plan to the ordered
  // walk of ix_jobs_due whatever the statistics say.
  return rows<JobRow>(db, `SELECT * FROM herald_claim_due_jobs(?::timestamptz, ?::bigint, ?::text[], ?::integer)`, [
    ts(at),
    opts.workerId ?? null,
    opts.kinds === undefined ? null : [...opts.kinds],
    opts.limit,
  ]);
}

/** How long until the next row of these kinds is due (0: one is due now), or null when none waits. */
export async function findNextDue(db: Db, kinds: readonly string[], at?: At): Promise<number | null> {
  const [row] = await rows<{ wait_ms: string | null }>(
    db,
    `SELECT greatest(0, ceil(extract(epoch FROM min(scheduled_at) - ${NOW}) * 1000))::bigint AS wait_ms
       FROM jobs WHERE status IN ('pending', 'failed') AND kind = ANY(?::text[])`,
    [ts(at), kinds],
  );
  return row?.wait_ms === null || row?.wait_ms === undefined ? null : Number(row.wait_ms);
}

/** Why a claim found nothing: the row's status and how long until it is due (0 if due). */
export async function findJobWait(db: Db, id: number, at?: At): Promise<{ status: JobRow['status']; waitMs: number } | null> {
  const [row] = await rows<{ status: JobRow['status']; wait_ms: number }>(
    db,
    `SELECT status, greatest(0, ceil(extract(epoch FROM scheduled_at - ${NOW}) * 1000))::bigint AS wait_ms
       FROM jobs WHERE id = ?`,
    [ts(at), id],
  );
  return row ? { status: row.status, waitMs: Number(row.wait_ms) } : null;
}

/** The earliest scheduled_at among rows waiting to be claimed (inline runner's "wait for retries"). */
export async function findNextScheduledAt(db: Db): Promise<Date | null> {
  const [row] = await rows<{ at: Date | null }>(db, `SELECT min(scheduled_at) AS at FROM jobs WHERE status IN ('pending', 'failed')`, []);
  return row?.at ? new Date(row.at) : null;
}

export async function countWaitingJobs(db: Db): Promise<number> {
  const [row] = await rows<{ n: number }>(db, `SELECT count(*)::int AS n FROM jobs WHERE status IN ('pending', 'failed')`, []);
  return Number(row?.n ?? 0);
}

export async function readDbNow(db: Db): Promise<Date> {
  const [row] = await rows<{ now: Date }>(db, `SELECT now() AS now`, []);
  return new Date(row!.now);
}

/** Returns false when the claim is gone (the sweeper reset the row): the run's result will be ignored. */
export async function heartbeatJob(db: Db, id: number, token: string, at?: At): Promise<boolean> {
  const res = await rows<{ id: number }>(
    db,
    `UPDATE jobs SET heartbeat_at = ${NOW} WHERE id = ? AND claim_token = ?::uuid AND status = 'processing' RETURNING id`,
    [ts(at), id, token],
  );
  return res.length === 1;
}

export interface RunEnd {
  id: number;
  token: string;
  at?: At;
  /** Where the row goes. */
  status: 'completed' | 'failed' | 'failed_permanent' | 'pending';
  outcome: Exclude<AttemptOutcome, 'worker_lost'>;
  /** Retry or snooze: scheduled_at becomes now + delayMs (database clock unless `at`); null keeps it. */
  delayMs?: number | null;
  /** Snoozed or interrupted runs give their attempt back. */
  giveBackAttempt?: boolean;
  errorClass?: StoredErrorClass | null;
  error?: string | null;
}

/**
 * Ends runs, many in one statement (the runner batches completions, a
 * batched kind ends its whole batch): each row moves only if its run still
 * holds the claim, and the attempt history is written in the same statement.
 * Returns the moved rows, each with `ended_by`, the claim token it was ended
 * under; a run whose claim was lost (reset by the sweeper, or finished
 * elsewhere) is absent and records nothing.
 */
export async function endJobRuns(db: Db, ends: readonly RunEnd[], at?: At): Promise<(JobRow & { ended_by: string })[]> {
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
  return rows(
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
        RETURNING j.*, r.token AS ended_by
     ), history AS (
       INSERT INTO job_attempts (job_id, attempt, started_at, finished_at, outcome, error_class, error, duration_ms, worker_id)
       SELECT m.id, m.attempts + r.give_back, m.started_at, ${NOW}, r.outcome, r.error_class, r.error,
              greatest(0, round(extract(epoch FROM ${NOW} - m.started_at) * 1000))::int, m.worker_id
         FROM moved m JOIN r ON r.id = m.id
     )
     SELECT * FROM moved`,
    [JSON.stringify(runs), ts(at), ts(at), ts(at), ts(at)],
  );
}

/** endJobRuns for one run, at its own `at`: the moved row, or null when the claim was lost. */
export async function endJobRun(db: Db, end: RunEnd): Promise<JobRow | null> {
  const [row] = await endJobRuns(db, [end], end.at);
  if (!row) return null;
  const { ended_by: _, ...job } = row;
  return job;
}

export async function getJob(db: Db, id: number): Promise<JobRow | null> {
  const [row] = await rows<JobRow>(db, `SELECT * FROM jobs WHERE id = ?`, [id]);
  return row ?? null;
}
