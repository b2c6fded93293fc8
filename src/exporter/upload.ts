import fs from 'node:fs';
import path from 'node:path';
import type { Knex } from 'knex';
import { enqueueJob } from '../jobs/store/enqueue.js';
import { PermanentError, TransientError } from '../jobs/contract/errors.js';
import type { Logger } from '../log.js';
import { crashPoint } from '../lib/crash-point.js';
import { PhaseTimes } from '../lib/phase-times.js';
import type { FileDigest } from '../storage/digest.js';
import { BodyMismatchError } from '../storage/s3.js';
import { exportReadyWorkbaskets, fileSink, renderStoredEnvelope } from '../taric/envelope/export.js';
import { OversizeTransactionError } from '../taric/envelope/envelope-writer.js';
import { TaricError } from '../taric/errors.js';
import type { ExporterServices } from './services.js';
import { getUpload, insertMissingUploads, listUploadsNotUploaded, markUploadUploaded, markWorkbasketsSent, type Upload } from './store.js';

// upload-workbaskets: number and store the envelopes of every READY_FOR_EXPORT
// workbasket (one transaction, under the envelope lock), then create one
// upload row + upload-envelope job per new envelope. upload-envelope: put the
// file in S3 under a key derived from the envelope id, check it, and in one
// transaction mark it uploaded, move finished workbaskets to SENT and queue
// its notify-hmrc job. Every step can be killed and repeated: the retry
// renders the same bytes (md5 checked), puts the same key, and finds rows it
// already wrote. Crash points (HERALD_CRASH_AT):
//   exporter.after-export         envelopes committed, no upload row yet
//   exporter.after-uploads        upload rows + jobs committed, nothing in S3
//   exporter.after-s3-put         object in S3, upload not marked, no notify job
// Each job logs where its time went as one line { timing: KIND, ms: {...} }
// (src/lib/phase-times.ts), which scripts/bench/export.ts reads.

export const CONTENT_TYPE = 'application/xml';

export interface UploadWorkbasketsResult {
  envelopes: Array<{ envelopeId: string; bytes: number; md5: string; workbasketIds: number[]; transactions: number }>;
  uploads: Upload[];
}

export async function runUploadWorkbaskets(db: Knex, services: ExporterServices, now: Date, log: Logger): Promise<UploadWorkbasketsResult> {
  const { config } = services;
  const times = new PhaseTimes();
  await fs.promises.mkdir(services.workDir, { recursive: true });
  let exported;
  try {
    exported = await exportReadyWorkbaskets(db, {
      now,
      maxEnvelopeBytes: config.EXPORTER_MAX_ENVELOPE_SIZE,
      xsdValidator: config.EXPORTER_XSD_VALIDATOR,
      firstTransactionId: config.EXPORTER_FIRST_TRANSACTION_ID,
      workDir: services.workDir,
      onProgress: services.onExportProgress,
      times,
    });
  } catch (err) {
    // Invalid or oversize content will not fix itself by waiting: an operator
    // must correct the workbasket, then retry the job.
    if (err instanceof OversizeTransactionError || err instanceof TaricError) {
      throw new PermanentError(err.message, { cause: err, nextStep: 'correct the workbasket named in the error, then retry this job' });
    }
    throw err;
  }
  for (const e of exported.envelopes) {
    log.info({ envelopeId: e.envelopeId, bytes: e.bytes, md5: e.md5, workbaskets: e.workbasketIds, transactions: e.transactionCount }, `envelope ${e.envelopeId} stored`);
  }
  crashPoint('exporter.after-export');

  const storage = services.storage();
  const t0 = performance.now();
  const uploads = await db.transaction(async (trx) => {
    const created = await insertMissingUploads(trx, { bucket: storage.bucket, prefix: config.EXPORTER_S3_PREFIX });
    // Uploads a crashed run created but never finished get their job again
    // (dedupe key: a live job is left alone).
    const pending = await listUploadsNotUploaded(trx);
    for (const u of pending) {
      await enqueueJob(trx, 'upload-envelope', { uploadId: u.id }, { subjectType: 'upload', subjectId: u.id, dedupeKey: `upload-envelope:${u.id}` });
    }
    return created;
  });
  times.add('queue-uploads', performance.now() - t0);
  const bytes = exported.envelopes.reduce((n, e) => n + e.bytes, 0);
  log.info({ timing: 'upload-workbaskets', ms: times.toJSON(), envelopes: exported.envelopes.length, bytes }, 'upload-workbaskets timing');
  crashPoint('exporter.after-uploads');
  return {
    envelopes: exported.envelopes.map((e) => ({ envelopeId: e.envelopeId, bytes: e.bytes, md5: e.md5, workbasketIds: e.workbasketIds, transactions: e.transactionCount })),
    uploads,
  };
}

