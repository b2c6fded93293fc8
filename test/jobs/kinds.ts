import { crashPoint } from '../../src/lib/crash-point.js';
import { enqueueJob } from '../../src/jobs/store/enqueue.js';
import { AuthError, PermanentError, RateLimitedError, TransientError } from '../../src/jobs/contract/errors.js';
import { defineJob, type JobDefinition } from '../../src/jobs/contract/types.js';
import './support.js';

// Test job kinds. Each run writes a row to test_job_runs (see support.ts), so
// a test counts real executions rather than trusting the ledger alone.

export interface RecordPayload {
  tag: string;
  /** Fail the first n attempts with errorClass. */
  failTimes?: number;
  errorClass?: 'transient' | 'rate_limited' | 'auth' | 'permanent' | 'plain';
  retryAfterMs?: number;
  /** Snooze this many runs before completing. */
  snoozeTimes?: number;
  snoozeMs?: number;
  /** Enqueue a follow-up job with n - 1, in the run (a chain). */
  enqueueNext?: number;
}

declare module '../../src/jobs/contract/types.js' {
  interface JobPayloads {
    'test-record': RecordPayload;
  }
}

function errorFor(cls: RecordPayload['errorClass'], retryAfterMs?: number): Error {
  switch (cls) {
    case 'rate_limited':
      return new RateLimitedError('429 from the other side', retryAfterMs);
    case 'auth':
      return new AuthError('401: credentials rejected', { nextStep: 'rotate HMRC_CLIENT_SECRET' });
    case 'permanent':
      return new PermanentError('400: bad request');
    case 'plain':
      return new Error('something unclassified broke');
    default:
      return new TransientError('503 from the other side', { cause: new Error('ECONNRESET') });
  }
}

export function recordKind(overrides: Partial<Omit<JobDefinition<'test-record'>, 'kind' | 'run'>> = {}): JobDefinition<'test-record'> {
  return defineJob('test-record', {
    timeoutMs: 2000,
    maxAttempts: 3,
    backoff: { baseMs: 20, capMs: 200 },
    ...overrides,
    async run(payload, { db, job }) {
      const [row] = await db('test_job_runs').where({ job_id: job.id }).count<{ n: string }[]>({ n: '*' });
      const n = Number(row?.n ?? 0);
      await db('test_job_runs').insert({ job_id: job.id, tag: payload.tag, attempt: job.attempts });
      if (payload.snoozeTimes !== undefined && n < payload.snoozeTimes) return { snoozeMs: payload.snoozeMs ?? 0 };
      if (payload.failTimes !== undefined && job.attempts <= payload.failTimes) throw errorFor(payload.errorClass, payload.retryAfterMs);
      if (payload.enqueueNext) await enqueueJob(db, 'test-record', { tag: payload.tag, enqueueNext: payload.enqueueNext - 1 });
    },
  });
}

/** Runs, then dies at crash point 'test.mid-job' when HERALD_CRASH_AT names it; writes its effect idempotently. */
export function crashKind(overrides: Partial<Omit<JobDefinition<'test-crash'>, 'kind' | 'run'>> = {}): JobDefinition<'test-crash'> {
  return defineJob('test-crash', {
    timeoutMs: 300,
    maxAttempts: 3,
    backoff: { baseMs: 10, capMs: 100 },
    ...overrides,
    async run(payload, { db, job }) {
      await db('test_job_runs').insert({ job_id: job.id, tag: payload.tag, attempt: job.attempts });
      crashPoint('test.mid-job');
      // The effect a real handler protects with a key derived from the row.
      await db.raw(`INSERT INTO test_job_effects (job_id) VALUES (?) ON CONFLICT DO NOTHING`, [job.id]);
    },
  });
}

/**
 * Sleeps ms (honouring its signal unless told not to); with alignEnd, until
 * the next multiple of ms on the clock, so runs that overlap end in the same
 * timer tick (their completions can then share a statement whatever the
 * machine's speed).
 */
export function slowKind(overrides: Partial<Omit<JobDefinition<'test-slow'>, 'kind' | 'run'>> = {}): JobDefinition<'test-slow'> {
  return defineJob('test-slow', {
    timeoutMs: 5000,
    maxAttempts: 3,
    backoff: { baseMs: 10, capMs: 100 },
    ...overrides,
    async run(payload, { db, job, signal }) {
      await db('test_job_runs').insert({ job_id: job.id, tag: payload.tag, attempt: job.attempts });
      await new Promise<void>((resolve, reject) => {
        const t = setTimeout(resolve, payload.alignEnd ? payload.ms - (Date.now() % payload.ms) : payload.ms);
        if (!payload.ignoreAbort) signal.addEventListener('abort', () => (clearTimeout(t), reject(signal.reason)), { once: true });
      });
    },
  });
}
