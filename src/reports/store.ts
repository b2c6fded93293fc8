import type { Knex } from 'knex';

// Every SQL statement on reports. State changes are compare-and-set on
// status = 'running' and return the moved row, or null when another
// transition (success, failure, timeout) got there first: a report ends once.
//
// `at` is an injectable "now" (tests, fake clocks); null/undefined means the
// database's now(), so one clock decides deadlines in every process.

type Db = Knex | Knex.Transaction;
export type At = Date | null | undefined;

export type ReportStatus = 'running' | 'success' | 'fail';

export interface ReportRow {
  id: string;
  report_type: string;
  status: ReportStatus;
  params: Record<string, unknown>;
  params_hash: string;
  creator: string;
  timeout_ms: number;
  deadline_at: Date;
  file_key: string | null;
  file_name: string | null;
  file_size: number | null;
  row_count: number | null;
  error_message: string | null;
  created_at: Date;
  finished_at: Date | null;
}

/** What identifies "the same request" (ux_reports_running_request). */
export interface ReportRequestKey {
  creator: string;
  reportType: string;
  paramsHash: string;
}

/** error_message is at most this long (CHECK in 0006_reports). */
export const MAX_MESSAGE_CHARS = 1000;

const ts = (at: At): string | null => (at ? at.toISOString() : null);
const NOW = 'coalesce(?::timestamptz, now())';

async function rows<T>(db: Db, sql: string, bindings: readonly unknown[]): Promise<T[]> {
  const res = (await db.raw(sql, bindings as Knex.RawBinding[])) as { rows: T[] };
  return res.rows;
}

async function one<T>(db: Db, sql: string, bindings: readonly unknown[]): Promise<T | null> {
  return (await rows<T>(db, sql, bindings))[0] ?? null;
}

/**
 * A message fit for error_message: NULs removed (Postgres text cannot hold
 * them), cut to MAX_MESSAGE_CHARS code points with an ellipsis, never in the
 * middle of a surrogate pair.
 */
export function truncateMessage(message: string): string {
  const clean = message.replace(/\u0000/g, '').trim() || 'failed (no message)';
  const points = Array.from(clean);
  return points.length <= MAX_MESSAGE_CHARS ? clean : `${points.slice(0, MAX_MESSAGE_CHARS - 1).join('')}…`;
}

export interface NewReport extends ReportRequestKey {
  params: unknown;
  timeoutMs: number;
}

/** INSERT ... ON CONFLICT DO NOTHING under the RUNNING partial unique index: null = one is already RUNNING. */
export async function insertRunningReport(db: Db, r: NewReport, at?: At): Promise<ReportRow | null> {
  return one<ReportRow>(
    db,
    `INSERT INTO reports (report_type, params, params_hash, creator, timeout_ms, created_at, deadline_at)
     VALUES (?, ?::jsonb, ?, ?, ?, ${NOW}, ${NOW} + ?::bigint * interval '1 millisecond')
     ON CONFLICT (creator, report_type, params_hash) WHERE status = 'running' DO NOTHING
     RETURNING *`,
    [r.reportType, JSON.stringify(r.params), r.paramsHash, r.creator, r.timeoutMs, ts(at), ts(at), r.timeoutMs],
  );
}

export async function findRunningReport(db: Db, key: ReportRequestKey): Promise<ReportRow | null> {
  return one<ReportRow>(
    db,
    `SELECT * FROM reports WHERE creator = ? AND report_type = ? AND params_hash = ? AND status = 'running'`,
    [key.creator, key.reportType, key.paramsHash],
  );
}

/** The newest SUCCESS of this request that finished within windowMs of now. */
export async function findRecentSuccessReport(db: Db, key: ReportRequestKey, windowMs: number, at?: At): Promise<ReportRow | null> {
  return one<ReportRow>(
    db,
    `SELECT * FROM reports
      WHERE creator = ? AND report_type = ? AND params_hash = ? AND status = 'success'
        AND finished_at >= ${NOW} - ?::bigint * interval '1 millisecond'
      ORDER BY finished_at DESC LIMIT 1`,
    [key.creator, key.reportType, key.paramsHash, ts(at), windowMs],
  );
}

export async function getReport(db: Db, id: string): Promise<ReportRow | null> {
  return one<ReportRow>(db, `SELECT * FROM reports WHERE id = ?::uuid`, [id]);
}

export interface ReportFile {
  fileKey: string;
  fileName: string;
  fileSize: number;
  rowCount: number;
}

/** RUNNING -> SUCCESS with its file; null when the report had already ended (a late success changes nothing). */
export async function completeReport(db: Db, id: string, file: ReportFile, at?: At): Promise<ReportRow | null> {
  return one<ReportRow>(
    db,
    `UPDATE reports
        SET status = 'success', file_key = ?, file_name = ?, file_size = ?, row_count = ?, finished_at = ${NOW}
      WHERE id = ?::uuid AND status = 'running'
      RETURNING *`,
    [file.fileKey, file.fileName, file.fileSize, file.rowCount, ts(at), id],
  );
}

/** RUNNING -> FAIL with the (truncated) message; null when the report had already ended. */
export async function failReport(db: Db, id: string, message: string, at?: At): Promise<ReportRow | null> {
  return one<ReportRow>(
    db,
    `UPDATE reports SET status = 'fail', error_message = ?, finished_at = ${NOW}
      WHERE id = ?::uuid AND status = 'running'
      RETURNING *`,
    [truncateMessage(message), ts(at), id],
  );
}

const TIMED_OUT = `'timed out after ' || CASE WHEN timeout_ms % 1000 = 0 THEN (timeout_ms / 1000)::text || ' s' ELSE timeout_ms::text || ' ms' END`;

/** RUNNING past its deadline -> FAIL "timed out after N s"; null when it had ended or its deadline is still ahead. */
export async function expireReport(db: Db, id: string, at?: At): Promise<ReportRow | null> {
  return one<ReportRow>(
    db,
    `UPDATE reports SET status = 'fail', error_message = ${TIMED_OUT}, finished_at = ${NOW}
      WHERE id = ?::uuid AND status = 'running' AND deadline_at <= ${NOW}
      RETURNING *`,
    [ts(at), id, ts(at)],
  );
}

/** Every RUNNING report past its deadline -> FAIL "timed out" (the sweep behind lost timeout jobs). */
export async function expireOverdueReports(db: Db, at?: At, limit = 1000): Promise<ReportRow[]> {
  return rows<ReportRow>(
    db,
    // MATERIALIZED: picked once, at most `limit` rows (see claimPendingInvoiceRequests).
    `WITH picked AS MATERIALIZED (
       SELECT id FROM reports WHERE status = 'running' AND deadline_at <= ${NOW}
        ORDER BY deadline_at LIMIT ? FOR UPDATE SKIP LOCKED)
     UPDATE reports r SET status = 'fail', error_message = ${TIMED_OUT}, finished_at = ${NOW}
       FROM picked
      WHERE r.id = picked.id AND r.status = 'running'
      RETURNING r.*`,
    [ts(at), limit, ts(at)],
  );
}
