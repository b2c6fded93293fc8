import type { Config } from '../config.js';
import type { JobDefinition, PermanentFailureHook } from '../jobs/contract/types.js';
import { pollMany, pollResult } from './poll.js';
import type { ProviderServices } from './services.js';
import { deleteCompletedJobs } from '../jobs/store/views.js';
import { markDocumentFailed } from './store.js';
import { runSubmit } from './submit.js';

declare module '../jobs/contract/types.js' {
  interface JobPayloads {
    /** Enqueued by tr_invoices_schedule_submission with the invoice (outbox). */
    'provider-submit': { documentId: number };
    /** One row per document and polling round, snoozed between polls. */
    'provider-poll': { documentId: number; generation: number };
    /** One row for ever (dedupe key providers-cleanup), snoozed a day between runs. */
    'providers-cleanup': Record<string, never>;
  }
}

const DAY_MS = 24 * 3600_000;
export const PROVIDER_JOB_KINDS = ['provider-submit', 'provider-poll'] as const;

// Built by the composition root from the process's settings: 3x the timeout
// without a heartbeat is what the sweeper calls stuck. Services (S3, provider
// clients) are made on first use.
export function providerJobs(config: Config, services: () => ProviderServices): JobDefinition[] {
  const providerSubmit: JobDefinition<'provider-submit'> = {
    kind: 'provider-submit',
    // A look-up and a POST, each bounded by PROVIDER_API_TIMEOUT_MS.
    timeoutMs: config.PROVIDER_API_TIMEOUT_MS * 2,
    maxAttempts: config.PROVIDER_MAX_RETRIES,
    backoff: { baseMs: config.PROVIDER_BACKOFF_BASE_MS, capMs: config.PROVIDER_BACKOFF_CAP_MS },
    async run({ documentId }, { db, signal, log, job, now }) {
      const maxAttempts = job.max_attempts ?? config.PROVIDER_MAX_RETRIES;
      await runSubmit(db, services(), documentId, { signal, log, now, attempt: job.attempts, maxAttempts });
    },
  };

  const providerPoll: JobDefinition<'provider-poll'> = {
    kind: 'provider-poll',
    // A status GET, a PDF download and its S3 put.
    timeoutMs: config.PROVIDER_API_TIMEOUT_MS * 2 + config.S3_TIMEOUT_MS,
    // Failed polls are counted by the poller itself (poll_attempts) and snoozed;
    // only an auth failure ends the job, and it is final.
    maxAttempts: 3,
    backoff: { baseMs: 5_000, capMs: 60_000 },
    async run(payload, { db, signal, log, now }) {
      const shared = services();
      const [outcome] = await pollMany(db, shared, [payload], { signal, log, now });
      const result = pollResult(outcome!, shared);
      if (result && 'error' in result) throw result.error;
      return result;
    },
    // Thousands of documents followed at once: polls due together go as one batch.
    batch: {
      size: config.PROVIDER_POLL_BATCH_SIZE,
      async run(items, { db, signal, log, now }) {
        const shared = services();
        const outcomes = await pollMany(db, shared, items.map((i) => i.payload), { signal, log, now });
        return outcomes.map((o) => pollResult(o, shared));
      },
    },
  };

  const providersCleanup: JobDefinition<'providers-cleanup'> = {
    kind: 'providers-cleanup',
    timeoutMs: 10 * 60_000,
    maxAttempts: 5,
    backoff: { baseMs: 60_000, capMs: 3600_000 },
    async run(_payload, { db, log, now }) {
      const c = config;
      const before = new Date(now().getTime() - c.PROVIDER_JOB_RETENTION_DAYS * DAY_MS);
      let deleted = 0;
      for (;;) {
        const n = await deleteCompletedJobs(db, { kinds: PROVIDER_JOB_KINDS, before, limit: c.PROVIDER_BATCH_SIZE });
        deleted += n;
        if (n < c.PROVIDER_BATCH_SIZE) break;
      }
      if (deleted) log.info({ deleted, before }, `deleted ${deleted} completed provider jobs`);
      return { snoozeMs: DAY_MS };
    },
  };

  return [providerSubmit, providerPoll, providersCleanup] as JobDefinition[];
}

/**
 * For src/jobs' onPermanentFailure (runner, sweeper): a provider-submit job
 * that ends failed_permanent without its handler deciding (its runs kept
 * dying, so the sweeper gave up) fails its document in the same
 * transaction, so `herald pac resubmit` can put it back. A document the
 * handler already moved (failed, rejected, submitted) is left alone.
 */
export const failDocumentOfDeadSubmission: PermanentFailureHook = async (job, { db }) => {
  if (job.kind !== 'provider-submit') return;
  const { documentId } = job.payload as { documentId: number };
  await markDocumentFailed(db, documentId, {
    errorKind: 'stalled',
    message: `submission gave up: ${job.last_error ?? 'job failed permanently'}`,
    nextStep: 'find out why the worker kept dying on it (logs), then run herald pac resubmit INVOICE',
  });
};
