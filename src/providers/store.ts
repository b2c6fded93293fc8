import type { Knex } from 'knex';
import type { DbOrTrx } from '../db/index.js';

// Every SQL statement on supplier_providers, provider_documents and
// provider_attachments (and the invoices.legal_status copy). State changes
// are compare-and-set and return the row, or null when another process
// (worker, webhook, poller) got there first.

export type ProviderKind = 'pac' | 'invoicing_api';
export type LegalStatus = 'REGISTERED' | 'PAC_AUTHORIZED' | 'DGI_AUTHORIZED' | 'PAC_REJECTED' | 'DGI_REJECTED';
export type DocumentStatus = 'pending' | 'submitted' | 'rejected' | 'failed';
export type AttachmentSource = 'webhook' | 'poll' | 'manual';

export const LEGAL_STATUSES: readonly LegalStatus[] = ['REGISTERED', 'PAC_AUTHORIZED', 'DGI_AUTHORIZED', 'PAC_REJECTED', 'DGI_REJECTED'];
export const TERMINAL_LEGAL_STATUSES: ReadonlySet<LegalStatus> = new Set(['DGI_AUTHORIZED', 'PAC_REJECTED', 'DGI_REJECTED']);
/** Statuses under which the authority's PDF exists and is fetched. */
export const AUTHORIZED_LEGAL_STATUSES: ReadonlySet<LegalStatus> = new Set(['PAC_AUTHORIZED', 'DGI_AUTHORIZED']);

export function isLegalStatus(s: unknown): s is LegalStatus {
  return typeof s === 'string' && (LEGAL_STATUSES as readonly string[]).includes(s);
}

export interface SupplierProvider {
  supplier_party_id: number;
  provider_kind: ProviderKind;
  company_id: string;
  credentials_ref: string;
}

export interface ProviderDocument {
  id: number;
  invoice_id: number;
  document_kind: 'invoice';
  provider_kind: ProviderKind;
  company_id: string;
  credentials_ref: string;
  idempotency_key: string;
  status: DocumentStatus;
  provider_document_id: string | null;
  cufe: string | null;
  legal_status: LegalStatus | null;
  submit_started_at: Date | null;
  submitted_at: Date | null;
  final_at: Date | null;
  poll_generation: number;
  poll_attempts: number;
  needs_attention_at: Date | null;
  error_kind: string | null;
  last_error: string | null;
  next_step: string | null;
}

export interface ProviderAttachment {
  id: number;
  document_id: number;
  invoice_id: number;
  kind: 'pdf';
  bucket: string;
  key: string;
  size_bytes: number;
  sha256: string;
  source: AttachmentSource;
  created_at: Date;
}

async function first<T>(db: DbOrTrx, sql: string, bindings: Knex.RawBinding[]): Promise<T | null> {
  const { rows } = await db.raw(sql, bindings);
  return (rows[0] as T | undefined) ?? null;
}

/** Creates or replaces a supplier's provider settings (affects invoices issued from now on). */
export async function upsertSupplierProvider(db: DbOrTrx, p: SupplierProvider): Promise<SupplierProvider> {
  return (await first<SupplierProvider>(
    db,
    `INSERT INTO supplier_providers (supplier_party_id, provider_kind, company_id, credentials_ref)
     VALUES (?, ?, ?, ?)
     ON CONFLICT (supplier_party_id) DO UPDATE
       SET provider_kind = EXCLUDED.provider_kind, company_id = EXCLUDED.company_id,
           credentials_ref = EXCLUDED.credentials_ref, updated_at = now()
     RETURNING supplier_party_id, provider_kind, company_id, credentials_ref`,
    [p.supplier_party_id, p.provider_kind, p.company_id, p.credentials_ref],
  ))!;
}

export async function getDocument(db: DbOrTrx, id: number): Promise<ProviderDocument | null> {
  return first(db, `SELECT * FROM provider_documents WHERE id = ?`, [id]);
}

export async function getDocumentByInvoice(db: DbOrTrx, invoiceId: number): Promise<ProviderDocument | null> {
  return first(db, `SELECT * FROM provider_documents WHERE invoice_id = ? AND document_kind = 'invoice'`, [invoiceId]);
}

