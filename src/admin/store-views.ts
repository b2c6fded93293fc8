import type { Knex } from 'knex';
import { latestJobOfSubjects } from '../jobs/store/views.js';

// Read-only listings for the TARIC view and the invoice requests. They read tables of
// src/taric, src/exporter and src/invoices for display only;
// every change goes through those capabilities' own functions.

type Db = Knex | Knex.Transaction;

export interface EnvelopeView {
  envelope_row_id: number;
  envelope_id: string;
  size_bytes: number;
  md5: string;
  created_at: Date;
  workbaskets: string | null;
  upload_id: number | null;
  bucket: string | null;
  key: string | null;
  checksum: string | null;
  uploaded_at: Date | null;
  notification_sent: Date | null;
  notify_status: string | null;
  notify_error: string | null;
}

/** The newest envelopes with their upload; only upload `uploadId`'s envelope when given. */
export async function listEnvelopeViews(db: Db, opts: { uploadId?: number | undefined; limit?: number } = {}): Promise<EnvelopeView[]> {
  const { rows } = await db.raw(
    `SELECT e.id AS envelope_row_id, e.envelope_id, e.size_bytes, e.md5, e.created_at,
            (SELECT string_agg(DISTINCT et.workbasket_id::text, ', ') FROM envelope_transactions et WHERE et.envelope_id = e.id) AS workbaskets,
            u.id AS upload_id, u.bucket, u.key, u.checksum, u.uploaded_at, u.notification_sent
       FROM envelopes e
       LEFT JOIN uploads u ON u.envelope_id = e.id
      WHERE (?::int IS NULL OR u.id = ?)
      ORDER BY e.id DESC LIMIT ?`,
    [opts.uploadId ?? null, opts.uploadId ?? null, opts.limit ?? 100],
  );
  const uploadIds = (rows as EnvelopeView[]).filter((r) => r.upload_id !== null).map((r) => String(r.upload_id));
  const notify = await latestJobOfSubjects(db, 'notify-hmrc', 'upload', uploadIds);
  return (rows as EnvelopeView[]).map((r) => {
    const job = r.upload_id === null ? undefined : notify.get(String(r.upload_id));
    return { ...r, notify_status: job?.status ?? null, notify_error: job?.lastError ?? null };
  });
}

export interface InvoiceRequestViewRow {
  id: string;
  caller: string;
  status: string;
  invoice_id: number | null;
  invoice_number: string | null;
  error_message: string | null;
  created_at: Date;
}

/** Invoice requests (every status, failed ones too) with their invoice's number, newest first; one when `id` is given. */
export async function listInvoiceRequestViews(db: Db, opts: { id?: string | undefined; limit?: number } = {}): Promise<InvoiceRequestViewRow[]> {
  const { rows } = await db.raw(
    `SELECT r.id, r.caller, r.status, r.invoice_id, i.invoice_number, r.error_message, r.created_at
       FROM invoice_requests r
       LEFT JOIN invoices i ON i.id = r.invoice_id
      WHERE (?::uuid IS NULL OR r.id = ?::uuid)
      ORDER BY r.created_at DESC, r.id LIMIT ?`,
    [opts.id ?? null, opts.id ?? null, opts.limit ?? 100],
  );
  return rows as InvoiceRequestViewRow[];
}
