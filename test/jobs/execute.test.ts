import { expect } from 'chai';
import { randomUUID } from 'node:crypto';
import type { Knex } from 'knex';
import { useTestDb } from '../helpers/db.js';
import { enqueueJob } from '../../src/jobs/store/enqueue.js';
import { executeJob, formatError, type ExecuteDeps } from '../../src/jobs/runtime/execute.js';
import { TransientError } from '../../src/jobs/contract/errors.js';
import { claimJob, endJobRun, getJob } from '../../src/jobs/store/runs.js';
import { listJobAttempts } from '../../src/jobs/store/admin.js';
import { createSweeper } from '../../src/jobs/runtime/sweeper.js';
import type { JobDefinition, JobRow } from '../../src/jobs/contract/types.js';
import { recordKind, slowKind, type RecordPayload } from './kinds.js';
import { createRunsTable, quietLog, runsOf } from './support.js';

// executeJob end to end on real Postgres, with a fake clock (every timestamp
// the mechanism writes comes from `now`) and a fixed random (jitter 0.5).

describe('jobs.executeJob', () => {
  const t = useTestDb(import.meta.url);
  let clock: Date;
  const tick = (ms: number) => (clock = new Date(clock.getTime() + ms));
  const never = new AbortController().signal;
  const record = recordKind(); // maxAttempts 3, backoff 20 ms .. 200 ms

  function deps(extra: Partial<ExecuteDeps> = {}, defs: JobDefinition[] = [record, slowKind()]): ExecuteDeps {
    return { db: t.get().db, definitions: new Map(defs.map((d) => [d.kind as string, d])), log: quietLog, now: () => clock, random: () => 0.5, heartbeat: true, abortGraceMs: 100, ...extra };
  }
  async function enqueue(payload: RecordPayload, opts: { maxAttempts?: number } = {}): Promise<number> {
    return (await enqueueJob(t.get().db, 'test-record', payload, { runAt: clock, ...opts })).id;
  }
  async function claim(id: number): Promise<JobRow> {
    const job = await claimJob(t.get().db, id, randomUUID(), clock);
    expect(job, `job ${id} claimable at ${clock.toISOString()}`).to.not.equal(null);
    return job!;
  }
  const run = async (id: number, d = deps()) => executeJob(d, await claim(id), never);

  before(async () => createRunsTable(t.get().db));
  beforeEach(() => (clock = new Date('2031-03-01T12:00:00.000Z')));

  it('completes a job: finished_at from the clock, one attempt, one history row', async () => {
    const id = await enqueue({ tag: 'ok' });
    const result = await run(id);
    expect(result.outcome).to.equal('completed');
    const row = (await getJob(t.get().db, id))!;
    expect(row).to.include({ status: 'completed', attempts: 1, claim_token: null, last_error: null });
    expect(row.finished_at!.toISOString()).to.equal(clock.toISOString());
    const history = await listJobAttempts(t.get().db, id);
    expect(history.map((h) => [h.attempt, h.outcome])).to.deep.equal([[1, 'completed']]);
  });

  it('retries a transient error on the backoff schedule, then fails permanently at max attempts', async () => {
    const { db } = t.get();
    const id = await enqueue({ tag: 'flaky', failTimes: 5 });
    const first = await run(id);
    expect(first).to.include({ outcome: 'failed', retryInMs: 15 }); // d = 20: 10 + 0.5 * 10
    let row = (await getJob(db, id))!;
    expect(row).to.include({ status: 'failed', attempts: 1, error_class: 'transient', finished_at: null });
    expect(row.last_error).to.equal('TransientError: 503 from the other side (cause: Error: ECONNRESET)');
    expect(row.scheduled_at.getTime() - clock.getTime()).to.equal(15);
    expect(await claimJob(db, id, randomUUID(), tick(14)), 'not due 1 ms early').to.equal(null);
    tick(1);
    expect((await run(id)).retryInMs).to.equal(30); // d = 40
    tick(30);
    expect((await run(id)).outcome).to.equal('failed_permanent');
    row = (await getJob(db, id))!;
    expect(row).to.include({ status: 'failed_permanent', attempts: 3, error_class: 'transient' });
    expect(row.finished_at!.toISOString()).to.equal(clock.toISOString());
    const history = await listJobAttempts(db, id);
    expect(history.map((h) => [h.attempt, h.outcome, h.error_class])).to.deep.equal([
      [1, 'failed', 'transient'], [2, 'failed', 'transient'], [3, 'failed_permanent', 'transient'],
    ]);
    expect(await runsOf(db, 'flaky')).to.have.length(3);
  });

  it('waits as long as Retry-After says, even beyond the kind\'s cap', async () => {
    const id = await enqueue({ tag: 'limited', failTimes: 1, errorClass: 'rate_limited', retryAfterMs: 5000 });
    expect(await run(id)).to.include({ outcome: 'failed', retryInMs: 5250 });
    const row = (await getJob(t.get().db, id))!;
    expect(row).to.include({ status: 'failed', error_class: 'rate_limited' });
    expect(row.scheduled_at.getTime() - clock.getTime()).to.equal(5250);
  });

  it('sends auth and permanent errors straight to failed_permanent, with the next step in last_error', async () => {
    const auth = await enqueue({ tag: 'auth', failTimes: 1, errorClass: 'auth' });
    expect((await run(auth)).outcome).to.equal('failed_permanent');
    expect(await getJob(t.get().db, auth)).to.include({
      status: 'failed_permanent', attempts: 1, error_class: 'auth',
      last_error: 'AuthError: 401: credentials rejected [next step: rotate HMRC_CLIENT_SECRET]',
    });
    const bad = await enqueue({ tag: 'bad', failTimes: 1, errorClass: 'permanent' });
    expect((await run(bad)).outcome).to.equal('failed_permanent');
    expect(await getJob(t.get().db, bad)).to.include({ status: 'failed_permanent', error_class: 'permanent' });
  });

  it('treats an unclassified error as transient', async () => {
    const id = await enqueue({ tag: 'plain', failTimes: 1, errorClass: 'plain' });
    expect((await run(id)).outcome).to.equal('failed');
    expect(await getJob(t.get().db, id)).to.include({ error_class: 'transient', last_error: 'Error: something unclassified broke' });
  });

  it('tells a database error in last_error by its condition, never the SQL text knex puts in its message', async () => {
    const err = await t.get().db.raw("SELECT '0000-01-01'::date AS secret_column").catch((e: unknown) => e);
    expect((err as Error).message, 'what knex gives').to.contain('secret_column');
    expect(formatError(err)).to.equal('the database refused a value: datetime_field_overflow (22008)');
    expect(formatError(new TransientError('reading rows failed', { cause: err }))).to.equal(
      'TransientError: reading rows failed (cause: the database refused a value: datetime_field_overflow (22008))',
    );
  });

  it('lets the row\'s max_attempts override the kind\'s', async () => {
    const id = await enqueue({ tag: 'once', failTimes: 1 }, { maxAttempts: 1 });
    expect((await run(id)).outcome).to.equal('failed_permanent');
  });

  it('snoozes without using an attempt, then completes as attempt 1', async () => {
    const { db } = t.get();
    const id = await enqueue({ tag: 'snooze', snoozeTimes: 2, snoozeMs: 1000 });
    expect(await run(id)).to.include({ outcome: 'snoozed', retryInMs: 1000 });
    let row = (await getJob(db, id))!;
    expect(row).to.include({ status: 'pending', attempts: 0 });
    expect(row.scheduled_at.getTime() - clock.getTime()).to.equal(1000);
    tick(1000);
    expect((await run(id)).outcome).to.equal('snoozed');
    tick(1000);
    expect((await run(id)).outcome).to.equal('completed');
    row = (await getJob(db, id))!;
    expect(row).to.include({ status: 'completed', attempts: 1 });
    expect((await listJobAttempts(db, id)).map((h) => [h.attempt, h.outcome])).to.deep.equal([[1, 'snoozed'], [1, 'snoozed'], [1, 'completed']]);
  });

  it('fails a row of an unknown kind permanently, saying where kinds are registered', async () => {
    const { db } = t.get();
    const [{ id }] = (await db.raw(`INSERT INTO jobs (kind, scheduled_at) VALUES ('no-such-kind', ?) RETURNING id`, [clock.toISOString()])).rows;
    expect((await run(id)).outcome).to.equal('failed_permanent');
    const row = (await getJob(db, id))!;
    expect(row).to.include({ status: 'failed_permanent', error_class: 'permanent' });
    expect(row.last_error).to.contain('unknown job kind "no-such-kind"').and.contain('src/cli/job-definitions.ts');
  });

  it('aborts a run at its timeout and records a transient timeout', async () => {
    const { db } = t.get();
    const id = (await enqueueJob(db, 'test-slow', { tag: 'slow', ms: 10_000 }, { runAt: clock })).id;
    const started = Date.now();
    const result = await run(id, deps({}, [slowKind({ timeoutMs: 150 })]));
    expect(Date.now() - started).to.be.lessThan(2000);
    expect(result.outcome).to.equal('failed');
    const row = (await getJob(db, id))!;
    expect(row.error_class).to.equal('transient');
    expect(row.last_error).to.match(/^TransientError: timed out after 150 ms/);
  });

  it('gives up on a handler that ignores its abort signal after abortGraceMs', async () => {
    const { db } = t.get();
    const id = (await enqueueJob(db, 'test-slow', { tag: 'deaf', ms: 3000, ignoreAbort: true }, { runAt: clock })).id;
    const started = Date.now();
    const result = await run(id, deps({ abortGraceMs: 100 }, [slowKind({ timeoutMs: 100 })]));
    expect(Date.now() - started).to.be.within(150, 2000);
    expect(result.outcome).to.equal('failed');
    expect((await getJob(db, id))!.last_error).to.equal('TransientError: timed out after 100 ms; handler ignored its abort signal for 100 ms');
  });

  it('marks a run cut short by shutdown as interrupted, giving its attempt back', async () => {
    const { db } = t.get();
    const id = (await enqueueJob(db, 'test-slow', { tag: 'interrupted', ms: 10_000 }, { runAt: clock })).id;
    const stop = new AbortController();
    setTimeout(() => stop.abort(), 50);
    const result = await executeJob(deps(), await claim(id), stop.signal);
    expect(result.outcome).to.equal('interrupted');
    expect(await getJob(db, id)).to.include({ status: 'pending', attempts: 0, claim_token: null });
    expect((await listJobAttempts(db, id)).map((h) => [h.attempt, h.outcome])).to.deep.equal([[1, 'interrupted']]);
  });

  it('lets only the claimant end a run', async () => {
    const { db } = t.get();
    const id = await enqueue({ tag: 'cas' });
    const job = await claim(id);
    const other = await endJobRun(db, { id, token: randomUUID(), status: 'completed', outcome: 'completed', at: clock });
    expect(other).to.equal(null);
    expect(await getJob(db, id)).to.include({ status: 'processing', claim_token: job.claim_token });
    expect(await endJobRun(db, { id, token: job.claim_token!, status: 'completed', outcome: 'completed', at: clock })).to.include({ status: 'completed' });
    expect(await endJobRun(db, { id, token: job.claim_token!, status: 'completed', outcome: 'completed', at: clock }), 'a second end is ignored').to.equal(null);
    expect(await listJobAttempts(db, id)).to.have.length(1);
  });

  it('gives one of many concurrent claims of a row the job, and the rest nothing', async () => {
    const { db } = t.get();
    const id = await enqueue({ tag: 'claim-race' });
    const claims = await Promise.all(Array.from({ length: 10 }, () => claimJob(db, id, randomUUID(), clock)));
    expect(claims.filter(Boolean)).to.have.length(1);
    expect(await getJob(db, id)).to.include({ attempts: 1 });
  });

  it('ignores a late completion from a claimant whose row the sweeper reset and another run claimed', async () => {
    const { db } = t.get();
    const id = await enqueue({ tag: 'late' });
    const first = await claim(id);
    const sweeper = createSweeper({ db, definitions: [record], log: quietLog, intervalMs: 1000 });
    const counts = await sweeper.runOnce({ now: new Date(clock.getTime() + 3 * record.timeoutMs + 1) });
    expect(counts.locked).to.equal(true);
    expect(await getJob(db, id)).to.include({ status: 'pending', stall_count: 1, attempts: 0, claim_token: null });
    const second = await claim(id);
    expect(second.claim_token).to.not.equal(first.claim_token);
    expect(second).to.include({ attempts: 1, stall_count: 1 });
    expect(await endJobRun(db, { id, token: first.claim_token!, status: 'completed', outcome: 'completed', at: clock })).to.equal(null);
    expect(await getJob(db, id)).to.include({ status: 'processing', claim_token: second.claim_token });
    expect(await endJobRun(db, { id, token: second.claim_token!, status: 'completed', outcome: 'completed', at: clock })).to.include({ status: 'completed' });
  });

  it('notices through the heartbeat that its claim was taken away, and records nothing', async () => {
    const { db } = t.get();
    const slow = slowKind({ timeoutMs: 600 }); // heartbeat every 200 ms
    const id = (await enqueueJob(db, 'test-slow', { tag: 'lost', ms: 5000 }, { runAt: clock })).id;
    const job = await claim(id);
    const running = executeJob(deps({}, [slow]), job, never);
    await new Promise((r) => setTimeout(r, 50));
    await createSweeper({ db, definitions: [slow], log: quietLog, intervalMs: 1000 }).runOnce({ now: new Date(clock.getTime() + 60_000) });
    const result = await running;
    expect(result.outcome).to.equal('lost');
    expect(await getJob(db, id)).to.include({ status: 'pending', stall_count: 1, attempts: 0 });
  });

  describe('onPermanentFailure', () => {
    before(async () => t.get().db.raw('CREATE TABLE test_mails (job_id bigint PRIMARY KEY)'));

    it('runs once per row entering failed_permanent, inside the transaction that moved it', async () => {
      const { db } = t.get();
      const calls: number[] = [];
      const hook = async (job: JobRow, ctx: { db: Knex.Transaction }) => {
        calls.push(job.id);
        expect(job.status).to.equal('failed_permanent');
        await ctx.db('test_mails').insert({ job_id: job.id });
      };
      const id = await enqueue({ tag: 'hook', failTimes: 1, errorClass: 'permanent' });
      const job = await claim(id);
      // Two ends race for the same claim: only the one that moved the row may call the hook.
      await Promise.all([executeJob(deps({ onPermanentFailure: hook }), job, never), executeJob(deps({ onPermanentFailure: hook }), job, never)]);
      expect(calls).to.deep.equal([id]);
      expect(await db('test_mails').where({ job_id: id })).to.have.length(1);
    });

    it('keeps the transition when the hook throws, rolling back only the hook\'s writes', async () => {
      const { db } = t.get();
      const id = await enqueue({ tag: 'hook-throws', failTimes: 1, errorClass: 'auth' });
      const hook = async (job: JobRow, ctx: { db: Knex.Transaction }) => {
        await ctx.db('test_mails').insert({ job_id: job.id });
        throw new Error('mail queue broken');
      };
      expect((await run(id, deps({ onPermanentFailure: hook }))).outcome).to.equal('failed_permanent');
      expect(await getJob(db, id)).to.include({ status: 'failed_permanent' });
      expect(await db('test_mails').where({ job_id: id })).to.have.length(0);
    });
  });
});
