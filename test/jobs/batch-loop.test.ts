import { expect } from 'chai';
import type { Knex } from 'knex';
import { useTestDb } from '../helpers/db.js';
import { PermanentError, TransientError } from '../../src/jobs/contract/errors.js';
import { createJobRunner, openJobRunnerCount, type JobRunner, type JobRunnerOptions } from '../../src/jobs/runtime/runner.js';
import { getJob } from '../../src/jobs/store/runs.js';
import { listJobAttempts } from '../../src/jobs/store/admin.js';
import { defineJob, type BatchItemResult, type JobDefinition, type JobRow } from '../../src/jobs/contract/types.js';
import { createRunsTable, jobStatuses, quietLog, REDIS_URL, redisPrefix, runsOf, waitFor, wipeRedisPrefix } from './support.js';

// Batched kinds (JobDefinition.batch) against real Postgres and Redis: the
// runner claims their due rows many at a time by scanning, never through
// per-row bells, and ends each row by its own result.

interface BatchPayload {
  tag: string;
  /** What the item answers: done, a snooze (first `times` runs), a retryable failure, a permanent one, or a wait on the signal. */
  result?: 'ok' | 'snooze' | 'fail' | 'permanent' | 'hang';
  times?: number;
}

declare module '../../src/jobs/contract/types.js' {
  interface JobPayloads {
    'test-batch': BatchPayload;
  }
}

/** Sizes of the batches handed to batch.run, in call order. */
let batchSizes: number[] = [];

async function runItem(db: Knex, payload: BatchPayload, job: JobRow, mode: string, signal: AbortSignal): Promise<BatchItemResult> {
  const [row] = await db('test_job_runs').where({ job_id: job.id }).count<{ n: string }[]>({ n: '*' });
  const before = Number(row?.n ?? 0);
  await db('test_job_runs').insert({ job_id: job.id, tag: `${payload.tag}:${mode}`, attempt: job.attempts });
  const times = payload.times ?? 1;
  switch (payload.result) {
    case 'snooze':
      return before < times ? { snoozeMs: 30 } : undefined;
    case 'fail':
      return before < times ? { error: new TransientError('503 from the other side') } : undefined;
    case 'permanent':
      return { error: new PermanentError('400: refused') };
    case 'hang':
      return new Promise((_, reject) => signal.addEventListener('abort', () => reject(signal.reason), { once: true }));
    default:
      return undefined;
  }
}

function batchKind(size: number): JobDefinition<'test-batch'> {
  return defineJob('test-batch', {
    timeoutMs: 5000,
    maxAttempts: 3,
    backoff: { baseMs: 20, capMs: 50 },
    // Single runs are recorded apart: a batched kind must never be run through a bell here.
    async run(payload, { db, job, signal }) {
      const r = await runItem(db, payload, job, 'single', signal);
      if (r && 'error' in r) throw r.error;
      return r;
    },
    batch: {
      size,
      async run(items, { db, signal }) {
        batchSizes.push(items.length);
        return Promise.all(items.map((i) => runItem(db, i.payload, i.job, 'batch', signal)));
      },
    },
  });
}

