import type { Config } from '../config.js';
import type { JobDefinition } from '../jobs/contract/types.js';
import { runNotifyHmrc } from './notify.js';
import type { ExporterServices } from './services.js';
import { runUploadEnvelope, runUploadWorkbaskets } from './upload.js';

declare module '../jobs/contract/types.js' {
  interface JobPayloads {
    /** Scheduled by the READY_FOR_EXPORT trigger and `herald upload`; exports whatever is ready. */
    'upload-workbaskets': Record<string, never>;
    'upload-envelope': { uploadId: number };
    'notify-hmrc': { uploadId: number; resend?: boolean };
  }
}

// The composition root (src/cli) builds these from the process's settings and
// its services, made on first use so that commands which run no job never
// open an S3 client. Retry schedules (docs/retry-schedules.md): an export
// renders and validates up to 40 MB per envelope; minutes between tries leave
// room for an operator. S3 puts retry on a minute scale; HMRC notifications on
// seconds, as HMRC's transient errors are usually brief. 3x a timeout without
// a heartbeat is what the sweeper calls stuck.
export function exporterJobs(config: Pick<Config, 'EXPORTER_EXPORT_TIMEOUT_MS' | 'S3_TIMEOUT_MS' | 'HMRC_TIMEOUT_MS'>, services: () => ExporterServices): JobDefinition[] {
  const uploadWorkbaskets: JobDefinition<'upload-workbaskets'> = {
    kind: 'upload-workbaskets',
    timeoutMs: config.EXPORTER_EXPORT_TIMEOUT_MS,
    maxAttempts: 5,
    backoff: { baseMs: 30_000, capMs: 15 * 60_000 },
    async run(_payload, { db, log, now }) {
      await runUploadWorkbaskets(db, services(), now(), log);
    },
  };

  const uploadEnvelope: JobDefinition<'upload-envelope'> = {
    kind: 'upload-envelope',
    timeoutMs: config.S3_TIMEOUT_MS * 2,
    maxAttempts: 12,
    backoff: { baseMs: 10_000, capMs: 30 * 60_000 },
    async run({ uploadId }, { db, signal, log }) {
      await runUploadEnvelope(db, services(), uploadId, { signal, log });
    },
  };

  const notifyHmrc: JobDefinition<'notify-hmrc'> = {
    kind: 'notify-hmrc',
    // A token call and the notification, each bounded by HMRC_TIMEOUT_MS.
    timeoutMs: config.HMRC_TIMEOUT_MS * 2,
    maxAttempts: 10,
    backoff: { baseMs: 2_000, capMs: 10 * 60_000 },
    async run(payload, { db, signal, log }) {
      return runNotifyHmrc(db, services(), payload, { signal, log });
    },
  };

  return [uploadWorkbaskets, uploadEnvelope, notifyHmrc] as JobDefinition[];
}