export async function runUploadEnvelope(
  db: Knex,
  services: ExporterServices,
  uploadId: number,
  opts: { signal: AbortSignal; log: Logger },
): Promise<'uploaded' | 'already-uploaded'> {
  const times = new PhaseTimes();
  const upload = await times.time('read', () => getUpload(db, uploadId));
  if (!upload) throw new PermanentError(`upload ${uploadId} does not exist`);
  if (upload.uploaded_at) {
    await finishUpload(db, upload);
    return 'already-uploaded';
  }
  const storage = services.storage();
  const { file, digest } = await times.time('file', () => envelopeFile(db, services, upload));
  try {
    await times.time('put', () =>
      storage.putObjectFromFile(upload.key, file, {
        contentType: CONTENT_TYPE,
        contentDisposition: `attachment; filename=${upload.file_name}`,
        digest,
        signal: opts.signal,
      }),
    );
  } catch (err) {
    // Not the stored envelope (a leftover of a run that did not commit, a
    // damaged disk): the retry renders it again from the database.
    if (err instanceof BodyMismatchError) await fs.promises.rm(file, { force: true });
    throw err;
  }
  await times.time('head', () => verifyObject(services, upload, digest, opts.signal));
  crashPoint('exporter.after-s3-put');
  await times.time('finish', () => finishUpload(db, upload));
  opts.log.info({ envelopeId: upload.envelope_id, key: upload.key, md5: upload.checksum }, `envelope ${upload.envelope_id} uploaded to ${upload.key}`);
  opts.log.info({ timing: 'upload-envelope', ms: times.toJSON(), envelopeId: upload.envelope_id, bytes: digest.size }, 'upload-envelope timing');
  // Kept until now so a failed put is retried without rendering again.
  await fs.promises.rm(file, { force: true });
  return 'uploaded';
}

/**
 * The rendered file from the export when it has the stored size (its bytes
 * are checked against the stored MD5 as the put streams them: a file that
 * differs fails the put with BodyMismatchError and is deleted), else a fresh
 * rendering of the stored envelope (which checks size and md5 itself).
 * Reading the file only once, during the put, saved about a quarter of the
 * upload's time (scripts/bench/export.ts).
 */
async function envelopeFile(db: Knex, services: ExporterServices, upload: Upload): Promise<{ file: string; digest: FileDigest }> {
  const file = path.join(services.workDir, upload.file_name);
  const size = Number(upload.file_size);
  const found = await fs.promises.stat(file).catch(() => null);
  if (found?.size === size) return { file, digest: { size, md5Hex: upload.checksum, md5Base64: Buffer.from(upload.checksum, 'hex').toString('base64') } };
  await fs.promises.mkdir(services.workDir, { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  const rendered = await renderStoredEnvelope(db, upload.envelope_row_id, fileSink(tmp));
  await fs.promises.rename(tmp, file);
  return { file, digest: { size: rendered.bytes, md5Hex: rendered.md5, md5Base64: Buffer.from(rendered.md5, 'hex').toString('base64') } };
}

/** S3 keeps a single-part object's MD5 as its ETag: compare it and the size. */
async function verifyObject(services: ExporterServices, upload: Upload, digest: FileDigest, signal: AbortSignal): Promise<void> {
  const head = await services.storage().headObject(upload.key, { signal });
  if (!head) throw new TransientError(`envelope ${upload.envelope_id}: ${upload.key} not found right after the put`);
  const etag = head.etag?.replace(/"/g, '');
  if (head.size !== digest.size || (etag && etag !== digest.md5Hex)) {
    throw new TransientError(`envelope ${upload.envelope_id}: stored object differs (size ${head.size}, etag ${etag}); will put again`);
  }
}

async function finishUpload(db: Knex, upload: Upload): Promise<void> {
  await db.transaction(async (trx) => {
    await markUploadUploaded(trx, upload.id);
    await markWorkbasketsSent(trx, upload.envelope_row_id);
    await enqueueJob(trx, 'notify-hmrc', { uploadId: upload.id }, { subjectType: 'upload', subjectId: upload.id, dedupeKey: `notify-hmrc:${upload.id}` });
  });
}
