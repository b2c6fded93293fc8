import { expect } from 'chai';
import type { Knex } from 'knex';
import { useTestDb } from '../helpers/db.js';
import { enqueueJob } from '../../src/jobs/store/enqueue.js';
import { getJob } from '../../src/jobs/store/runs.js';
import { REAPER_LOCK_KEY, resetJobsOfLostWorkers } from '../../src/jobs/store/sweep.js';
import { listJobAttempts } from '../../src/jobs/store/admin.js';
import { listLiveWorkers, registerWorker } from '../../src/jobs/store/workers.js';
import { createSweeper } from '../../src/jobs/runtime/sweeper.js';
import { createJobRunner, openJobRunnerCount, type JobRunner } from '../../src/jobs/runtime/runner.js';
import { runJobsInline } from '../../src/jobs/runtime/inline.js';
import type { JobRow } from '../../src/jobs/contract/types.js';
import { recordKind, slowKind } from './kinds.js';
import { createRunsTable, quietLog, runsOf, waitFor } from './support.js';

// The worker registry (job_workers, decision 0015): workers register and
// heartbeat; the rows a worker that stopped heartbeating held go back to
// pending at once (worker_lost, attempt given back), whatever their kind's timeout.

const NOW = new Date('2031-05-01T10:00:00.000Z');
const ago = (ms: number) => new Date(NOW.getTime() - ms);
const LOST_AFTER = 10_000;

async function worker(db: Knex, heartbeatAgoMs: number, pid = 4242): Promise<number> {
  const id = await registerWorker(db, { pid, host: 'host-a', runner: 'worker' }, ago(heartbeatAgoMs + 60_000));
  await db.raw(`UPDATE job_workers SET heartbeat_at = ? WHERE id = ?`, [ago(heartbeatAgoMs), id]);
  return id;
}

/** A processing row claimed by workerId a moment ago (its own heartbeat fresh: only the worker's tells it is dead). */
async function claimed(db: Knex, workerId: number | null, o: { kind?: string; stallCount?: number } = {}): Promise<number> {
  const { rows } = await db.raw(
    `INSERT INTO jobs (kind, status, attempts, stall_count, scheduled_at, started_at, heartbeat_at, claim_token, worker_id)
     VALUES (?, 'processing', 1, ?, ?, ?, ?, gen_random_uuid(), ?) RETURNING id`,
    [o.kind ?? 'test-slow', o.stallCount ?? 0, ago(5000), ago(1000), ago(1000), workerId],
  );
  return Number(rows[0].id);
}

