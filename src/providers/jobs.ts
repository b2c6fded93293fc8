import { loadConfig } from '../config.js';
import { processServices } from '../lib/process-services.js';
import type { JobDefinition, PermanentFailureHook } from '../jobs/contract/types.js';
import { pollMany, pollResult } from './poll.js';
import { createProviderServices, type ProviderServices } from './services.js';
import { deleteFinishedProviderJobs, markDocumentFailed } from './store.js';
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

// Handlers share one set of services made from the process's config on
// first use; tests, the demo and `herald serve` hand in their own.
const shared = processServices<ProviderServices>(() => createProviderServices(loadConfig()));
export const useProviderServices = shared.use;
export const providerServices = shared.get;
export const currentProviderServices = shared.current;

const DAY_MS = 24 * 3600_000;
export const PROVIDER_JOB_KINDS = ['provider-submit', 'provider-poll'] as const;

// Timeouts, attempts and backoff follow the settings of the process running
// the job (getters read at run and sweep time): 3x the timeout without a
// heartbeat is what the sweeper calls stuck (issue: "stuck processing > 3x
// API timeout -> pending").
export const providerSubmit: JobDefinition<'provider-submit'> = {
  kind: 'provider-submit',
  // A look-up and a POST, each bounded by PROVIDER_API_TIMEOUT_MS.
  get timeoutMs() {
    return providerServices().config.PROVIDER_API_TIMEOUT_MS * 2;
  },
  get maxAttempts() {
    return providerServices().config.PROVIDER_MAX_RETRIES;
  },
  get backoff() {
    const c = providerServices().config;
    return { baseMs: c.PROVIDER_BACKOFF_BASE_MS, capMs: c.PROVIDER_BACKOFF_CAP_MS };
  },
  async run({ documentId }, { db, signal, log, job, now }) {
    const services = providerServices();
    const maxAttempts = job.max_attempts ?? services.config.PROVIDER_MAX_RETRIES;
    await runSubmit(db, services, documentId, { signal, log, now, attempt: job.attempts, maxAttempts });
  },
};

export const providerPoll: JobDefinition<'provider-poll'> = {
  kind: 'provider-poll',
  // A status GET, a PDF download and its S3 put.
  get timeoutMs() {
    const c = providerServices().config;
    return c.PROVIDER_API_TIMEOUT_MS * 2 + c.S3_TIMEOUT_MS;
  },
  // Failed polls are counted by the poller itself (poll_attempts) and snoozed;
  // only an auth failure ends the job, and it is final.
  maxAttempts: 3,
  backoff: { baseMs: 5_000, capMs: 60_000 },
  async run(payload, { db, signal, log, now }) {
    const services = providerServices();
    const [outcome] = await pollMany(db, services, [payload], { signal, log, now });
    const result = pollResult(outcome!, services);
    if (result && 'error' in result) throw result.error;
    return result;
  },
  // Thousands of documents followed at once: polls due together go as one batch.
  batch: {
    get size() {
      return providerServices().config.PROVIDER_POLL_BATCH_SIZE;
    },
    async run(items, { db, signal, log, now }) {
      const services = providerServices();
      const outcomes = await pollMany(db, services, items.map((i) => i.payload), { signal, log, now });
      return outcomes.map((o) => pollResult(o, services));
    },
  },
};

export const providersCleanup: JobDefinition<'providers-cleanup'> = {
  kind: 'providers-cleanup',
  timeoutMs: 10 * 60_000,
  maxAttempts: 5,
  backoff: { baseMs: 60_000, capMs: 3600_000 },
  async run(_payload, { db, log, now }) {
    const c = providerServices().config;
    const before = new Date(now().getTime() - c.PROVIDER_JOB_RETENTION_DAYS * DAY_MS);
    let deleted = 0;
    for (;;) {
      const n = await deleteFinishedProviderJobs(db, PROVIDER_JOB_KINDS, before, c.PROVIDER_BATCH_SIZE);
      deleted += n;
      if (n < c.PROVIDER_BATCH_SIZE) break;
    }
    if (deleted) log.info({ deleted, before }, `deleted ${deleted} completed provider jobs`);
    return { snoozeMs: DAY_MS };
  },
};

export const providerJobs = [providerSubmit, providerPoll, providersCleanup] as JobDefinition[];

/**
 * For src/jobs' onPermanentFailure (runner, sweeper): a provider-submit job
 * that ends failed_permanent without its handler deciding (its runs kept
 * dying, so the sweeper gave up) fails its document in the same
 * transaction, so `herald pac resubmit` can put it back. A document the
 * handler already moved (failed, rejected, submitted) is left alone.
 */
export const failDocumentOfDeadSubmission: PermanentFailureHook = async (job, { db }) => {
  if (job.kind !== providerSubmit.kind) return;
  const { documentId } = job.payload as { documentId: number };
  await markDocumentFailed(db, documentId, {
    errorKind: 'stalled',
    message: `submission gave up: ${job.last_error ?? 'job failed permanently'}`,
    nextStep: 'find out why the worker kept dying on it (logs), then run herald pac resubmit INVOICE',
  });
};
