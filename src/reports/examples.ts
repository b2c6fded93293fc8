import type { ReportResponse } from './present.js';

// Example answers for /openapi.json; redocly lint checks them against the
// route schemas (no-invalid-media-type-examples).

export const REPORT_ID_EXAMPLE = '5f0c2b7a-9d1e-4c3b-8a6f-1e2d3c4b5a69';

export const REPORT_CSV_EXAMPLE =
  'invoice_id,supplier_id,supplier_name,supplier_tax_id,invoice_number,issue_date,due_date,client_name,currency,subtotal,tax_total,total,status,legal_status,created_at\n' +
  '312,7,Acme Trading S.A.,155-1234-5678,ACME-000042,2026-02-01,2026-03-03,Blue Harbour Ltd,USD,30.25,2.12,32.37,issued,DGI_AUTHORIZED,2026-02-01T10:15:02.481Z\n';

export function reportExample(status: 'RUNNING' | 'SUCCESS'): ReportResponse {
  const done = status === 'SUCCESS';
  return {
    id: REPORT_ID_EXAMPLE,
    type: 'invoices',
    status,
    params: { from: '2026-02-01', to: '2026-02-28' },
    creator: 'apikey:3',
    createdAt: '2026-03-01T08:00:00.000Z',
    deadlineAt: '2026-03-01T08:10:00.000Z',
    finishedAt: done ? '2026-03-01T08:00:04.120Z' : null,
    errorMessage: null,
    fileName: done ? `invoices-2026-03-01-${REPORT_ID_EXAMPLE.slice(0, 8)}.csv` : null,
    fileSize: done ? REPORT_CSV_EXAMPLE.length : null,
    rowCount: done ? 1 : null,
    downloadUrl: done ? `/api/v1/reports/${REPORT_ID_EXAMPLE}/download` : null,
  };
}