describe('jobs batched kinds', () => {
  const t = useTestDb(import.meta.url);
  const prefix = redisPrefix(import.meta.url);
  let runners: JobRunner[] = [];
  let hookCalls: number[] = [];

  async function startRunner(size: number, extra: Partial<JobRunnerOptions> = {}): Promise<JobRunner> {
    const runner = createJobRunner({
      db: t.get().db, definitions: [batchKind(size)], redis: { url: REDIS_URL, prefix }, concurrency: 5, log: quietLog,
      sweepIntervalMs: 60_000, stallIntervalMs: 1000,
      onPermanentFailure: async (job) => void hookCalls.push(Number(job.id)),
      ...extra,
    });
    runners.push(runner);
    await runner.start();
    return runner;
  }

  /** Plain SQL, as a capability's trigger would write them: the rows' NOTIFY is the only announcement. */
  async function insertRows(n: number, payload: (i: number) => BatchPayload): Promise<number[]> {
    const rows = Array.from({ length: n }, (_, i) => ({ kind: 'test-batch', payload: JSON.stringify(payload(i)) }));
    const inserted = await t.get().db('jobs').insert(rows).returning('id');
    return inserted.map((r: { id: string | number }) => Number(r.id));
  }

  before(async () => createRunsTable(t.get().db));
  beforeEach(async () => {
    await t.get().db.raw('TRUNCATE jobs, test_job_runs CASCADE');
    await wipeRedisPrefix(prefix);
    batchSizes = [];
    hookCalls = [];
  });
  afterEach(async () => {
    await Promise.all(runners.map((r) => r.stop({ graceMs: 0 })));
    runners = [];
    expect(openJobRunnerCount(), 'a runner was left running').to.equal(0);
  });
  after(async () => wipeRedisPrefix(prefix));

  it('runs each of 500 rows exactly once with two runners, in batches no larger than batch.size, never through a bell', async () => {
    const { db } = t.get();
    const [a] = [await startRunner(40), await startRunner(40)];
    await insertRows(500, (i) => ({ tag: `row${i}` }));
    await waitFor('500 completed', async () => (await jobStatuses(db)).completed === 500);
    // A sweep re-rings every due row of the other kinds; batched ones must stay with their loops.
    await insertRows(1, () => ({ tag: 'late' }));
    await a.sweeper.runOnce();
    await waitFor('501 completed', async () => (await jobStatuses(db)).completed === 501);
    const runs = await runsOf(db);
    expect(runs).to.have.length(501);
    expect(new Set(runs.map((r) => r.job_id)).size).to.equal(501);
    expect(runs.filter((r) => !r.tag.endsWith(':batch'))).to.deep.equal([]);
    expect(Math.max(...batchSizes)).to.be.at.most(40);
    expect(batchSizes.reduce((s, n) => s + n, 0)).to.equal(501);
    // 500 rows committed in one statement come out in full batches, not one by one.
    expect(batchSizes.length).to.be.below(100);
    const attempts = await db('job_attempts').select('outcome').count<{ outcome: string; n: string }[]>({ n: '*' }).groupBy('outcome');
    expect(attempts.map((r) => [r.outcome, Number(r.n)])).to.deep.equal([['completed', 501]]);
  });

  it('ends each row by its own result: snoozed without using an attempt, retried with backoff, failed_permanent with the hook once', async () => {
    const { db } = t.get();
    await startRunner(10);
    const [ok, snoozed, retried, refused] = await insertRows(4, (i) => ({ tag: `r${i}`, result: (['ok', 'snooze', 'fail', 'permanent'] as const)[i], times: 2 }));
    await waitFor('all four finished', async () => {
      const s = await jobStatuses(db);
      return s.completed === 3 && s.failed_permanent === 1;
    });
    expect(await getJob(db, ok!)).to.include({ status: 'completed', attempts: 1 });
    // Two snoozes and the completing run: one attempt used.
    expect(await getJob(db, snoozed!)).to.include({ status: 'completed', attempts: 1 });
    expect((await listJobAttempts(db, snoozed!)).map((a) => a.outcome)).to.deep.equal(['snoozed', 'snoozed', 'completed']);
    // Failed twice (transient), then done on the third of its three attempts.
    const retriedRow = await getJob(db, retried!);
    expect(retriedRow).to.include({ status: 'completed', attempts: 3, error_class: 'transient' });
    expect(retriedRow!.last_error).to.contain('503 from the other side');
    expect((await listJobAttempts(db, retried!)).map((a) => a.outcome)).to.deep.equal(['failed', 'failed', 'completed']);
    const refusedRow = await getJob(db, refused!);
    expect(refusedRow).to.include({ status: 'failed_permanent', attempts: 1, error_class: 'permanent' });
    expect(refusedRow!.last_error).to.contain('400: refused');
    expect(hookCalls).to.deep.equal([refused]);
  });

  it('gives a running batch back on a forced stop: rows pending again, attempts given back, nothing recorded as run', async () => {
    const { db } = t.get();
    const runner = await startRunner(10);
    const ids = await insertRows(3, (i) => ({ tag: `h${i}`, result: 'hang' }));
    await waitFor('the batch running', async () => (await jobStatuses(db)).processing === 3);
    await runner.stop({ graceMs: 0 });
    for (const id of ids) {
      expect(await getJob(db, id)).to.include({ status: 'pending', attempts: 0, claim_token: null });
      expect((await listJobAttempts(db, id)).map((a) => a.outcome)).to.deep.equal(['interrupted']);
    }
    // A new worker takes them up again.
    await db('jobs').whereIn('id', ids).update({ payload: JSON.stringify({ tag: 'after' }) });
    await startRunner(10);
    await waitFor('three completed', async () => (await jobStatuses(db)).completed === 3);
  });
});
