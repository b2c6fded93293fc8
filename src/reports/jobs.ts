import type { Config } from '../config.js';
import type { JobDefinition } from '../jobs/contract/types.js';
import { REPORT_GENERATE_JOB, REPORT_TIMEOUT_JOB, REPORTS_EXPIRE_JOB } from './create.js';
import { classifyReportError, discardReportFile, generateReport, reportFailureMessage } from './generate.js';
import type { ReportServices } from './services.js';
import { expireOverdueReports, expireReport, failReport, getReport } from './store.js';

declare module '../jobs/contract/types.js' {
  interface JobPayloads {
    'report-generate': { reportId: string };
    'report-timeout': { reportId: string };
    'reports-expire': Record<string, never>;
  }
}

// Three job kinds (retry schedules in docs/retry-schedules.md):
//   report-generate  one per report: write the CSV, put it to S3, SUCCESS.
//   report-timeout   one per report, scheduled at its deadline in the same
//                    transaction as the report: still RUNNING then -> FAIL
//                    "timed out". After a Redis loss the jobs sweeper rings it
//                    again like any due row.
//   reports-expire   one per database, recurring (snoozes itself): fails every
//                    RUNNING report past its deadline. The backstop for a
//                    report whose timeout job is gone (cleared by an admin,
//                    failed permanently, or a row written by hand).

export const REPORT_GENERATE_MAX_ATTEMPTS = 5;

/** The report kinds, with the settings and services (S3, made on first use) they run with; built by the composition root. */
export function reportJobs(config: Pick<Config, 'REPORTS_UPLOADS_TIMEOUT_MS' | 'REPORTS_INVOICES_TIMEOUT_MS' | 'REPORTS_EXPIRE_INTERVAL_MS'>, services: () => ReportServices): JobDefinition[] {
  const reportGenerateJob: JobDefinition<'report-generate'> = {
    kind: REPORT_GENERATE_JOB,
    // A run may take up to the longest report timeout; past it the report has
    // been failed "timed out" anyway.
    timeoutMs: Math.max(config.REPORTS_UPLOADS_TIMEOUT_MS, config.REPORTS_INVOICES_TIMEOUT_MS),
    maxAttempts: REPORT_GENERATE_MAX_ATTEMPTS,
    // Transient failures are S3 or database hiccups: retry within the report's timeout.
    backoff: { baseMs: 5_000, capMs: 60_000 },
    async run({ reportId }, { db, signal, log, job, now }) {
      try {
        await generateReport(db, services(), reportId, { signal, log, now });
      } catch (err) {
        const classified = classifyReportError(err);
        const last = job.attempts >= (job.max_attempts ?? REPORT_GENERATE_MAX_ATTEMPTS);
        // The report learns how it ended now; the job row keeps the error for operators.
        if (classified.errorClass === 'permanent' || classified.errorClass === 'auth' || last) {
          const settled = await failReport(db, reportId, reportFailureMessage(classified));
          if (settled) log.warn({ reportId, errorClass: classified.errorClass }, 'report failed: %s', settled.error_message);
        }
        throw classified;
      }
    },
  };

  const reportTimeoutJob: JobDefinition<'report-timeout'> = {
    kind: REPORT_TIMEOUT_JOB,
    timeoutMs: 30_000,
    maxAttempts: 20,
    backoff: { baseMs: 1_000, capMs: 30_000 },
    async run({ reportId }, { db, log, now }) {
      const at = now();
      const expired = await expireReport(db, reportId, at);
      if (expired) {
        log.info({ reportId, timeoutMs: expired.timeout_ms }, 'report timed out');
        // A worker that died after its upload left the file behind.
        await discardReportFile(services(), expired, log);
        return;
      }
      const report = await getReport(db, reportId);
      if (report?.status !== 'running') return; // it ended in time
      // Rung before the deadline by this process's clock (a little behind the database's): come back then.
      return { snoozeMs: Math.max(100, new Date(report.deadline_at).getTime() - at.getTime()) };
    },
  };

  const reportsExpireJob: JobDefinition<'reports-expire'> = {
    kind: REPORTS_EXPIRE_JOB,
    timeoutMs: 60_000,
    maxAttempts: 10,
    backoff: { baseMs: 10_000, capMs: 300_000 },
    // It never completes, so the stalls of a long life (workers killed while it
    // ran) must not add up to failed_permanent and end the sweep.
    maxStalls: 1_000_000,
    async run(_payload, { db, log, now }) {
      const interval = config.REPORTS_EXPIRE_INTERVAL_MS;
      try {
        let total = 0;
        for (;;) {
          const moved = await expireOverdueReports(db, now());
          for (const report of moved) await discardReportFile(services(), report, log);
          total += moved.length;
          if (moved.length < 1000) break;
        }
        if (total > 0) log.warn({ expired: total }, `reports-expire: failed ${total} RUNNING reports past their deadline whose timeout job had not`);
      } catch (err) {
        // A failure must not end the recurring job: try again next interval.
        log.error({ err }, 'reports-expire sweep failed; trying again at the next interval');
      }
      return { snoozeMs: interval };
    },
  };

  return [reportGenerateJob, reportTimeoutJob, reportsExpireJob] as JobDefinition[];
}

