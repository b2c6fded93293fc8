import type { Readable } from 'node:stream';
import type { Knex } from 'knex';
import { JobError } from '../jobs/contract/errors.js';
import { attachPdf, type AttachResult } from './pdf.js';
import type { ProviderServices } from './services.js';
import { getAttachment, getDocumentByInvoice, restartPolling, type ProviderDocument } from './store.js';
import { schedulePolling } from './submit.js';

// The operator's actions on one invoice's provider document, shared by
// `herald pac attach-pdf|repoll` and the admin page's buttons. The services
// (S3 client, provider clients) are the caller's: the server's own, built
// once, or a command's for its one run.

/** An action an operator asked for that cannot be done; the message says why. */
export class OperationRefused extends Error {}

export async function documentOfInvoice(db: Knex, invoiceId: number): Promise<ProviderDocument> {
  const doc = await getDocumentByInvoice(db, invoiceId);
  if (!doc) throw new OperationRefused(`invoice ${invoiceId} has no provider document (is its supplier configured with herald pac set-provider?)`);
  return doc;
}

/** Fetches the authority's PDF again (the PAC gives a fresh, short-lived URL) and stores it. */
export async function refetchPdf(db: Knex, services: ProviderServices, invoiceId: number): Promise<AttachResult> {
  const doc = await documentOfInvoice(db, invoiceId);
  if (doc.provider_kind !== 'pac' || !doc.provider_document_id) throw new OperationRefused(`invoice ${invoiceId} has no PAC document yet (status ${doc.status})`);
  try {
    const status = await services.client('pac').status!({ companyId: doc.company_id, token: services.token('pac', doc.credentials_ref), providerDocumentId: doc.provider_document_id });
    if (!status.pdfUrl) throw new OperationRefused(`the PAC offers no PDF for invoice ${invoiceId} (legal status ${status.legalStatus})`);
    return await attachPdf(db, services, doc, status.pdfUrl, 'manual', { replace: true });
  } catch (err) {
    if (err instanceof JobError) throw new OperationRefused(`${err.message}${err.nextStep ? ` (next step: ${err.nextStep})` : ''}`, { cause: err });
    throw err;
  }
}

/** Starts a new round of status polling (due at once) and clears the attention mark. */
export async function repollInvoice(db: Knex, services: ProviderServices, invoiceId: number): Promise<ProviderDocument> {
  return db.transaction(async (trx) => {
    const d = await documentOfInvoice(trx as unknown as Knex, invoiceId);
    const moved = await restartPolling(trx, d.id);
    if (!moved) throw new OperationRefused(`invoice ${invoiceId} is ${d.status}, not submitted: nothing to poll`);
    await schedulePolling(trx, services, moved, new Date(Date.now() - services.config.PROVIDER_POLL_INTERVAL_MS));
    return moved;
  });
}

/** The PDF filed for an invoice, streamed from S3 (the admin page's PDF link); null when none is filed. */
export async function openInvoicePdf(db: Knex, services: ProviderServices, invoiceId: number): Promise<{ stream: Readable; sizeBytes: number } | null> {
  const attachment = await getAttachment(db, invoiceId);
  if (!attachment) return null;
  try {
    const storage = services.storage();
    if (storage.bucket !== attachment.bucket) {
      throw new OperationRefused(`the PDF of invoice ${invoiceId} is in bucket ${attachment.bucket}; this server's S3 settings name ${storage.bucket}`);
    }
    const stream = await storage.getObjectStream(attachment.key);
    return { stream, sizeBytes: attachment.size_bytes };
  } catch (err) {
    if (err instanceof JobError) throw new OperationRefused(`the PDF of invoice ${invoiceId} cannot be read from S3: ${err.message}`, { cause: err });
    throw err;
  }
}
