import type { Knex } from 'knex';
import { z } from 'zod';
import type { Config } from '../config.js';
import { idTextOrNumber } from '../lib/boundary.js';
import { ReportInputError } from './errors.js';
import { dateRange, parseParams } from './params.js';
import { hasInvoiceLegalStatus, listInvoiceReportRows, listUploadReportRows, supplierExists } from './source-store.js';

// The report types: what each accepts, which columns its CSV has, and how
// its rows are read (a page at a time, see source-store.ts). A new type is
// one more entry here (and a timeout setting in src/config.ts); the reports
// table needs no migration for it.

export type Cell = string | number | Date | null;

export interface ReportType<P = Record<string, unknown>> {
  name: string;
  description: string;
  /** Validates and normalises params; the output is what is stored and hashed. */
  params: z.ZodType<P>;
  /** Checks that need the database; throws ReportInputError naming the field. */
  check?(db: Knex, params: P): Promise<void>;
  /** The setting holding this type's timeout. */
  timeoutSetting: 'REPORTS_UPLOADS_TIMEOUT_MS' | 'REPORTS_INVOICES_TIMEOUT_MS';
  headers: readonly string[];
  /** The rows in header order, page by page. */
  pages(db: Knex, params: P, pageSize: number): AsyncIterable<Cell[][]>;
}

const uploadsParams = dateRange({
  notification: z.enum(['sent', 'pending'], { error: 'must be sent or pending' }).optional(),
});

export const uploadsReport: ReportType<z.infer<typeof uploadsParams>> = {
  name: 'uploads',
  description: 'Envelopes uploaded to S3 in a date range (from, to: YYYY-MM-DD, UTC, inclusive), with workbaskets, checksums and HMRC notification state; notification=sent|pending filters',
  params: uploadsParams,
  timeoutSetting: 'REPORTS_UPLOADS_TIMEOUT_MS',
  headers: [
    'upload_id', 'envelope_id', 'envelope_created_at', 'file_name', 'file_size', 'md5_checksum', 's3_bucket', 's3_key', 'uploaded_at',
    'notification_state', 'notification_sent_at', 'correlation_id', 'transaction_count', 'first_transaction_id', 'last_transaction_id',
    'workbasket_ids', 'workbasket_titles',
  ],
  async *pages(db, p, pageSize) {
    let after = 0;
    for (;;) {
      const page = await listUploadReportRows(db, p, after, pageSize);
      if (page.length === 0) return;
      yield page.map((r) => [
        r.upload_id, r.envelope_id, r.envelope_created_at, r.file_name, r.file_size, r.checksum, r.bucket, r.s3_key, r.uploaded_at,
        r.notification_state, r.notification_sent, r.correlation_id, r.transaction_count, r.first_transaction_id, r.last_transaction_id,
        r.workbasket_ids, r.workbasket_titles,
      ]);
      if (page.length < pageSize) return;
      after = page[page.length - 1]!.upload_id;
    }
  },
};

const invoicesParams = dateRange({
  supplierId: idTextOrNumber().optional(),
  legalStatus: z.string().regex(/^[A-Za-z0-9_-]{1,40}$/, { error: 'must be 1 to 40 letters, digits, _ or -' }).optional(),
});

export const invoicesReport: ReportType<z.infer<typeof invoicesParams>> = {
  name: 'invoices',
  description: 'Invoices issued in a date range (from, to: YYYY-MM-DD, inclusive), by supplier and number; supplierId and legalStatus filter',
  params: invoicesParams,
  timeoutSetting: 'REPORTS_INVOICES_TIMEOUT_MS',
  async check(db, p) {
    if (p.supplierId !== undefined && !(await supplierExists(db, p.supplierId))) {
      throw new ReportInputError('params.supplierId', `no supplier with id ${p.supplierId}`);
    }
    if (p.legalStatus !== undefined && !(await hasInvoiceLegalStatus(db))) {
      throw new ReportInputError('params.legalStatus', 'invoices have no legal status yet (it arrives with e-invoicing provider submission); leave it out');
    }
  },
  headers: [
    'invoice_id', 'supplier_id', 'supplier_name', 'supplier_tax_id', 'invoice_number', 'issue_date', 'due_date', 'client_name', 'currency',
    'subtotal', 'tax_total', 'total', 'status', 'legal_status', 'created_at',
  ],
  async *pages(db, p, pageSize) {
    // Read once per report: a column added while one runs shows up in the next.
    const hasLegalStatus = await hasInvoiceLegalStatus(db);
    if (p.legalStatus !== undefined && !hasLegalStatus) {
      throw new ReportInputError('params.legalStatus', 'invoices have no legal_status column any more; the filter cannot be applied');
    }
    let after: { supplierId: number; numberInt: number } | null = null;
    for (;;) {
      const page = await listInvoiceReportRows(db, { ...p, hasLegalStatus }, after, pageSize);
      if (page.length === 0) return;
      yield page.map((r) => [
        r.invoice_id, r.supplier_party_id, r.supplier_name, r.supplier_tax_id, r.invoice_number, r.issue_date, r.due_date, r.client_name,
        r.currency, r.subtotal, r.tax_total, r.total, r.status, r.legal_status, r.created_at,
      ]);
      if (page.length < pageSize) return;
      const last = page[page.length - 1]!;
      after = { supplierId: last.supplier_party_id, numberInt: Number(last.invoice_number_int) };
    }
  },
};

export const REPORT_TYPES: ReadonlyMap<string, ReportType> = new Map(
  ([uploadsReport, invoicesReport] as unknown as ReportType[]).map((t) => [t.name, t]),
);

export const REPORT_TYPE_NAMES = [...REPORT_TYPES.keys()];

export function getReportType(name: string): ReportType {
  const type = REPORT_TYPES.get(name);
  if (!type) throw new ReportInputError('type', `must be one of ${REPORT_TYPE_NAMES.join(', ')}, got "${name}"`);
  return type;
}

export function reportTimeoutMs(config: Config, type: ReportType): number {
  return config[type.timeoutSetting];
}

/** The type and its validated, normalised params (what gets stored and hashed). */
export function parseReportRequest(typeName: unknown, params: unknown): { type: ReportType; params: Record<string, unknown> } {
  if (typeof typeName !== 'string' || typeName === '') throw new ReportInputError('type', `is required: one of ${REPORT_TYPE_NAMES.join(', ')}`);
  const type = getReportType(typeName);
  return { type, params: parseParams(type.params, params) as Record<string, unknown> };
}
