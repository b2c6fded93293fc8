import { expect } from 'chai';
import knexFactory, { type Knex } from 'knex';
import ClientPgLite from 'knex-pglite';
import { migrateLatest } from '../../src/db/migrate.js';
import { enqueueJob } from '../../src/jobs/store/enqueue.js';
import { runJobsInline } from '../../src/jobs/runtime/inline.js';
import { createJobRunner } from '../../src/jobs/runtime/runner.js';
import { getJob } from '../../src/jobs/store/runs.js';
import { listJobAttempts } from '../../src/jobs/store/admin.js';
import type { JobRow } from '../../src/jobs/contract/types.js';
import { recordKind } from './kinds.js';
import { createRunsTable, jobStatuses, quietLog, runsOf, waitFor } from './support.js';

// The inline runner on the embedded database (PGlite, in memory): one
// connection, no LISTEN, no Redis, exactly as the demo runs.

describe('jobs.runJobsInline (PGlite)', function () {
  this.timeout(120_000);
  let db: Knex;

  before(async () => {
    db = knexFactory({ client: ClientPgLite, dialect: 'postgres', connection: {} } as Knex.Config);
    await migrateLatest(db);
    await createRunsTable(db);
  });
  after(async () => db?.destroy());
  beforeEach(async () => db.raw('TRUNCATE jobs, test_job_runs CASCADE'));

  it('runs a chain of jobs, each enqueued by the one before, to completion', async () => {
    await enqueueJob(db, 'test-record', { tag: 'chain', enqueueNext: 5 });
    const summary = await runJobsInline(db, [recordKind()], { until: 'idle' });
    expect(summary).to.deep.include({ ran: 6, waiting: 0, nextDueAt: null });
    expect(summary.outcomes.completed).to.equal(6);
    expect(await jobStatuses(db)).to.deep.equal({ completed: 6 });
    expect(await runsOf(db, 'chain')).to.have.length(6);
  });

  it('waits for a short-backoff retry when allowed to, and completes it', async () => {
    const { id } = await enqueueJob(db, 'test-record', { tag: 'retry', failTimes: 2 });
    const summary = await runJobsInline(db, [recordKind({ backoff: { baseMs: 30, capMs: 100 } })], { waitForRetriesMs: 5000 });
    expect(summary.outcomes).to.include({ failed: 2, completed: 1 });
    expect(await getJob(db, id)).to.include({ status: 'completed', attempts: 3 });
  });

  it('honours scheduled_at on a fake clock: sleeps through due retries, stops before ones beyond the limit', async () => {
    let clock = new Date('2032-01-01T00:00:00.000Z');
    const slept: number[] = [];
    const opts = {
      now: () => clock,
      sleep: async (ms: number) => {
        slept.push(ms);
        clock = new Date(clock.getTime() + ms);
      },
      random: () => 1,
    };
    const kind = recordKind({ backoff: { baseMs: 60_000, capMs: 600_000 }, maxAttempts: 5 });
    const { id } = await enqueueJob(db, 'test-record', { tag: 'clock', failTimes: 3 }, { runAt: clock });
    // Retries are due after 60 s, 120 s, 240 s: allow waits up to 150 s.
    const first = await runJobsInline(db, [kind], { ...opts, waitForRetriesMs: 150_000 });
    expect(first.outcomes.failed).to.equal(3);
    expect(slept).to.deep.equal([60_001, 120_001]);
    expect(first.waiting).to.equal(1);
    const row = (await getJob(db, id)) as JobRow;
    expect(row).to.include({ status: 'failed', attempts: 3 });
    expect(first.nextDueAt!.getTime()).to.equal(row.scheduled_at.getTime());
    expect(row.scheduled_at.getTime() - clock.getTime()).to.equal(240_000);
    const second = await runJobsInline(db, [kind], { ...opts, waitForRetriesMs: 300_000 });
    expect(second.outcomes.completed).to.equal(1);
    expect((await listJobAttempts(db, id)).map((h) => h.outcome)).to.deep.equal(['failed', 'failed', 'failed', 'completed']);
  });

  it('resets a row a crashed inline run left in processing before running it again', async () => {
    const { id } = await enqueueJob(db, 'test-record', { tag: 'left-over' });
    await db.raw(`UPDATE jobs SET status = 'processing', attempts = 1, claim_token = gen_random_uuid(), started_at = now() - interval '1 hour', heartbeat_at = now() - interval '1 hour' WHERE id = ?`, [id]);
    const summary = await runJobsInline(db, [recordKind()]);
    expect(summary.outcomes.completed).to.equal(1);
    expect(await getJob(db, id)).to.include({ status: 'completed', stall_count: 1, attempts: 1 });
  });

  it('calls onPermanentFailure inside the transaction on PGlite too', async () => {
    await db.raw('CREATE TABLE IF NOT EXISTS test_mails (job_id bigint PRIMARY KEY)');
    const { id } = await enqueueJob(db, 'test-record', { tag: 'perm', failTimes: 1, errorClass: 'permanent' });
    await runJobsInline(db, [recordKind()], { onPermanentFailure: async (job, ctx) => void (await ctx.db('test_mails').insert({ job_id: job.id })) });
    expect(await db('test_mails').where({ job_id: id })).to.have.length(1);
  });

  it('lets a worker without Redis run on PGlite too: one job at a time, found by its sweeper', async () => {
    await enqueueJob(db, 'test-record', { tag: 'pglite-worker', enqueueNext: 2 });
    await enqueueJob(db, 'test-record', { tag: 'pglite-worker', failTimes: 1 });
    const runner = createJobRunner({ db, definitions: [recordKind()], concurrency: 8, log: quietLog, sweepIntervalMs: 100 });
    await runner.start();
    try {
      await waitFor('4 completed jobs', async () => (await jobStatuses(db)).completed === 4, 30_000);
    } finally {
      await runner.stop({ graceMs: 1000 });
    }
    expect(runner.stats()).to.include({ completed: 4, failed: 1 });
  });
});
