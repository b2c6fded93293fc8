import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { stringify } from 'csv-stringify';
import type { Knex } from 'knex';
import { classifyDatabaseError, failureMessage, JobError, PermanentError, TransientError } from '../jobs/contract/errors.js';
import { crashPoint } from '../lib/crash-point.js';
import type { Logger } from '../log.js';
import { StorageConfigError } from '../storage/s3.js';
import { ReportInputError } from './errors.js';
import { REPORT_TYPES, type Cell, type ReportType } from './report-types.js';
import type { ReportServices } from './services.js';
import { completeReport, expireReport, failReport, getReport, type ReportRow } from './store.js';

// One generation run: rows are read a page at a time and streamed through
// csv-stringify into a temp file (bounded memory whatever the size), the file
// is put to S3 under a key derived from the report id (a retry overwrites the
// same object, never a second one), then RUNNING -> SUCCESS by compare-and-set.
// If the report ended meanwhile (timed out), the success changes nothing and
// the file is removed again.

export const PAGE_SIZE = 1000;
export const CSV_CONTENT_TYPE = 'text/csv; charset=utf-8';

export type GenerateOutcome =
  /** SUCCESS recorded. */
  | 'success'
  /** Nothing to do: no such report, or it had already ended. */
  | 'ended'
  /** It ended while the file was being made; the success was discarded. */
  | 'late'
  /** Its deadline passed during the run; it was (or will be) failed "timed out". */
  | 'deadline';

export interface GenerateContext {
  signal: AbortSignal;
  log: Logger;
  now: () => Date;
}

/** The file name users download: uploads-2026-11-02-1a2b3c4d.csv. */
export function reportFileName(report: Pick<ReportRow, 'id' | 'report_type' | 'created_at'>): string {
  const day = new Date(report.created_at).toISOString().slice(0, 10);
  return `${report.report_type}-${day}-${report.id.slice(0, 8)}.csv`;
}

export function reportFileKey(prefix: string, report: Pick<ReportRow, 'id' | 'report_type'>): string {
  return `${prefix}${report.report_type}/${report.id}.csv`;
}

// A cell a spreadsheet would run as a formula (=, +, -, @, tab, CR first) is
// prefixed with ' (OWASP "CSV injection"): workbasket titles and party names
// are free text typed by users. Plain numbers such as -1.50 are left alone.
function neutraliseFormula(value: string): string {
  return /^[=+\-@\t\r]/.test(value) && !/^-?\d+(\.\d+)?$/.test(value) ? `'${value}` : value;
}

/** Streams every row of the report into `file` as CSV (UTF-8 with BOM, CRLF: what spreadsheets open cleanly). */
export async function writeReportCsv(
  db: Knex,
  type: ReportType,
  params: Record<string, unknown>,
  file: string,
  opts: { signal: AbortSignal; pageSize?: number },
): Promise<number> {
  let rowCount = 0;
  async function* rows(): AsyncGenerator<Cell[]> {
    for await (const page of type.pages(db, params, opts.pageSize ?? PAGE_SIZE)) {
      opts.signal.throwIfAborted();
      for (const row of page) yield row;
      rowCount += page.length;
    }
  }
  const csv = stringify({
    header: true,
    columns: [...type.headers],
    bom: true,
    record_delimiter: 'windows',
    cast: { date: (d: Date) => d.toISOString(), string: neutraliseFormula },
  });
  const written = pipeline(Readable.from(rows()), csv, fs.createWriteStream(file), { signal: opts.signal });
  // Destroying the pipeline waits for the generator to return, and the generator
  // waits for its page query, which may wait on a lock for ever: the abort must
  // end the run now and leave that query to finish (or fail) on its own.
  let onAbort = (): void => {};
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(opts.signal.reason);
    opts.signal.addEventListener('abort', onAbort, { once: true });
  });
  written.catch(() => {});
  aborted.catch(() => {});
  try {
    opts.signal.throwIfAborted();
    await Promise.race([written, aborted]);
  } finally {
    opts.signal.removeEventListener('abort', onAbort);
  }
  return rowCount;
}

/**
 * Removes the file a report that ended FAIL may have left in S3 (a worker that
 * died after its upload, an upload cut off at the deadline). Best effort: a
 * missing object is fine, and a failure is logged, never thrown.
 */
