import { CHANNEL, NOW, rows, ts, type At, type Db } from './runs.js';
import { resetStuckJobs } from './sweep.js';
import type { JobAttemptRow, JobRow, JobStatus } from '../contract/types.js';

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
    `SELECT count(pg_notify(?, id || ':0:' || kind))::int AS n
       FROM (SELECT id, kind FROM jobs
              WHERE status IN ('pending', 'failed') AND scheduled_at <= ${NOW} ${kind}
              ORDER BY scheduled_at, id LIMIT ?) due`,
    [CHANNEL, ts(opts.at), ...(opts.kind !== undefined ? [opts.kind] : []), limit],
  );
  return Number(row?.n ?? 0);
}

export interface SearchJobsOptions extends JobFilter {
  /** Case-insensitive substring of last_error. */
  errorText?: string;
  createdFrom?: Date;
  /** Exclusive. */
  createdTo?: Date;
  order?: 'asc' | 'desc';
  /** Default 50, at most 1000. */
  limit?: number;
  offset?: number;
}

/** The admin table's query: listJobs plus error text, created range, either order, offset pages and the total. */
export async function searchJobs(db: Db, opts: SearchJobsOptions = {}): Promise<{ rows: JobRow[]; total: number }> {
  const w = where(opts);
  const parts = [w.sql];
  const bindings = [...w.bindings];
  if (opts.errorText) {
    // ILIKE with the user's text as a literal: escape its wildcards.
    parts.push(`last_error ILIKE ? ESCAPE '\\'`);
    bindings.push(`%${opts.errorText.replace(/[\\%_]/g, (c) => `\\${c}`)}%`);
  }
  if (opts.createdFrom) (parts.push('created_at >= ?'), bindings.push(opts.createdFrom.toISOString()));
  if (opts.createdTo) (parts.push('created_at < ?'), bindings.push(opts.createdTo.toISOString()));
  const sql = parts.join(' AND ');
  const limit = Math.min(Math.max(1, Math.floor(opts.limit ?? 50)), 1000);
  const offset = Math.max(0, Math.floor(opts.offset ?? 0));
  const dir = opts.order === 'asc' ? 'ASC' : 'DESC';
  const found = await rows<JobRow>(db, `SELECT * FROM jobs WHERE ${sql} ORDER BY created_at ${dir}, id ${dir} LIMIT ? OFFSET ?`, [...bindings, limit, offset]);
  const [count] = await rows<{ n: number }>(db, `SELECT count(*)::int AS n FROM jobs WHERE ${sql}`, bindings);
  return { rows: found, total: Number(count?.n ?? 0) };
}

export interface JobKindSummary {
  kind: string;
  pending: number;
  processing: number;
  failed: number;
  failed_permanent: number;
  completed_today: number;
  /** Seconds the oldest due pending row has been due; null when none is. */
  oldest_pending_s: number | null;
}

/** Counters per kind for the operator: one scan of the non-terminal rows plus today's completions. */
export async function summarizeJobs(db: Db, at?: At): Promise<JobKindSummary[]> {
  const out = await rows<JobKindSummary>(
    db,
    `SELECT kind,
            count(*) FILTER (WHERE status = 'pending')::int AS pending,
            count(*) FILTER (WHERE status = 'processing')::int AS processing,
            count(*) FILTER (WHERE status = 'failed')::int AS failed,
            count(*) FILTER (WHERE status = 'failed_permanent')::int AS failed_permanent,
            count(*) FILTER (WHERE status = 'completed' AND finished_at >= date_trunc('day', t.now))::int AS completed_today,
            extract(epoch FROM t.now - min(scheduled_at) FILTER (WHERE status = 'pending' AND scheduled_at <= t.now))::float8
              AS oldest_pending_s
       FROM jobs, (SELECT ${NOW} AS now) t
      WHERE status <> 'completed' OR finished_at >= date_trunc('day', t.now)
      GROUP BY kind, t.now ORDER BY kind`,
    [ts(at)],
  );
  return out.map((r) => ({
    ...r,
    pending: Number(r.pending), processing: Number(r.processing), failed: Number(r.failed),
    failed_permanent: Number(r.failed_permanent), completed_today: Number(r.completed_today),
    oldest_pending_s: r.oldest_pending_s === null ? null : Number(r.oldest_pending_s),
  }));
}

