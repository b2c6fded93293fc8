import { CHANNEL, NOW, rows, ts, type At, type Db } from './store.js';
import { resetStuckJobs } from './store-sweep.js';
import type { JobAttemptRow, JobRow, JobStatus } from './types.js';

// Operator actions on the job ledger (admin page, `herald queue ...`). They
// only write rows: a row made claimable fires the jobs_notify trigger, so any
// listening worker rings it without this process touching Redis.

const INT_MAX = 2_147_483_647;

export interface JobFilter {
  status?: JobStatus | readonly JobStatus[];
  kind?: string;
  subjectType?: string;
  subjectId?: string | number;
}

function where(filter: JobFilter): { sql: string; bindings: unknown[] } {
  const parts: string[] = [];
  const bindings: unknown[] = [];
  if (filter.status !== undefined) {
    parts.push('status = ANY(?::text[])');
    bindings.push(Array.isArray(filter.status) ? [...filter.status] : [filter.status]);
  }
  if (filter.kind !== undefined) (parts.push('kind = ?'), bindings.push(filter.kind));
  if (filter.subjectType !== undefined) (parts.push('subject_type = ?'), bindings.push(filter.subjectType));
  if (filter.subjectId !== undefined) (parts.push('subject_id = ?'), bindings.push(String(filter.subjectId)));
  return { sql: parts.length ? parts.join(' AND ') : 'true', bindings };
}

const RETRY_SET = `status = 'pending', attempts = 0, stall_count = 0, finished_at = NULL, scheduled_at = ${NOW}`;

/** failed / failed_permanent -> pending now, with a fresh attempt and stall budget. null if not in those states. */
export async function retryJob(db: Db, id: number, at?: At): Promise<JobRow | null> {
  const [row] = await rows<JobRow>(
    db,
    `UPDATE jobs SET ${RETRY_SET} WHERE id = ? AND status IN ('failed', 'failed_permanent') RETURNING *`,
    [ts(at), id],
  );
  return row ?? null;
}

/**
 * retryJob for every failed / failed_permanent row matching the filter, e.g.
 * { subjectType: 'upload', subjectId: 7 } or { status: 'failed_permanent' }.
 * Rows in other states are never touched, whatever the filter says.
 */
export async function retryJobs(db: Db, filter: JobFilter, at?: At): Promise<JobRow[]> {
  const w = where({ ...filter, status: filter.status ?? ['failed', 'failed_permanent'] });
  return rows<JobRow>(
    db,
    `UPDATE jobs SET ${RETRY_SET}
      WHERE ${w.sql} AND status IN ('failed', 'failed_permanent')
      RETURNING *`,
    [ts(at), ...w.bindings],
  );
}

/**
 * Operator's "unstick": processing rows whose heartbeat is older than
 * olderThanMs (optionally only `ids`) go back to pending as a stall (attempt
 * given back, stall_count + 1). A row that is really still running may then
 * run twice at once, so this takes an explicit age and never defaults to all.
 */
export async function unstickJobs(db: Db, opts: { olderThanMs: number; ids?: readonly number[]; at?: At }): Promise<JobRow[]> {
  if (!Number.isFinite(opts.olderThanMs) || opts.olderThanMs < 0) throw new RangeError('olderThanMs must be a number >= 0');
  // No stall cap from the operator: a manual reset never gives up on the job.
  return resetStuckJobs(db, [], { stuckAfterMs: opts.olderThanMs, maxStalls: INT_MAX }, opts.at, opts.ids);
}

/** Deletes a job that is not running (and its history). null if it is processing or absent. */
export async function clearJob(db: Db, id: number): Promise<JobRow | null> {
  const [row] = await rows<JobRow>(db, `DELETE FROM jobs WHERE id = ? AND status <> 'processing' RETURNING *`, [id]);
  return row ?? null;
}

export interface ListJobsOptions extends JobFilter {
  /** Default 100, at most 1000. */
  limit?: number;
  /** Keyset paging: rows with id below this (newest first). */
  beforeId?: number;
}

export async function listJobs(db: Db, opts: ListJobsOptions = {}): Promise<JobRow[]> {
  const w = where(opts);
  const limit = Math.min(Math.max(1, Math.floor(opts.limit ?? 100)), 1000);
  const before = opts.beforeId !== undefined ? 'AND id < ?' : '';
  return rows<JobRow>(
    db,
    `SELECT * FROM jobs WHERE ${w.sql} ${before} ORDER BY id DESC LIMIT ?`,
    [...w.bindings, ...(opts.beforeId !== undefined ? [opts.beforeId] : []), limit],
  );
}

export interface JobCount {
  kind: string;
  status: JobStatus;
  count: number;
}

export async function countJobs(db: Db, filter: Pick<JobFilter, 'kind'> = {}): Promise<JobCount[]> {
  const w = where(filter);
  const out = await rows<JobCount>(
    db,
    `SELECT kind, status, count(*)::int AS count FROM jobs WHERE ${w.sql} GROUP BY kind, status ORDER BY kind, status`,
    w.bindings,
  );
  // PGlite and pg agree on ::int, but keep the type honest either way.
  return out.map((r) => ({ ...r, count: Number(r.count) }));
}

export async function listJobAttempts(db: Db, jobId: number): Promise<JobAttemptRow[]> {
  return rows(db, `SELECT * FROM job_attempts WHERE job_id = ? ORDER BY id`, [jobId]);
}

/**
 * "Process due jobs now": NOTIFY every due row so listening workers ring it at
 * once instead of at their next sweep. Returns how many were announced. With
 * no worker listening (inline mode) use runJobsInline instead.
 */
export async function notifyDueJobs(db: Db, opts: { kind?: string; limit?: number; at?: At } = {}): Promise<number> {
  const limit = Math.min(Math.max(1, Math.floor(opts.limit ?? 10_000)), 100_000);
  const kind = opts.kind !== undefined ? 'AND kind = ?' : '';
  const [row] = await rows<{ n: number }>(
    db,
    `SELECT count(pg_notify(?, id || ':0'))::int AS n
       FROM (SELECT id FROM jobs
              WHERE status IN ('pending', 'failed') AND scheduled_at <= ${NOW} ${kind}
              ORDER BY scheduled_at, id LIMIT ?) due`,
    [CHANNEL, ts(opts.at), ...(opts.kind !== undefined ? [opts.kind] : []), limit],
  );
  return Number(row?.n ?? 0);
}
