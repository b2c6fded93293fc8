import { defineJob } from '../jobs/types.js';
import type { JobDefinition } from '../jobs/types.js';
import { runNotifyHmrc } from './notify.js';
import type { ExporterServices } from './services.js';
import { runUploadEnvelope, runUploadWorkbaskets } from './upload.js';

declare module '../jobs/types.js' {
  interface JobPayloads {
    /** Scheduled by the READY_FOR_EXPORT trigger and `herald upload`; exports whatever is ready. */
    'upload-workbaskets': Record<string, never>;
    'upload-envelope': { uploadId: number };
    'notify-hmrc': { uploadId: number; resend?: boolean };
  }
}

// Retry schedules (docs/retry-schedules.md). An export renders and validates
// up to 40 MB per envelope; minutes between tries leave room for an operator.
// S3 puts retry on a minute scale; HMRC notifications on seconds, as HMRC's
// transient errors are usually brief.
export function exporterJobs(services: ExporterServices): JobDefinition[] {
  const uploadWorkbaskets = defineJob('upload-workbaskets', {
    timeoutMs: 10 * 60_000,
    maxAttempts: 5,
    backoff: { baseMs: 30_000, capMs: 15 * 60_000 },
    async run(_payload, { db, log, now }) {
      await runUploadWorkbaskets(db, services, now(), log);
    },
  });
  const uploadEnvelope = defineJob('upload-envelope', {
    timeoutMs: Math.max(services.config.S3_TIMEOUT_MS * 2, 60_000),
    maxAttempts: 12,
    backoff: { baseMs: 10_000, capMs: 30 * 60_000 },
    async run({ uploadId }, { db, signal, log }) {
      await runUploadEnvelope(db, services, uploadId, { signal, log });
    },
  });
  const notifyHmrc = defineJob('notify-hmrc', {
    timeoutMs: services.config.HMRC_TIMEOUT_MS * 2,
    maxAttempts: 10,
    backoff: { baseMs: 2_000, capMs: 10 * 60_000 },
    async run(payload, { db, signal, log }) {
      return runNotifyHmrc(db, services, payload, { signal, log });
    },
  });
  return [uploadWorkbaskets, uploadEnvelope, notifyHmrc] as JobDefinition[];
}