export async function findDocumentByProviderId(db: DbOrTrx, companyId: string, providerDocumentId: string): Promise<ProviderDocument | null> {
  return first(db, `SELECT * FROM provider_documents WHERE company_id = ? AND provider_document_id = ?`, [companyId, providerDocumentId]);
}

/**
 * Recorded before the POST: a later attempt that finds it set knows the
 * provider may already hold the document and looks it up first.
 */
export async function markSubmitStarted(db: DbOrTrx, id: number): Promise<ProviderDocument | null> {
  return first(
    db,
    `UPDATE provider_documents SET submit_started_at = coalesce(submit_started_at, now()), updated_at = now()
      WHERE id = ? AND status = 'pending' RETURNING *`,
    [id],
  );
}

/** pending -> submitted, with the provider's id and first legal status. */
export async function markDocumentSubmitted(
  db: DbOrTrx,
  id: number,
  r: { providerDocumentId: string; cufe: string | null; legalStatus: LegalStatus | null },
): Promise<ProviderDocument | null> {
  const { rows } = await db.raw(
    `WITH moved AS (
       UPDATE provider_documents
          SET status = 'submitted', provider_document_id = ?, cufe = ?, legal_status = ?::text, submitted_at = now(),
              final_at = CASE WHEN ?::text IN ('DGI_AUTHORIZED', 'PAC_REJECTED', 'DGI_REJECTED') THEN now() END,
              error_kind = NULL, last_error = NULL, next_step = NULL, updated_at = now()
        WHERE id = ? AND status = 'pending'
        RETURNING *
     ), copied AS (
       UPDATE invoices i SET legal_status = m.legal_status FROM moved m WHERE i.id = m.invoice_id
     )
     SELECT * FROM moved`,
    [r.providerDocumentId, r.cufe, r.legalStatus, r.legalStatus, id],
  );
  return (rows[0] as ProviderDocument | undefined) ?? null;
}

/** pending -> rejected (the PAC refused it: never resubmitted), legal status PAC_REJECTED when the provider is a PAC. */
export async function markDocumentRejected(
  db: DbOrTrx,
  id: number,
  e: { errorKind: string; message: string; nextStep: string; legalStatus: LegalStatus | null },
): Promise<ProviderDocument | null> {
  const { rows } = await db.raw(
    `WITH moved AS (
       UPDATE provider_documents
          SET status = 'rejected', legal_status = ?::text, final_at = CASE WHEN ?::text IS NULL THEN NULL ELSE now() END,
              error_kind = ?, last_error = ?, next_step = ?, updated_at = now()
        WHERE id = ? AND status = 'pending'
        RETURNING *
     ), copied AS (
       UPDATE invoices i SET legal_status = m.legal_status FROM moved m WHERE i.id = m.invoice_id
     )
     SELECT * FROM moved`,
    [e.legalStatus, e.legalStatus, e.errorKind, e.message, e.nextStep, id],
  );
  return (rows[0] as ProviderDocument | undefined) ?? null;
}

/** pending -> failed: retries exhausted or credentials refused; `herald pac resubmit` puts it back. */
export async function markDocumentFailed(db: DbOrTrx, id: number, e: { errorKind: string; message: string; nextStep: string }): Promise<ProviderDocument | null> {
  return first(
    db,
    `UPDATE provider_documents SET status = 'failed', error_kind = ?, last_error = ?, next_step = ?, updated_at = now()
      WHERE id = ? AND status = 'pending' RETURNING *`,
    [e.errorKind, e.message, e.nextStep, id],
  );
}

/** The last error of a submission that will be retried (shown on the admin page and by `herald pac status`). */
export async function recordDocumentError(db: DbOrTrx, id: number, e: { errorKind: string; message: string; nextStep: string }): Promise<void> {
  await db.raw(`UPDATE provider_documents SET error_kind = ?, last_error = ?, next_step = ?, updated_at = now() WHERE id = ?`, [
    e.errorKind,
    e.message,
    e.nextStep,
    id,
  ]);
}

/**
 * Forward-only legal status: moves only to a higher rank (REGISTERED <
 * PAC_AUTHORIZED < terminal), so duplicate and out-of-order webhooks and a
 * racing poller cannot move it back, and a terminal status is final. Null
 * when the row already had this status or a later one.
 */
