import crypto from 'node:crypto';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import type { DbOrTrx } from '../db/index.js';
import { JobError } from '../jobs/contract/errors.js';
import { classifyS3Error } from '../storage/s3.js';
import { allowedPdfOrigins, fetchPdf, PdfRefused, redactUrl } from './pdf-fetch.js';
import type { ProviderServices } from './services.js';
import { getAttachment, insertAttachment, replaceAttachment, type AttachmentSource, type ProviderAttachment, type ProviderDocument } from './store.js';

// The authority's PDF, filed once per invoice. The PAC's URL expires within
// minutes, so whoever sees it first (webhook or poller) downloads at once.
// The S3 key derives from the invoice, so two racing downloads write the same
// object; ux_provider_attachments_invoice_kind keeps one row, and the loser
// gets the winner's row back.

export function pdfKey(prefix: string, invoiceId: number): string {
  return `${prefix}${invoiceId}/invoice.pdf`;
}

/** Log fields for a PDF that was not filed: the refusal's reason when Herald refused it, and the URL without its query (signatures). */
export function pdfFailureFields(err: unknown, url: string): { err: string; url: string; refused?: string } {
  const fields: { err: string; url: string; refused?: string } = { err: (err as Error).message, url: redactUrl(url) };
  if (err instanceof PdfRefused) fields.refused = err.reason;
  return fields;
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
  const { config } = services;
  const bytes = await fetchPdf(
    url,
    { origins: allowedPdfOrigins(config.PROVIDER_PAC_BASE_URL, config.PROVIDER_PDF_ORIGINS ?? []), maxBytes: config.PROVIDER_PDF_MAX_BYTES, timeoutMs: config.PROVIDER_API_TIMEOUT_MS },
    opts.signal,
  );
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
