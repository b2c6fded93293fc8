import { z } from 'zod';
import type { ReportRow } from './store.js';

// A report as the API and `herald report show --json` present it. Statuses
// are stored lowercase (house rule for status columns) and shown uppercase,
// as the issue names them: RUNNING, SUCCESS, FAIL.

export const reportResponse = z.object({
  id: z.uuid(),
  type: z.string(),
  status: z.enum(['RUNNING', 'SUCCESS', 'FAIL']),
  params: z.record(z.string(), z.unknown()),
  creator: z.string(),
  createdAt: z.string(),
  deadlineAt: z.string(),
  finishedAt: z.string().nullable(),
  errorMessage: z.string().nullable(),
  fileName: z.string().nullable(),
  fileSize: z.int().nullable(),
  rowCount: z.int().nullable(),
  downloadUrl: z.string().nullable(),
});

export type ReportResponse = z.infer<typeof reportResponse>;

const iso = (d: Date | string) => new Date(d).toISOString();

export function toReportResponse(r: ReportRow): ReportResponse {
  return {
    id: r.id,
    type: r.report_type,
    status: r.status.toUpperCase() as ReportResponse['status'],
    params: r.params,
    creator: r.creator,
    createdAt: iso(r.created_at),
    deadlineAt: iso(r.deadline_at),
    finishedAt: r.finished_at ? iso(r.finished_at) : null,
    errorMessage: r.error_message,
    fileName: r.file_name,
    fileSize: r.file_size === null ? null : Number(r.file_size),
    rowCount: r.row_count === null ? null : Number(r.row_count),
    downloadUrl: r.status === 'success' ? `/api/v1/reports/${r.id}/download` : null,
  };
}

/** Human-readable lines for `herald report show`. */
export function describeReport(r: ReportResponse): string {
  const lines = [
    `report ${r.id}`,
    `  type      ${r.type} ${JSON.stringify(r.params)}`,
    `  status    ${r.status}`,
    `  creator   ${r.creator}`,
    `  created   ${r.createdAt} (deadline ${r.deadlineAt})`,
  ];
  if (r.finishedAt) lines.push(`  finished  ${r.finishedAt}`);
  if (r.status === 'SUCCESS') lines.push(`  file      ${r.fileName} (${r.rowCount} rows, ${r.fileSize} bytes)`);
  if (r.errorMessage) lines.push(`  error     ${r.errorMessage}`);
  return `${lines.join('\n')}\n`;
}
