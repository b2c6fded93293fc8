import crypto from 'node:crypto';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import type { DbOrTrx } from '../db/index.js';
import { JobError, TransientError } from '../jobs/contract/errors.js';
import { classifyS3Error } from '../storage/s3.js';
import { callProviderBytes } from './pdf-fetch.js';
import type { ProviderServices } from './services.js';
import { getAttachment, insertAttachment, replaceAttachment, type AttachmentSource, type ProviderAttachment, type ProviderDocument } from './store.js';

// The authority's PDF, filed once per invoice. The PAC's URL expires within
// minutes, so whoever sees it first (webhook or poller) downloads at once.
// The S3 key derives from the invoice, so two racing downloads write the same
// object; ux_provider_attachments_invoice_kind keeps one row, and the loser
// gets the winner's row back.

// PDFs of invoices are tens of KB; a limit keeps a wrong URL from filling memory.
const MAX_PDF_BYTES = 20 * 1024 * 1024;

export function pdfKey(prefix: string, invoiceId: number): string {
  return `${prefix}${invoiceId}/invoice.pdf`;
}

export interface AttachResult {
  attachment: ProviderAttachment;
  created: boolean;
}

/**
 * Downloads the PDF, stores it in S3 and records it with its SHA-256. With
 * replace (manual re-fetch), an existing row gets the new checksum; without,
 * an existing attachment is returned and nothing is downloaded.
 */
export async function attachPdf(
  db: DbOrTrx,
  services: ProviderServices,
  doc: ProviderDocument,
  url: string,
  source: AttachmentSource,
  opts: { signal?: AbortSignal | undefined; replace?: boolean } = {},
): Promise<AttachResult> {
  if (!opts.replace) {
    const existing = await getAttachment(db, doc.invoice_id);
    if (existing) return { attachment: existing, created: false };
  }
  const timeoutMs = services.config.PROVIDER_API_TIMEOUT_MS;
  const bytes = await callProviderBytes(url, timeoutMs, MAX_PDF_BYTES, opts.signal);
  if (bytes.subarray(0, 5).toString('latin1') !== '%PDF-') {
    throw new TransientError(`the PDF URL of invoice ${doc.invoice_id} returned something that is not a PDF (${bytes.length} bytes)`, {
      nextStep: 'herald pac attach-pdf INVOICE fetches a fresh URL and tries again',
    });
  }
  const sha256 = crypto.createHash('sha256').update(bytes).digest('hex');
  const md5 = crypto.createHash('md5').update(bytes).digest('base64');
  const storage = services.storage();
  const key = pdfKey(services.config.PROVIDER_S3_PREFIX, doc.invoice_id);
  try {
    await storage.client.send(
      new PutObjectCommand({ Bucket: storage.bucket, Key: key, Body: bytes, ContentType: 'application/pdf', ContentMD5: md5 }),
      { abortSignal: opts.signal ? AbortSignal.any([opts.signal, AbortSignal.timeout(services.config.S3_TIMEOUT_MS)]) : AbortSignal.timeout(services.config.S3_TIMEOUT_MS) },
    );
  } catch (err) {
    throw err instanceof JobError ? err : classifyS3Error(err);
  }
  if (opts.replace) {
    const replaced = await replaceAttachment(db, doc.invoice_id, { sizeBytes: bytes.length, sha256 });
    if (replaced) return { attachment: replaced, created: false };
  }
  return insertAttachment(db, {
    document_id: doc.id,
    invoice_id: doc.invoice_id,
    kind: 'pdf',
    bucket: storage.bucket,
    key,
    size_bytes: bytes.length,
    sha256,
    source,
  });
}
