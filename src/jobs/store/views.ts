import type { Db } from './runs.js';
import type { JobStatus } from '../contract/types.js';

// Reads of the job ledger for other folders' pages, commands and gauges, and
// the retention delete: every statement on jobs and job_attempts lives in
// src/jobs, so the table's shape can change in one place.

/** Rows not yet finished (pending, processing, failed awaiting retry), optionally only those of some subjects. */
export async function countUnfinishedJobs(db: Db, subject?: { type: string; ids: readonly string[] }): Promise<number> {
  const { rows } = subject
    ? await db.raw(
        `SELECT count(*)::int AS n FROM jobs WHERE subject_type = ? AND subject_id = ANY(?) AND status IN ('pending', 'processing', 'failed')`,
        [subject.type, subject.ids as string[]],
      )
    : await db.raw(`SELECT count(*)::int AS n FROM jobs WHERE status IN ('pending', 'processing', 'failed')`);
  return rows[0].n;
}

export interface SubjectJobState {
  status: JobStatus;
  lastError: string | null;
}

/** The newest job of a kind for each subject id given (subjects without one are absent). */
export async function latestJobOfSubjects(db: Db, kind: string, subjectType: string, subjectIds: readonly string[]): Promise<Map<string, SubjectJobState>> {
  if (subjectIds.length === 0) return new Map();
  const { rows } = await db.raw(
    `SELECT DISTINCT ON (subject_id) subject_id, status, last_error FROM jobs
      WHERE kind = ? AND subject_type = ? AND subject_id = ANY(?)
      ORDER BY subject_id, id DESC`,
    [kind, subjectType, subjectIds as string[]],
  );
  return new Map((rows as { subject_id: string; status: JobStatus; last_error: string | null }[]).map((r) => [r.subject_id, { status: r.status, lastError: r.last_error }]));
}

/** Every kind that has a row, for filters. */
export async function listJobKinds(db: Db): Promise<string[]> {
  const { rows } = await db.raw(`SELECT DISTINCT kind FROM jobs ORDER BY kind`);
  return (rows as { kind: string }[]).map((r) => r.kind);
}

export async function countJobsByKindAndStatus(db: Db): Promise<Array<{ kind: string; status: JobStatus; n: number }>> {
  const { rows } = await db.raw(`SELECT kind, status, count(*)::int AS n FROM jobs GROUP BY kind, status`);
  return rows;
}

/** Per kind, how long its oldest due pending row has been due, in seconds. */
export async function oldestDueAgeByKind(db: Db): Promise<Array<{ kind: string; age: number }>> {
  const { rows } = await db.raw(
    `SELECT kind, extract(epoch FROM now() - min(scheduled_at))::float8 AS age
       FROM jobs WHERE status = 'pending' AND scheduled_at <= now() GROUP BY kind`,
  );
  return (rows as { kind: string; age: number }[]).map((r) => ({ kind: r.kind, age: Number(r.age) }));
}

export interface AttemptFeedRow {
  id: number;
  kind: string;
  outcome: string;
  duration_ms: number;
}

/** Runs recorded after the cursor (null: those of the last lookbackSeconds), oldest first, at most limit. */
export async function jobAttemptsAfter(db: Db, cursor: number | null, opts: { lookbackSeconds: number; limit: number }): Promise<AttemptFeedRow[]> {
  const { rows } = await db.raw(
    `SELECT a.id, j.kind, a.outcome, a.duration_ms FROM job_attempts a JOIN jobs j ON j.id = a.job_id
      WHERE ${cursor === null ? `a.finished_at >= now() - make_interval(secs => ?)` : 'a.id > ?'} ORDER BY a.id LIMIT ?`,
    [cursor ?? opts.lookbackSeconds, opts.limit],
  );
  return (rows as AttemptFeedRow[]).map((r) => ({ ...r, id: Number(r.id) }));
}

export async function lastJobAttemptId(db: Db): Promise<number> {
  const { rows } = await db.raw(`SELECT coalesce(max(id), 0)::bigint AS m FROM job_attempts`);
  return Number(rows[0].m);
}

/**
 * Retention: deletes completed rows of the given kinds finished before the
 * cutoff, at most `limit` (short statements, no long lock); their attempts go
 * with them (ON DELETE CASCADE). Returns how many.
 */
export async function deleteCompletedJobs(db: Db, opts: { kinds: readonly string[]; before: Date; limit: number }): Promise<number> {
  const { rows } = await db.raw(
    `DELETE FROM jobs WHERE id IN (
       SELECT id FROM jobs WHERE kind = ANY(?) AND status = 'completed' AND finished_at < ? ORDER BY id LIMIT ?
     ) RETURNING id`,
    [opts.kinds as string[], opts.before, opts.limit],
  );
  return rows.length as number;
}
