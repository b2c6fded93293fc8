import type { Knex } from 'knex';
import type { LegalStatus } from '../providers/store.js';

// Read-only listings for the Invoices and Reports pages. They read tables of
// src/invoices, src/providers and src/reports for display only; every change
// goes through those capabilities' own functions (repoll, attach-pdf, ...).

type Db = Knex | Knex.Transaction;

export interface InvoiceViewRow {
  id: number;
  invoice_number: string;
  supplier_party_id: number;
  supplier_name: string;
  client_name: string;
  issue_date: string;
  currency: string;
  total: string;
  created_at: Date;
  /** The invoice request it came from; null when made synchronously (POST /api/v1/invoices/generate, the form). */
  request_id: string | null;
  document_id: number | null;
  document_status: string | null;
  legal_status: LegalStatus | null;
  document_error: string | null;
  next_step: string | null;
  needs_attention_at: Date | null;
  pdf_bytes: number | null;
}

export const INVOICE_PAGE_SIZE = 50;

/**
 * Every invoice, however it was made, newest first, with its provider
 * document and PDF. Keyset pages (`before` an id) rather than OFFSET/count:
 * the table only grows, and a page costs the same on the millionth invoice.
 */
export async function listInvoiceViews(db: Db, opts: { id?: number | undefined; before?: number | undefined; limit?: number } = {}): Promise<InvoiceViewRow[]> {
  const { rows } = await db.raw(
    `SELECT i.id, i.invoice_number, i.supplier_party_id, i.supplier_name, i.client_name, i.issue_date::text AS issue_date,
            i.currency, i.total, i.created_at, i.request_id,
            d.id AS document_id, d.status AS document_status, d.legal_status, d.last_error AS document_error, d.next_step, d.needs_attention_at,
            a.size_bytes AS pdf_bytes
       FROM invoices i
       LEFT JOIN provider_documents d ON d.invoice_id = i.id AND d.document_kind = 'invoice'
       LEFT JOIN provider_attachments a ON a.invoice_id = i.id AND a.kind = 'pdf'
      WHERE (?::int IS NULL OR i.id = ?) AND (?::int IS NULL OR i.id < ?)
      ORDER BY i.id DESC LIMIT ?`,
    [opts.id ?? null, opts.id ?? null, opts.before ?? null, opts.before ?? null, opts.limit ?? INVOICE_PAGE_SIZE],
  );
  return rows as InvoiceViewRow[];
}

export interface ReportViewRow {
  id: string;
  report_type: string;
  status: string;
  params: Record<string, unknown>;
  creator: string;
  created_at: Date;
  deadline_at: Date;
  finished_at: Date | null;
  file_name: string | null;
  file_size: number | null;
  row_count: number | null;
  error_message: string | null;
}

/** Reports, newest first; one when `id` is given. */
export async function listReportViews(db: Db, opts: { id?: string | undefined; limit?: number } = {}): Promise<ReportViewRow[]> {
  const { rows } = await db.raw(
    `SELECT id, report_type, status, params, creator, created_at, deadline_at, finished_at, file_name, file_size, row_count, error_message
       FROM reports
      WHERE (?::uuid IS NULL OR id = ?::uuid)
      ORDER BY created_at DESC, id DESC LIMIT ?`,
    [opts.id ?? null, opts.id ?? null, opts.limit ?? 100],
  );
  return rows as ReportViewRow[];
}
