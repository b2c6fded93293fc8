import type { Knex } from 'knex';
import { enqueueJob } from '../jobs/store/enqueue.js';
import { PermanentError } from '../jobs/contract/errors.js';
import type { JobSnooze } from '../jobs/contract/types.js';
import type { Logger } from '../log.js';
import { crashPoint } from '../lib/crash-point.js';
import { PhaseTimes } from '../lib/phase-times.js';
import type { ExporterServices } from './services.js';
import { getUpload, markUploadNotified } from './store.js';

// notify-hmrc: tell HMRC's SDES API that an envelope is in the bucket. Only
// this step repeats on failure: it never uploads again. The correlation id
// was stored with the upload row, so every attempt (and every manual resend)
// carries the same one. Crash point: exporter.before-notify-mark (HMRC has
// answered 2xx, notification_sent not yet set: the retry notifies again with
// the same correlation id, which is what "at least once" means here).

/** While the kill switch is off, notification jobs wait this long between looks. */
export const NOTIFICATIONS_DISABLED_SNOOZE_MS = 60_000;

export async function runNotifyHmrc(
  db: Knex,
  services: ExporterServices,
  payload: { uploadId: number; resend?: boolean },
  opts: { signal: AbortSignal; log: Logger },
): Promise<void | JobSnooze> {
  const times = new PhaseTimes();
  const upload = await times.time('read', () => getUpload(db, payload.uploadId));
  if (!upload) throw new PermanentError(`upload ${payload.uploadId} does not exist`);
  if (upload.notification_sent && !payload.resend) return;
  if (!upload.uploaded_at) throw new PermanentError(`upload ${upload.id} (envelope ${upload.envelope_id}) is not in S3 yet; nothing to notify`);
  if (!services.config.HMRC_NOTIFICATIONS_ENABLED) {
    opts.log.info({ uploadId: upload.id }, 'HMRC notifications are disabled (HMRC_NOTIFICATIONS_ENABLED=false); waiting');
    return { snoozeMs: NOTIFICATIONS_DISABLED_SNOOZE_MS };
  }
  await times.time('notify', () =>
    services.hmrc().notifyTransferReady(
      { correlationId: upload.correlation_id, fileName: upload.file_name, fileSize: Number(upload.file_size), checksum: upload.checksum },
      { signal: opts.signal },
    ),
  );
  crashPoint('exporter.before-notify-mark');
  await times.time('mark', () => markUploadNotified(db, upload.id));
  opts.log.info({ uploadId: upload.id, envelopeId: upload.envelope_id, correlationId: upload.correlation_id }, `HMRC notified of ${upload.file_name}`);
  opts.log.info({ timing: 'notify-hmrc', ms: times.toJSON(), envelopeId: upload.envelope_id }, 'notify-hmrc timing');
}

/** Why a resend was refused, in words for an operator (CLI line, admin flash). */
export class ResendRefused extends Error {}

/**
 * Queues a notification of an upload again (`herald notify retry --upload`,
 * the admin page's "Retry notification"): a job of its own, so a completed
 * first one does not stop it; same correlation id; never a re-upload.
 */
export async function queueNotificationResend(db: Knex, uploadId: number): Promise<{ jobId: number; uploadId: number }> {
  const upload = await getUpload(db, uploadId);
  if (!upload) throw new ResendRefused(`upload ${uploadId} does not exist`);
  if (!upload.uploaded_at) throw new ResendRefused(`upload ${upload.id} (envelope ${upload.envelope_id}) is not in S3 yet; run \`herald upload\` first`);
  const job = await enqueueJob(db, 'notify-hmrc', { uploadId: upload.id, resend: true }, { subjectType: 'upload', subjectId: upload.id });
  return { jobId: job.id, uploadId: upload.id };
}
