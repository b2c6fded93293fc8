import type { Knex } from 'knex';

// The read-only SQL the report types run on other capabilities' tables
// (uploads, envelopes, envelope_transactions, workbaskets from src/taric and
// src/exporter; invoices and parties from src/invoices). Each page query is
// keyset-paginated (never OFFSET) so a large report reads every row once, in
// bounded memory, and a page costs the same at the end as at the start.
// Dates are UTC days; `to` is inclusive.

type Db = Knex | Knex.Transaction;

async function rows<T>(db: Db, sql: string, bindings: readonly unknown[]): Promise<T[]> {
  const res = (await db.raw(sql, bindings as Knex.RawBinding[])) as { rows: T[] };
  return res.rows;
}

export interface UploadReportRow {
  upload_id: number;
  envelope_id: string;
  envelope_created_at: Date;
  file_name: string;
  file_size: number;
  checksum: string;
  bucket: string;
  s3_key: string;
  correlation_id: string;
  uploaded_at: Date;
  notification_sent: Date | null;
  notification_state: 'sent' | 'pending';
  transaction_count: number;
  first_transaction_id: number | null;
  last_transaction_id: number | null;
  workbasket_ids: string;
  workbasket_titles: string;
}

export interface UploadReportFilter {
  from: string;
  to: string;
  notification?: 'sent' | 'pending' | undefined;
}

/** Uploads whose file reached S3 on a day in [from, to], by upload id, after afterId. */
export async function listUploadReportRows(db: Db, f: UploadReportFilter, afterId: number, limit: number): Promise<UploadReportRow[]> {
  const notification =
    f.notification === 'sent' ? 'AND u.notification_sent IS NOT NULL' : f.notification === 'pending' ? 'AND u.notification_sent IS NULL' : '';
  return rows<UploadReportRow>(
    db,
    `SELECT u.id AS upload_id, e.envelope_id, e.created_at AS envelope_created_at,
            u.file_name, u.file_size, u.checksum, u.bucket, u.key AS s3_key, u.correlation_id::text AS correlation_id,
            u.uploaded_at, u.notification_sent,
            CASE WHEN u.notification_sent IS NULL THEN 'pending' ELSE 'sent' END AS notification_state,
            coalesce(t.transaction_count, 0) AS transaction_count, t.first_transaction_id, t.last_transaction_id,
            coalesce(w.ids, '') AS workbasket_ids, coalesce(w.titles, '') AS workbasket_titles
       FROM uploads u
       JOIN envelopes e ON e.id = u.envelope_id
       LEFT JOIN LATERAL (
         SELECT count(*)::int AS transaction_count,
                min(et.taric_transaction_id) AS first_transaction_id, max(et.taric_transaction_id) AS last_transaction_id
           FROM envelope_transactions et WHERE et.envelope_id = e.id
       ) t ON true
       LEFT JOIN LATERAL (
         SELECT string_agg(wb.id::text, ';' ORDER BY wb.id) AS ids, string_agg(wb.title, '; ' ORDER BY wb.id) AS titles
           FROM workbaskets wb
          WHERE wb.id IN (SELECT et.workbasket_id FROM envelope_transactions et WHERE et.envelope_id = e.id)
       ) w ON true
      WHERE u.uploaded_at >= (?::date)::timestamp AT TIME ZONE 'UTC'
        AND u.uploaded_at < (?::date + 1)::timestamp AT TIME ZONE 'UTC'
        ${notification}
        AND u.id > ?
      ORDER BY u.id
      LIMIT ?`,
    [f.from, f.to, afterId, limit],
  );
}

export interface InvoiceReportRow {
  invoice_id: number;
  supplier_party_id: number;
  supplier_name: string;
  supplier_tax_id: string | null;
  invoice_number: string;
  invoice_number_int: number;
  issue_date: string;
  due_date: string;
  client_name: string;
  currency: string;
  subtotal: string;
  tax_total: string;
  total: string;
  status: string;
  legal_status: string | null;
  created_at: Date;
}

export interface InvoiceReportFilter {
  from: string;
  to: string;
  supplierId?: number | undefined;
  /** Only used when hasLegalStatus. */
  legalStatus?: string | undefined;
  /** invoices.legal_status exists (hasInvoiceLegalStatus). */
  hasLegalStatus: boolean;
}

export interface InvoiceCursor {
  supplierId: number;
  numberInt: number;
}

/** Invoices issued on a day in [from, to], by supplier then number (ux_invoices_supplier_number_int), after the cursor. */
export async function listInvoiceReportRows(db: Db, f: InvoiceReportFilter, after: InvoiceCursor | null, limit: number): Promise<InvoiceReportRow[]> {
  const bindings: unknown[] = [f.from, f.to];
  let where = '';
  if (f.supplierId !== undefined) {
    where += ' AND i.supplier_party_id = ?';
    bindings.push(f.supplierId);
  }
  if (f.hasLegalStatus && f.legalStatus !== undefined) {
    where += ' AND i.legal_status = ?';
    bindings.push(f.legalStatus);
  }
  if (after) {
    where += ' AND (i.supplier_party_id, i.invoice_number_int) > (?, ?)';
    bindings.push(after.supplierId, after.numberInt);
  }
  bindings.push(limit);
  return rows<InvoiceReportRow>(
    db,
    `SELECT i.id AS invoice_id, i.supplier_party_id, i.supplier_name, i.supplier_tax_id,
            i.invoice_number, i.invoice_number_int, i.issue_date::text AS issue_date, i.due_date::text AS due_date,
            i.client_name, i.currency, i.subtotal::text AS subtotal, i.tax_total::text AS tax_total, i.total::text AS total,
            i.status, ${f.hasLegalStatus ? 'i.legal_status::text' : 'NULL::text'} AS legal_status, i.created_at
       FROM invoices i
      WHERE i.issue_date BETWEEN ?::date AND ?::date ${where}
      ORDER BY i.supplier_party_id, i.invoice_number_int
      LIMIT ?`,
    bindings,
  );
}

/**
 * Whether invoices has a legal_status column (added by 0007_providers). On a
 * database without it the invoices report leaves the column empty and
 * refuses a legalStatus filter rather than silently ignoring it.
 */
export async function hasInvoiceLegalStatus(db: Db): Promise<boolean> {
  const [row] = await rows<{ present: boolean }>(
    db,
    `SELECT EXISTS (SELECT 1 FROM information_schema.columns
                     WHERE table_schema = current_schema() AND table_name = 'invoices' AND column_name = 'legal_status') AS present`,
    [],
  );
  return row?.present === true;
}

export async function supplierExists(db: Db, id: number): Promise<boolean> {
  const [row] = await rows<{ found: boolean }>(db, `SELECT EXISTS (SELECT 1 FROM parties WHERE id = ? AND role = 'supplier') AS found`, [id]);
  return row?.found === true;
}
