import type { Readable } from 'node:stream';
import type { Knex } from 'knex';
import { ReportNotReadyError } from './errors.js';
import type { ReportServices } from './services.js';
import { getReport, type ReportRow } from './store.js';

// The file of a SUCCESS report, streamed from S3 (routes and CLI). A report
// that is RUNNING or FAIL has none: ReportNotReadyError carries its status.

export interface ReportDownload {
  report: ReportRow;
  fileName: string;
  size: number;
  stream: Readable;
}

export class ReportFileMissingError extends Error {
  constructor(readonly report: ReportRow) {
    super(`report ${report.id} is SUCCESS but its file ${report.file_key} is no longer in storage`);
    this.name = 'ReportFileMissingError';
  }
}

/** null: no such report. */
export async function openReportDownload(
  db: Knex,
  services: ReportServices,
  id: string,
  opts: { signal?: AbortSignal } = {},
): Promise<ReportDownload | null> {
  const report = await getReport(db, id);
  if (!report) return null;
  if (report.status !== 'success' || !report.file_key || !report.file_name) {
    throw new ReportNotReadyError(report.id, report.status.toUpperCase(), report.error_message);
  }
  const storage = services.storage();
  const head = await storage.headObject(report.file_key, opts);
  if (!head) throw new ReportFileMissingError(report);
  const stream = await storage.getObjectStream(report.file_key, opts);
  return { report, fileName: report.file_name, size: head.size, stream };
}