export async function advanceLegalStatus(db: DbOrTrx, id: number, to: LegalStatus, cufe: string | null = null): Promise<ProviderDocument | null> {
  const { rows } = await db.raw(
    `WITH moved AS (
       UPDATE provider_documents
          SET legal_status = ?::text, cufe = coalesce(?, cufe),
              final_at = CASE WHEN ?::text IN ('DGI_AUTHORIZED', 'PAC_REJECTED', 'DGI_REJECTED') THEN now() END,
              updated_at = now()
        WHERE id = ? AND status = 'submitted'
          AND provider_legal_status_rank(?::text) > provider_legal_status_rank(legal_status)
        RETURNING *
     ), copied AS (
       UPDATE invoices i SET legal_status = m.legal_status FROM moved m WHERE i.id = m.invoice_id
     )
     SELECT * FROM moved`,
    [to, cufe, to, id, to],
  );
  return (rows[0] as ProviderDocument | undefined) ?? null;
}

export async function markNeedsAttention(db: DbOrTrx, id: number, generation: number, reason: string): Promise<ProviderDocument | null> {
  return first(
    db,
    `UPDATE provider_documents
        SET needs_attention_at = now(), error_kind = 'poll_exhausted', last_error = ?,
            next_step = 'ask the PAC about the document, then run herald pac repoll INVOICE', updated_at = now()
      WHERE id = ? AND poll_generation = ? AND needs_attention_at IS NULL RETURNING *`,
    [reason, id, generation],
  );
}

/** Starts a new round of polling (herald pac repoll): the old round's job sees a different generation and stops. */
export async function restartPolling(db: DbOrTrx, id: number): Promise<ProviderDocument | null> {
  return first(
    db,
    `UPDATE provider_documents
        SET poll_generation = poll_generation + 1, poll_attempts = 0, needs_attention_at = NULL, updated_at = now()
      WHERE id = ? AND status = 'submitted' RETURNING *`,
    [id],
  );
}

/** failed -> pending (herald pac resubmit): the same idempotency key, so the provider sees the same document. */
export async function reopenDocument(db: DbOrTrx, id: number): Promise<ProviderDocument | null> {
  return first(db, `UPDATE provider_documents SET status = 'pending', updated_at = now() WHERE id = ? AND status = 'failed' RETURNING *`, [id]);
}

export async function getAttachment(db: DbOrTrx, invoiceId: number, kind: 'pdf' = 'pdf'): Promise<ProviderAttachment | null> {
  return first(db, `SELECT * FROM provider_attachments WHERE invoice_id = ? AND kind = ?`, [invoiceId, kind]);
}

/**
 * The one attachment per (invoice, kind): the loser of a race inserts
 * nothing and gets the winner's row back (onConflict, not a caught 23505,
 * which would abort a surrounding transaction).
 */
export async function insertAttachment(
  db: DbOrTrx,
  a: Omit<ProviderAttachment, 'id' | 'created_at'>,
): Promise<{ attachment: ProviderAttachment; created: boolean }> {
  const inserted = await first<ProviderAttachment>(
    db,
    `INSERT INTO provider_attachments (document_id, invoice_id, kind, bucket, key, size_bytes, sha256, source)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?)
     ON CONFLICT ON CONSTRAINT ux_provider_attachments_invoice_kind DO NOTHING
     RETURNING *`,
    [a.document_id, a.invoice_id, a.kind, a.bucket, a.key, a.size_bytes, a.sha256, a.source],
  );
  if (inserted) return { attachment: inserted, created: true };
  return { attachment: (await getAttachment(db, a.invoice_id, a.kind))!, created: false };
}

/** Replaces the stored checksum after a manual re-fetch (herald pac attach-pdf). */
export async function replaceAttachment(db: DbOrTrx, invoiceId: number, a: { sizeBytes: number; sha256: string }): Promise<ProviderAttachment | null> {
  return first(
    db,
    `UPDATE provider_attachments SET size_bytes = ?, sha256 = ?, source = 'manual', created_at = now()
      WHERE invoice_id = ? AND kind = 'pdf' RETURNING *`,
    [a.sizeBytes, a.sha256, invoiceId],
  );
}
