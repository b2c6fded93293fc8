import type { Knex } from 'knex';
import { latestJobOfSubjects } from '../jobs/store/views.js';

// Read-only listings for the TARIC and invoices views. They read tables of
// src/taric, src/exporter, src/invoices and src/providers for display only;
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

export async function listEnvelopeViews(db: Db, limit = 100): Promise<EnvelopeView[]> {
  const { rows } = await db.raw(
    `SELECT e.id AS envelope_row_id, e.envelope_id, e.size_bytes, e.md5, e.created_at,
            (SELECT string_agg(DISTINCT et.workbasket_id::text, ', ') FROM envelope_transactions et WHERE et.envelope_id = e.id) AS workbaskets,
            u.id AS upload_id, u.bucket, u.key, u.checksum, u.uploaded_at, u.notification_sent
       FROM envelopes e
       LEFT JOIN uploads u ON u.envelope_id = e.id
      ORDER BY e.id DESC LIMIT ?`,
    [limit],
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
  document_id: number | null;
  document_status: string | null;
  legal_status: string | null;
  document_error: string | null;
  has_pdf: boolean | null;
}

async function hasTable(db: Db, name: string): Promise<boolean> {
  const { rows } = await db.raw(`SELECT to_regclass(?) IS NOT NULL AS present`, [name]);
  return Boolean(rows[0]?.present);
}

/** Invoice requests with their invoice and, once src/providers' tables exist, legal status and PDF. */
export async function listInvoiceRequestViews(db: Db, opts: { id?: string | undefined; limit?: number } = {}): Promise<InvoiceRequestViewRow[]> {
  const providers = (await hasTable(db, 'provider_documents')) && (await hasTable(db, 'provider_attachments'));
  const docCols = providers
    ? `d.id AS document_id, d.status AS document_status, d.legal_status, d.last_error AS document_error,
       EXISTS (SELECT 1 FROM provider_attachments a WHERE a.invoice_id = i.id) AS has_pdf`
    : `NULL::int AS document_id, NULL AS document_status, NULL AS legal_status, NULL AS document_error, NULL::boolean AS has_pdf`;
  const docJoin = providers ? `LEFT JOIN provider_documents d ON d.invoice_id = i.id` : '';
  const filter = opts.id ? `WHERE r.id::text = ? OR i.id::text = ?` : '';
  const { rows } = await db.raw(
    `SELECT r.id, r.caller, r.status, r.invoice_id, i.invoice_number, r.error_message, r.created_at, ${docCols}
       FROM invoice_requests r
       LEFT JOIN invoices i ON i.id = r.invoice_id
       ${docJoin}
       ${filter}
      ORDER BY r.created_at DESC LIMIT ?`,
    [...(opts.id ? [opts.id, opts.id] : []), opts.limit ?? 100],
  );
  return rows as InvoiceRequestViewRow[];
}