describe('jobs worker registry', () => {
  const t = useTestDb(import.meta.url);
  // An export-like timeout: the stuck rule alone would wait 3 h.
  const definitions = [recordKind({ maxStalls: 1 }), slowKind({ timeoutMs: 3600_000 })];
  let runners: JobRunner[] = [];

  before(async () => createRunsTable(t.get().db));
  beforeEach(async () => t.get().db.raw('TRUNCATE jobs, job_workers, test_job_runs CASCADE'));
  afterEach(async () => {
    await Promise.all(runners.map((r) => r.stop({ graceMs: 0 })));
    runners = [];
    expect(openJobRunnerCount(), 'a runner was left running').to.equal(0);
  });

  it('puts the rows of a worker that missed its heartbeats back to pending at once, attempt given back, and deletes the worker', async () => {
    const { db } = t.get();
    const live = await worker(db, LOST_AFTER - 1000);
    const dead = await worker(db, LOST_AFTER + 1000, 777);
    const gone = 999_999; // deregistered while a handler ignored its abort
    const ofLive = await claimed(db, live);
    const ofDead = [await claimed(db, dead), await claimed(db, dead, { kind: 'test-record' })];
    const ofGone = await claimed(db, gone);
    const unregistered = await claimed(db, null); // a worker older than the registry: the stuck rule's
    const before = await Promise.all([ofLive, unregistered].map((id) => getJob(db, id)));
    const sweeper = createSweeper({ db, definitions, log: quietLog, intervalMs: 1000, workerLostAfterMs: LOST_AFTER });

    const reset = await sweeper.reapLostWorkers({ now: NOW });
    expect(reset!.map((r) => r.id)).to.deep.equal([...ofDead, ofGone]);
    for (const id of [...ofDead, ofGone]) {
      expect(await getJob(db, id)).to.include({ status: 'pending', attempts: 0, stall_count: 1, claim_token: null, finished_at: null });
    }
    const history = await listJobAttempts(db, ofDead[0]!);
    expect(history.map((h) => [h.attempt, h.outcome, Number(h.worker_id)])).to.deep.equal([[1, 'worker_lost', dead]]);
    expect(history[0]!.error).to.match(new RegExp(`^worker lost: worker ${dead} \\(pid 777 on host-a\\) last heartbeat .* \\(stall 1\\)$`));
    expect((await listJobAttempts(db, ofGone))[0]!.error).to.contain(`worker ${gone} is gone`);
    expect(await Promise.all([ofLive, unregistered].map((id) => getJob(db, id)))).to.deep.equal(before);
    expect((await db('job_workers').pluck('id')).map(Number)).to.deep.equal([live]);
    expect((await listLiveWorkers(db, { lostAfterMs: LOST_AFTER }, NOW)).map((w) => [w.id, w.running])).to.deep.equal([[live, 1]]);
    expect(await sweeper.reapLostWorkers({ now: NOW }), 'nothing left').to.deep.equal([]);
  });

  it('fails a row of a lost worker permanently past its maxStalls (a job that kills its worker), calling the hook once', async () => {
    const { db } = t.get();
    const dead = await worker(db, LOST_AFTER + 1);
    const poison = await claimed(db, dead, { kind: 'test-record', stallCount: 1 });
    const hooked: JobRow[] = [];
    const sweeper = createSweeper({ db, definitions, log: quietLog, intervalMs: 1000, workerLostAfterMs: LOST_AFTER, onPermanentFailure: async (job) => void hooked.push(job) });
    const counts = await sweeper.runOnce({ now: NOW });
    expect(counts).to.include({ locked: true, workerLost: 1 });
    expect(await getJob(db, poison)).to.include({ status: 'failed_permanent', stall_count: 2, error_class: 'stalled' });
    expect(hooked.map((j) => j.id)).to.deep.equal([poison]);
  });

  it('leaves the reset to whoever holds the reaper lock', async () => {
    const { db } = t.get();
    const job = await claimed(db, await worker(db, LOST_AFTER + 1));
    const sweeper = createSweeper({ db, definitions, log: quietLog, intervalMs: 1000, workerLostAfterMs: LOST_AFTER });
    await db.transaction(async (trx) => {
      await trx.raw(`SELECT pg_advisory_xact_lock(${REAPER_LOCK_KEY})`);
      expect(await sweeper.reapLostWorkers({ now: NOW })).to.equal(null);
    });
    expect(await getJob(db, job)).to.include({ status: 'processing' });
  });

  it('registers a runner before its first claim, names it on every row it claims and run it records, and deregisters it on stop', async () => {
    const { db } = t.get();
    const runner = createJobRunner({ db, definitions, concurrency: 2, log: quietLog, sweepIntervalMs: 60_000 });
    runners.push(runner);
    await runner.start();
    const id = runner.registry.id()!;
    const [me] = await db('job_workers').where({ id });
    expect(me).to.include({ pid: process.pid, runner: 'worker' });
    const { id: jobId } = await enqueueJob(db, 'test-record', { tag: 'named' });
    await waitFor('the job to complete', async () => (await getJob(db, jobId))?.status === 'completed');
    expect(Number((await getJob(db, jobId))!.worker_id)).to.equal(id);
    expect((await listJobAttempts(db, jobId)).map((h) => Number(h.worker_id))).to.deep.equal([id]);
    await runner.stop({ graceMs: 0 });
    expect(await db('job_workers').where({ id })).to.deep.equal([]);
  });

  it('a runner declared dead registers again and aborts what it ran under its old id; the reset job runs again', async () => {
    const { db } = t.get();
    const runner = createJobRunner({
      db, definitions, concurrency: 2, log: quietLog, sweepIntervalMs: 60_000, workerHeartbeatMs: 50, workerLostAfterMs: 5_000, abortGraceMs: 100,
    });
    runners.push(runner);
    await runner.start();
    const first = runner.registry.id()!;
    const { id: jobId } = await enqueueJob(db, 'test-slow', { tag: 'declared-dead', ms: 2000 });
    await waitFor('the job to run', async () => (await runsOf(db, 'declared-dead')).length === 1);
    // What another worker's reaper does when this one's heartbeats stop arriving (its own beats would hide an old heartbeat_at).
    const reset = await db.transaction(async (trx) => {
      await trx.raw(`DELETE FROM job_workers WHERE id = ?`, [first]);
      return resetJobsOfLostWorkers(trx, [], { stuckAfterMs: 3600_000, maxStalls: 5 }, 5_000);
    });
    expect(reset.jobs.map((r) => r.id)).to.deep.equal([jobId]);
    await waitFor('the job to complete', async () => (await getJob(db, jobId))?.status === 'completed', 20_000);
    const second = runner.registry.id()!;
    expect(second).to.not.equal(first);
    const history = await listJobAttempts(db, jobId);
    const steps = history.map((h) => [h.attempt, h.outcome, Number(h.worker_id)]);
    expect(steps[0]).to.deep.equal([1, 'worker_lost', first]);
    expect(steps.at(-1)).to.deep.equal([1, 'completed', second]);
    // A claim it made under its old id before it noticed (the reset row was announced at once) was
    // aborted too, or reset by its own reaper first: either way under the old id, attempt given back.
    for (const [attempt, outcome, worker] of steps.slice(1, -1)) {
      expect([attempt, worker]).to.deep.equal([1, first]);
      expect(outcome).to.be.oneOf(['interrupted', 'worker_lost']);
    }
    expect(await runsOf(db, 'declared-dead')).to.have.length(steps.length);
    // The first run was aborted when the worker learned it had been declared dead; its result was dropped.
    // Each aborted run either found its row already reset (lost: its result dropped) or recorded itself interrupted.
    const count = (o: string) => steps.filter((x) => x[1] === o).length;
    expect(runner.stats()).to.include({ lost: count('worker_lost'), interrupted: count('interrupted'), completed: 1 });
  });

  it('registers an inline run too, and deregisters it when the run ends', async () => {
    const { db } = t.get();
    const { id: jobId } = await enqueueJob(db, 'test-record', { tag: 'inline' });
    const summary = await runJobsInline(db, definitions, { log: quietLog });
    expect(summary.ran).to.equal(1);
    const [attempt] = await listJobAttempts(db, jobId);
    expect(attempt!.worker_id, 'the inline run named itself').to.not.equal(null);
    expect(await db('job_workers').select('id')).to.deep.equal([]);
  });
});
