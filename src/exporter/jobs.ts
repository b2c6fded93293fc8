import { loadConfig } from '../config.js';
import { processServices } from '../lib/process-services.js';
import type { JobDefinition } from '../jobs/contract/types.js';
import { runNotifyHmrc } from './notify.js';
import { createExporterServices, type ExporterServices } from './services.js';
import { runUploadEnvelope, runUploadWorkbaskets } from './upload.js';

declare module '../jobs/contract/types.js' {
  interface JobPayloads {
    /** Scheduled by the READY_FOR_EXPORT trigger and `herald upload`; exports whatever is ready. */
    'upload-workbaskets': Record<string, never>;
    'upload-envelope': { uploadId: number };
    'notify-hmrc': { uploadId: number; resend?: boolean };
  }
}

// The handlers share one set of services (S3, HMRC client, work dir), made
// from the process's config on first use; the demo, the CLI and tests hand in
// their own with useExporterServices().
const shared = processServices<ExporterServices>(() => createExporterServices(loadConfig()));
export const useExporterServices = shared.use;
export const exporterServices = shared.get;

// Retry schedules (docs/retry-schedules.md). An export renders and validates
// up to 40 MB per envelope; minutes between tries leave room for an operator.
// S3 puts retry on a minute scale; HMRC notifications on seconds, as HMRC's
// transient errors are usually brief. Timeouts follow the settings of the
// process running the job (getters, read at run and sweep time, not at
// import): 3x a timeout without a heartbeat is what the sweeper calls stuck.
export const uploadWorkbaskets: JobDefinition<'upload-workbaskets'> = {
  kind: 'upload-workbaskets',
  get timeoutMs() {
    return exporterServices().config.EXPORTER_EXPORT_TIMEOUT_MS;
  },
  maxAttempts: 5,
  backoff: { baseMs: 30_000, capMs: 15 * 60_000 },
  async run(_payload, { db, log, now }) {
    await runUploadWorkbaskets(db, exporterServices(), now(), log);
  },
};

export const uploadEnvelope: JobDefinition<'upload-envelope'> = {
  kind: 'upload-envelope',
  get timeoutMs() {
    return exporterServices().config.S3_TIMEOUT_MS * 2;
  },
  maxAttempts: 12,
  backoff: { baseMs: 10_000, capMs: 30 * 60_000 },
  async run({ uploadId }, { db, signal, log }) {
    await runUploadEnvelope(db, exporterServices(), uploadId, { signal, log });
  },
};

export const notifyHmrc: JobDefinition<'notify-hmrc'> = {
  kind: 'notify-hmrc',
  // A token call and the notification, each bounded by HMRC_TIMEOUT_MS.
  get timeoutMs() {
    return exporterServices().config.HMRC_TIMEOUT_MS * 2;
  },
  maxAttempts: 10,
  backoff: { baseMs: 2_000, capMs: 10 * 60_000 },
  async run(payload, { db, signal, log }) {
    return runNotifyHmrc(db, exporterServices(), payload, { signal, log });
  },
};

export const exporterJobs = [uploadWorkbaskets, uploadEnvelope, notifyHmrc] as JobDefinition[];
