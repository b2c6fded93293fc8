import type { Knex } from 'knex';
import { enqueueJob } from '../jobs/store/enqueue.js';
import { crashPoint } from '../lib/crash-point.js';
import { hashParams } from './params.js';
import { parseReportRequest, reportTimeoutMs } from './report-types.js';
import type { ReportSettings } from './services.js';
import { findRecentSuccessReport, findRunningReport, insertRunningReport, type ReportRequestKey, type ReportRow } from './store.js';

// Asking for a report: one transaction inserts the RUNNING row and enqueues
// its generation, its timeout (a delayed job at the deadline) and, once per
// database, the reports-expire sweep. Either all of it commits or none.
//
// Deduplication ("the same creator asking the same type and params while one
// is RUNNING, or SUCCESS within the reuse window, gets that record back"):
//
// 1. INSERT ... ON CONFLICT DO NOTHING on ux_reports_running_request, the
//    partial unique index over RUNNING rows. Postgres makes a concurrent
//    insert of the same key wait for the first inserter's transaction and
//    then do nothing, so at most one RUNNING row per key can ever exist, with
//    no check-then-insert gap. The loser reads the RUNNING row back.
// 2. The reuse window cannot be in the index (now() is not immutable), so it
//    is checked *after* our insert succeeds, in the same transaction: if a
//    SUCCESS finished within the window, the transaction rolls back (our row
//    and jobs vanish) and that SUCCESS is returned. Checking after the insert
//    is what makes it race-free: our insert succeeded only because no RUNNING
//    row of this key existed (or the one that did had committed its move to
//    SUCCESS/FAIL, which the unique check waited for), so any SUCCESS that
//    could be reused is already committed and visible to the next statement
//    (READ COMMITTED). A SUCCESS that commits after our insert cannot exist:
//    it would have had to be RUNNING at our insert, and our insert would
//    have conflicted with it.
// 3. The loser of step 1 may find no RUNNING row: it ended between the
//    conflict and the read. Then the whole thing is tried again (at most
//    MAX_ROUNDS times; each retry needs another report to start and end in
//    that gap).

const MAX_ROUNDS = 5;

export const REPORT_GENERATE_JOB = 'report-generate';
export const REPORT_TIMEOUT_JOB = 'report-timeout';
export const REPORTS_EXPIRE_JOB = 'reports-expire';

export interface CreateReportInput {
  type: unknown;
  params: unknown;
  /** Who asked: "apikey:<id>" over HTTP, "cli:<user>" from the CLI. */
  creator: string;
}

export interface CreateReportResult {
  report: ReportRow;
  /** false: an existing RUNNING (or recent SUCCESS) report of the same request was returned. */
  created: boolean;
}

class ReuseSuccess extends Error {
  constructor(readonly report: ReportRow) {
    super('a recent SUCCESS of this request exists');
  }
}

/** Validates, then inserts or finds the report. Throws ReportInputError naming the field for bad input. */
export async function createReport(db: Knex, input: CreateReportInput, settings: ReportSettings): Promise<CreateReportResult> {
  const { type, params } = parseReportRequest(input.type, input.params);
  await type.check?.(db, params);
  const key: ReportRequestKey = { creator: input.creator, reportType: type.name, paramsHash: hashParams(params) };
  const timeoutMs = reportTimeoutMs(settings.config, type);
  const windowMs = settings.config.REPORTS_REUSE_WINDOW_MS;

  for (let round = 1; round <= MAX_ROUNDS; round++) {
    const at = settings.now?.();
    try {
      const result = await db.transaction(async (trx): Promise<CreateReportResult | null> => {
        const inserted = await insertRunningReport(trx, { ...key, params, timeoutMs }, at);
        if (!inserted) {
          const running = await findRunningReport(trx, key);
          return running ? { report: running, created: false } : null;
        }
        if (windowMs > 0) {
          const recent = await findRecentSuccessReport(trx, key, windowMs, at);
          if (recent) throw new ReuseSuccess(recent);
        }
        const subject = { subjectType: 'report', subjectId: inserted.id };
        await enqueueJob(trx, REPORT_GENERATE_JOB, { reportId: inserted.id }, { ...subject, dedupeKey: `${REPORT_GENERATE_JOB}:${inserted.id}` });
        await enqueueJob(trx, REPORT_TIMEOUT_JOB, { reportId: inserted.id }, {
          ...subject, dedupeKey: `${REPORT_TIMEOUT_JOB}:${inserted.id}`, runAt: new Date(inserted.deadline_at),
        });
        // One per database (dedupe key); an existing row makes this a no-op.
        await enqueueJob(trx, REPORTS_EXPIRE_JOB, {}, { dedupeKey: REPORTS_EXPIRE_JOB, runAt: new Date(inserted.deadline_at) });
        crashPoint('reports.before-create-commit');
        return { report: inserted, created: true };
      });
      if (result) return result;
    } catch (err) {
      if (err instanceof ReuseSuccess) return { report: err.report, created: false };
      throw err;
    }
  }
  throw new Error(`report request ${key.reportType} by ${key.creator} kept changing state under us for ${MAX_ROUNDS} rounds; try again`);
}
