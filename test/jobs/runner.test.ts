import { expect } from 'chai';
import { useTestDb } from '../helpers/db.js';
import { enqueueJob } from '../../src/jobs/store/enqueue.js';
import { createJobRunner, openJobRunnerCount, type JobRunner, type JobRunnerOptions } from '../../src/jobs/runtime/runner.js';
import { getJob } from '../../src/jobs/store/runs.js';
import { listJobAttempts } from '../../src/jobs/store/admin.js';
import { recordKind, slowKind } from './kinds.js';
import { createRunsTable, jobStatuses, quietLog, REDIS_URL, redisPrefix, runsOf, waitFor, wipeRedisPrefix } from './support.js';

// The whole mechanism against real Postgres and real Redis: rows, NOTIFY,
// bee-queue bells, claims, timers, sweeper, shutdown.

describe('jobs.createJobRunner', () => {
  const t = useTestDb(import.meta.url);
  const prefix = redisPrefix(import.meta.url);
  const definitions = [recordKind({ backoff: { baseMs: 20, capMs: 50 } }), slowKind()];
  let runners: JobRunner[] = [];

  async function startRunner(extra: Partial<JobRunnerOptions> = {}): Promise<JobRunner> {
    const runner = createJobRunner({
      db: t.get().db, definitions, redis: { url: REDIS_URL, prefix }, concurrency: 5, log: quietLog,
      // Long sweeps: a job done within a test ran because of NOTIFY/timers, not the safety net.
      sweepIntervalMs: 60_000, stallIntervalMs: 1000, ...extra,
    });
    runners.push(runner);
    await runner.start();
    return runner;
  }
  const allDone = async (n: number) => waitFor(`${n} completed jobs`, async () => (await jobStatuses(t.get().db)).completed === n && true);

  before(async () => createRunsTable(t.get().db));
  beforeEach(async () => {
    await t.get().db.raw('TRUNCATE jobs, test_job_runs CASCADE');
    await wipeRedisPrefix(prefix);
  });
  afterEach(async () => {
    await Promise.all(runners.map((r) => r.stop({ graceMs: 0 })));
    runners = [];
    expect(openJobRunnerCount(), 'a runner was left running').to.equal(0);
  });
  after(async () => wipeRedisPrefix(prefix));

  it('runs each of 300 jobs exactly once with two runners ringing every bell three times', async () => {
    const { db } = t.get();
    const [a, b] = [await startRunner(), await startRunner()];
    for (let batch = 0; batch < 10; batch++) {
      const ids: number[] = [];
      await db.transaction(async (trx) => {
        for (let i = 0; i < 30; i++) ids.push((await enqueueJob(trx, 'test-record', { tag: 'once' })).id);
      });
      // Besides the NOTIFY each runner hears: three more rings per job, from both runners, some after it ran.
      await Promise.all([a.ring(ids), b.ring(ids)]);
      setTimeout(() => void a.ring(ids), 50);
    }
    await allDone(300);
    const runs = await runsOf(db, 'once');
    expect(runs).to.have.length(300);
    expect(new Set(runs.map((r) => r.job_id)).size).to.equal(300);
    expect(runs.every((r) => r.attempt === 1)).to.equal(true);
    expect(await jobStatuses(db)).to.deep.equal({ completed: 300 });
    const [sa, sb] = [a.stats(), b.stats()];
    expect(sa.completed + sb.completed, 'each runner counted what it completed').to.equal(300);
    expect(sa.lost + sb.lost).to.equal(0);
  });

  it('claims the rows of the kinds it knows many per statement, never more than its free slots, and ends them many per statement', async () => {
    const { db } = t.get();
    const runner = await startRunner({ concurrency: 5 });
    // Runs that overlap end together (alignEnd): their completions queue behind the three
    // in flight however fast this machine answers each one.
    await db.raw(`INSERT INTO jobs (kind, payload) SELECT 'test-slow', jsonb_build_object('tag', 'scanned', 'ms', 30, 'alignEnd', true) FROM generate_series(1, 60)`);
    await allDone(60);
    // A statement's rows share now(): rows with one started_at were claimed together, with one finished_at ended together.
    const { rows: claims } = await db.raw(`SELECT started_at, count(*)::int AS n FROM jobs GROUP BY started_at`);
    const { rows: ends } = await db.raw(`SELECT count(DISTINCT finished_at)::int AS n FROM jobs`);
    expect(Math.max(...claims.map((c: { n: number }) => c.n)), 'rows per claim').to.be.within(2, 5);
    expect(claims.length, 'claim statements').to.be.below(60);
    expect(ends[0].n, 'completion statements').to.be.below(60);
    expect(runner.stats()).to.include({ completed: 60, missed: 0 });
    expect(await runsOf(db, 'scanned')).to.have.length(60);
  });

  it('picks up a row inserted by plain SQL in a committed transaction, and never one that rolled back', async () => {
    const { db } = t.get();
    await startRunner();
    await db
      .transaction(async (trx) => {
        await enqueueJob(trx, 'test-record', { tag: 'rolled-back' });
        await trx.raw(`INSERT INTO jobs (kind, payload) VALUES ('test-record', '{"tag":"rolled-back-sql"}')`);
        throw new Error('rollback');
      })
      .catch(() => undefined);
    await db.transaction(async (trx) => {
      await trx.raw(`INSERT INTO jobs (kind, payload) VALUES ('test-record', '{"tag":"by-trigger"}')`);
    });
    await allDone(1);
    await runners[0]!.sweeper.runOnce(); // a sweep finds nothing else either
    await new Promise((r) => setTimeout(r, 200));
    expect((await runsOf(db)).map((r) => r.tag)).to.deep.equal(['by-trigger']);
    expect(await jobStatuses(db)).to.deep.equal({ completed: 1 });
  });

  it('retries on its own timers after a short backoff, then completes', async () => {
    const { db } = t.get();
    await startRunner();
    const { id } = await enqueueJob(db, 'test-record', { tag: 'retry', failTimes: 2 });
    await allDone(1);
    expect(await getJob(db, id)).to.include({ status: 'completed', attempts: 3 });
    expect((await listJobAttempts(db, id)).map((h) => h.outcome)).to.deep.equal(['failed', 'failed', 'completed']);
    expect(runners[0]!.stats()).to.include({ failed: 2, completed: 1, lost: 0 });
  });

  it('re-rings a zero-delay snooze once bee-queue has released the bell', async () => {
    const { db } = t.get();
    await startRunner();
    const { id } = await enqueueJob(db, 'test-record', { tag: 'snooze', snoozeTimes: 3, snoozeMs: 0 });
    await allDone(1);
    expect(await getJob(db, id)).to.include({ attempts: 1 });
    expect(await runsOf(db, 'snooze')).to.have.length(4);
  });

  it('completes all work when Redis loses every key mid-run, once the sweeper re-rings', async () => {
    const { db } = t.get();
    const runner = await startRunner({ concurrency: 2, sweepIntervalMs: 300, listen: false });
    const ids: number[] = [];
    await db.transaction(async (trx) => {
      for (let i = 0; i < 40; i++) ids.push((await enqueueJob(trx, 'test-slow', { tag: 'flushed', ms: 20 })).id);
    });
    await runner.ring(ids);
    await waitFor('some jobs done', async () => ((await jobStatuses(db)).completed ?? 0) >= 5);
    expect(await wipeRedisPrefix(prefix)).to.be.greaterThan(0);
    await allDone(40);
    const runs = await runsOf(db, 'flushed');
    expect(new Set(runs.map((r) => r.job_id)).size).to.equal(40);
    expect(runs).to.have.length(40);
  });

  it('reconnects a killed LISTEN connection and sweeps for the rows announced while it was down', async () => {
    const { db } = t.get();
    await startRunner();
    const { rows } = await db.raw(`SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND query = 'LISTEN herald_jobs'`);
    expect(rows, 'one LISTEN connection').to.have.length(1);
    await db.raw('SELECT pg_terminate_backend(?)', [rows[0].pid]);
    await enqueueJob(db, 'test-record', { tag: 'while-down' }); // its NOTIFY has no listener
    await allDone(1); // the 60 s sweep interval is far away: only the reconnect sweep can find it
    await waitFor('LISTEN back', async () => (await db.raw(`SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND query = 'LISTEN herald_jobs'`)).rows.length === 1);
    await enqueueJob(db, 'test-record', { tag: 'after' });
    await allDone(2);
  });

  it('lets running jobs finish on a graceful stop', async () => {
    const { db } = t.get();
    const runner = await startRunner();
    const { id } = await enqueueJob(db, 'test-slow', { tag: 'graceful', ms: 400 });
    await waitFor('job running', async () => runner.running() === 1);
    await runner.stop({ graceMs: 5000 });
    expect(await getJob(db, id)).to.include({ status: 'completed', attempts: 1 });
  });

  it('aborts running jobs when the grace runs out, giving their attempts back', async () => {
    const { db } = t.get();
    const runner = await startRunner();
    const { id } = await enqueueJob(db, 'test-slow', { tag: 'grace-out', ms: 30_000 });
    await waitFor('job running', async () => runner.running() === 1);
    await runner.stop({ graceMs: 200 });
    expect(await getJob(db, id)).to.include({ status: 'pending', attempts: 0, claim_token: null });
    expect((await listJobAttempts(db, id)).map((h) => [h.attempt, h.outcome])).to.deep.equal([[1, 'interrupted']]);
  });

  it('aborts at once on a second stop, however long the first one\'s grace', async () => {
    const { db } = t.get();
    const runner = await startRunner();
    const a = await enqueueJob(db, 'test-slow', { tag: 'cut', ms: 30_000 });
    const b = await enqueueJob(db, 'test-slow', { tag: 'cut', ms: 30_000 });
    await waitFor('jobs running', async () => runner.running() === 2);
    let firstDone = false;
    const first = runner.stop({ graceMs: 60_000 }).then(() => (firstDone = true));
    await new Promise((r) => setTimeout(r, 300));
    expect(firstDone, 'still waiting out the grace').to.equal(false);
    await runner.stop(); // the second stop
    await first;
    for (const { id } of [a, b]) {
      expect(await getJob(db, id)).to.include({ status: 'pending', attempts: 0, claim_token: null });
      expect((await listJobAttempts(db, id)).map((h) => h.outcome)).to.deep.equal(['interrupted']);
    }
    expect(runner.stats()).to.include({ interrupted: 2 });
  });

  it('works without Redis: an in-process bell, the same claims and NOTIFY', async () => {
    const { db } = t.get();
    await startRunner({ redis: undefined });
    await db.transaction(async (trx) => {
      for (let i = 0; i < 20; i++) await enqueueJob(trx, 'test-record', { tag: 'local', failTimes: i % 4 === 0 ? 1 : 0 });
    });
    await allDone(20);
    expect(await runsOf(db, 'local')).to.have.length(25);
  });
});