export async function discardReportFile(services: ReportServices, report: Pick<ReportRow, 'id' | 'report_type'>, log: Logger): Promise<void> {
  const key = reportFileKey(services.config.REPORTS_S3_PREFIX, report);
  try {
    await services.storage().deleteObject(key);
  } catch (err) {
    log.warn({ err, key }, 'could not remove the file of a failed report');
  }
}

/**
 * What a failure means for the job: Herald error classes only, cause kept.
 * A database error (22xxx bad data and 42xxx bad SQL permanent, the rest
 * transient) is told by its condition, never its SQL text: the message
 * reaches the report's errorMessage.
 */
export function classifyReportError(err: unknown): JobError {
  if (err instanceof JobError) return err;
  const message = err instanceof Error ? err.message : String(err);
  if (err instanceof ReportInputError || err instanceof StorageConfigError) return new PermanentError(message, { cause: err });
  return classifyDatabaseError(err, 'reading the report rows failed') ?? new TransientError(message, { cause: err });
}

/** The FAIL message: an input mistake names its field as it is; any other failure carries its class ("[transient] ..."). */
export function reportFailureMessage(failure: JobError): string {
  return failure.cause instanceof ReportInputError ? failure.message : failureMessage(failure);
}

/** Runs one generation of report `reportId`. Throws (classified) when the run failed and may be retried or must be failed. */
export async function generateReport(db: Knex, services: ReportServices, reportId: string, ctx: GenerateContext): Promise<GenerateOutcome> {
  const report = await getReport(db, reportId);
  if (!report || report.status !== 'running') {
    ctx.log.info({ reportId, status: report?.status ?? 'missing' }, 'report has nothing left to generate');
    return 'ended';
  }
  const type = REPORT_TYPES.get(report.report_type);
  if (!type) {
    await failReport(db, reportId, `unknown report type "${report.report_type}": this worker cannot generate it`);
    return 'ended';
  }
  const remainingMs = new Date(report.deadline_at).getTime() - ctx.now().getTime();
  if (remainingMs <= 0) {
    await expireReport(db, reportId, ctx.now());
    return 'deadline';
  }
  // Work past the deadline is wasted: the report is failed "timed out" then.
  const deadline = AbortSignal.timeout(remainingMs);
  const signal = AbortSignal.any([ctx.signal, deadline]);
  const tmp = path.join(os.tmpdir(), `herald-report-${reportId}-${randomUUID()}.csv`);
  try {
    const rowCount = await writeReportCsv(db, type, report.params, tmp, { signal });
    crashPoint('reports.after-write');
    const current = await getReport(db, reportId);
    if (current?.status !== 'running') {
      ctx.log.info({ reportId, status: current?.status }, 'report ended while its file was written; not uploading it');
      return 'late';
    }
    const storage = services.storage();
    const fileName = reportFileName(report);
    const key = reportFileKey(services.config.REPORTS_S3_PREFIX, report);
    const put = await storage.putObjectFromFile(key, tmp, {
      contentType: CSV_CONTENT_TYPE,
      contentDisposition: `attachment; filename="${fileName}"`,
      signal,
    });
    crashPoint('reports.after-upload');
    const done = await completeReport(db, reportId, { fileKey: key, fileName, fileSize: put.size, rowCount });
    if (!done) {
      ctx.log.warn({ reportId, key }, 'report ended (timed out) just before its success was recorded; discarding the file');
      await discardReportFile(services, report, ctx.log);
      return 'late';
    }
    ctx.log.info({ reportId, rows: rowCount, bytes: put.size, key }, `report ${report.report_type} written: ${rowCount} rows, ${put.size} bytes`);
    return 'success';
  } catch (err) {
    if (deadline.aborted && !ctx.signal.aborted) {
      // Our clock may be a little ahead of the database's: then the timeout job does it.
      await expireReport(db, reportId);
      // An upload cut off by the deadline may still have landed.
      await discardReportFile(services, report, ctx.log);
      ctx.log.warn({ reportId }, 'report passed its deadline while generating; stopped');
      return 'deadline';
    }
    throw classifyReportError(err);
  } finally {
    await fs.promises.rm(tmp, { force: true });
  }
}
