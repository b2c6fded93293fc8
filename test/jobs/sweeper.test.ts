import { expect } from 'chai';
import { Writable } from 'node:stream';
import pino from 'pino';
import type { Knex } from 'knex';
import { useTestDb } from '../helpers/db.js';
import { BeeQueueDoorbell } from '../../src/jobs/runtime/bee-doorbell.js';
import { getJob } from '../../src/jobs/store/runs.js';
import { SWEEPER_LOCK_KEY } from '../../src/jobs/store/sweep.js';
import { listJobAttempts } from '../../src/jobs/store/admin.js';
import { createSweeper, UNKNOWN_KIND_STUCK_AFTER_MS } from '../../src/jobs/runtime/sweeper.js';
import type { JobRow } from '../../src/jobs/contract/types.js';
import { recordKind, slowKind } from './kinds.js';
import { quietLog, REDIS_URL, redisPrefix, wipeRedisPrefix } from './support.js';

// runOnce with an injected now against seeded rows; the untouched ones must
// stay exactly as they were.

const NOW = new Date('2031-05-01T10:00:00.000Z');
const ago = (ms: number) => new Date(NOW.getTime() - ms).toISOString();

interface Seed {
  kind?: string;
  status: JobRow['status'];
  heartbeatAgoMs?: number;
  scheduledAgoMs?: number;
  stallCount?: number;
  attempts?: number;
}

async function seed(db: Knex, s: Seed): Promise<number> {
  const processing = s.status === 'processing';
  const terminal = s.status === 'completed' || s.status === 'failed_permanent';
  const { rows } = await db.raw(
    `INSERT INTO jobs (kind, status, attempts, stall_count, scheduled_at, started_at, heartbeat_at, claim_token, finished_at)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
    [
      s.kind ?? 'test-record', s.status, s.attempts ?? (processing ? 1 : 0), s.stallCount ?? 0, ago(s.scheduledAgoMs ?? 60_000),
      processing ? ago(s.heartbeatAgoMs ?? 0) : null, processing ? ago(s.heartbeatAgoMs ?? 0) : null,
      processing ? '00000000-0000-4000-8000-000000000001' : null, terminal ? ago(1000) : null,
    ],
  );
  return rows[0].id;
}

function capturingLog() {
  const lines: { msg: string; reset?: number; rerung?: number }[] = [];
  const stream = new Writable({ write(chunk, _enc, done) { lines.push(JSON.parse(String(chunk))); done(); } });
  return { log: pino({ level: 'info' }, stream), lines };
}

describe('jobs.sweeper', () => {
  const t = useTestDb(import.meta.url);
  const definitions = [recordKind({ timeoutMs: 2000, maxStalls: 2 }), slowKind({ timeoutMs: 10_000 })];

  beforeEach(async () => t.get().db.raw('TRUNCATE jobs CASCADE'));

  it('resets rows stuck past 3x their kind\'s timeout to pending, giving the attempt back, and leaves the rest alone', async () => {
    const { db } = t.get();
    const stuck = await seed(db, { status: 'processing', heartbeatAgoMs: 6001, attempts: 2 });
    const alive = await seed(db, { status: 'processing', heartbeatAgoMs: 5999 });
    const slowAlive = await seed(db, { kind: 'test-slow', status: 'processing', heartbeatAgoMs: 29_000 });
    const slowStuck = await seed(db, { kind: 'test-slow', status: 'processing', heartbeatAgoMs: 30_001 });
    const others = [
      await seed(db, { status: 'pending' }), await seed(db, { status: 'failed', scheduledAgoMs: -60_000 }),
      await seed(db, { status: 'completed' }), await seed(db, { status: 'failed_permanent' }),
    ];
    const before = await Promise.all([alive, slowAlive, ...others].map((id) => getJob(db, id)));
    const { log, lines } = capturingLog();
    const counts = await createSweeper({ db, definitions, log, intervalMs: 1000 }).runOnce({ now: NOW });
    expect(counts).to.deep.equal({ locked: true, workerLost: 0, reset: 2, failedPermanent: 0, rerung: 0, due: 0 });
    expect(await getJob(db, stuck)).to.include({ status: 'pending', stall_count: 1, attempts: 1, claim_token: null, finished_at: null });
    expect(await getJob(db, slowStuck)).to.include({ status: 'pending', stall_count: 1, attempts: 0 });
    const history = await listJobAttempts(db, stuck);
    expect(history.map((h) => [h.attempt, h.outcome, h.error_class])).to.deep.equal([[2, 'stalled', 'stalled']]);
    expect(await Promise.all([alive, slowAlive, ...others].map((id) => getJob(db, id)))).to.deep.equal(before);
    expect(lines.map((l) => [l.msg.split(':')[0], l.reset])).to.deep.equal([['sweeper', 2]]);
  });

  it('fails a row permanently once its stalls exceed the kind\'s maxStalls, calling the hook once', async () => {
    const { db } = t.get();
    const lastStraw = await seed(db, { status: 'processing', heartbeatAgoMs: 60_000, stallCount: 2 });
    const oneMore = await seed(db, { status: 'processing', heartbeatAgoMs: 60_000, stallCount: 1 });
    const hooked: number[] = [];
    const sweeper = createSweeper({ db, definitions, log: quietLog, intervalMs: 1000, onPermanentFailure: async (job) => void hooked.push(job.id) });
    expect(await sweeper.runOnce({ now: NOW })).to.include({ reset: 1, failedPermanent: 1 });
    const row = (await getJob(db, lastStraw))!;
    expect(row).to.include({ status: 'failed_permanent', stall_count: 3, error_class: 'stalled' });
    expect(row.finished_at!.toISOString()).to.equal(NOW.toISOString());
    expect(row.last_error).to.contain('stalled 3 times (limit 2)');
    expect(await getJob(db, oneMore)).to.include({ status: 'pending', stall_count: 2 });
    expect(hooked).to.deep.equal([lastStraw]);
    expect(await sweeper.runOnce({ now: NOW }), 'nothing left to do').to.include({ reset: 0, failedPermanent: 0 });
    expect(hooked).to.have.length(1);
  });

  it('gives rows of kinds it does not know a long fallback before calling them stuck', async () => {
    const { db } = t.get();
    const recent = await seed(db, { kind: 'from-a-newer-release', status: 'processing', heartbeatAgoMs: UNKNOWN_KIND_STUCK_AFTER_MS - 1000 });
    const old = await seed(db, { kind: 'from-a-newer-release', status: 'processing', heartbeatAgoMs: UNKNOWN_KIND_STUCK_AFTER_MS + 1000 });
    await createSweeper({ db, definitions, log: quietLog, intervalMs: 1000 }).runOnce({ now: NOW });
    expect(await getJob(db, recent)).to.include({ status: 'processing' });
    expect(await getJob(db, old)).to.include({ status: 'pending', stall_count: 1 });
  });

  it('does nothing while another sweeper holds the lock, and stays quiet when nothing moved', async () => {
    const { db } = t.get();
    const stuck = await seed(db, { status: 'processing', heartbeatAgoMs: 60_000 });
    const { log, lines } = capturingLog();
    const sweeper = createSweeper({ db, definitions, log, intervalMs: 1000 });
    await db.transaction(async (trx) => {
      await trx.raw(`SELECT pg_advisory_xact_lock(${SWEEPER_LOCK_KEY})`);
      expect(await sweeper.runOnce({ now: NOW })).to.deep.equal({ locked: false, workerLost: 0, reset: 0, failedPermanent: 0, rerung: 0, due: 0 });
    });
    expect(await getJob(db, stuck)).to.include({ status: 'processing' });
    await sweeper.runOnce({ now: NOW });
    await sweeper.runOnce({ now: NOW });
    expect(lines, 'one line for the run that moved a row, none for the idle one').to.have.length(1);
  });

  describe('re-ringing (real Redis)', () => {
    const prefix = redisPrefix(import.meta.url);
    let bell: BeeQueueDoorbell;
    before(async () => {
      await wipeRedisPrefix(prefix);
      bell = new BeeQueueDoorbell({ url: REDIS_URL, prefix, worker: false, stallIntervalMs: 1000, log: quietLog });
      await bell.ready();
    });
    after(async () => {
      await bell.close();
      await wipeRedisPrefix(prefix);
    });

    it('rings every due row that has no bell, skips the ones that do, and rings again after Redis lost its keys', async () => {
      const { db } = t.get();
      await db.raw(`INSERT INTO jobs (kind, scheduled_at) SELECT 'test-record', ? FROM generate_series(1, 1500)`, [ago(1000)]);
      await seed(db, { status: 'failed', scheduledAgoMs: -60_000 }); // not yet due
      await seed(db, { status: 'completed' });
      const sweeper = createSweeper({ db, definitions, log: quietLog, intervalMs: 1000, ring: (ids) => bell.ring(ids) });
      expect(await sweeper.runOnce({ now: NOW })).to.include({ due: 1500, rerung: 1500 });
      expect(await bell.waiting()).to.equal(1500);
      expect(await sweeper.runOnce({ now: NOW }), 'bells still waiting: no-op').to.include({ due: 1500, rerung: 0 });
      expect(await wipeRedisPrefix(prefix)).to.be.greaterThan(0);
      expect(await bell.waiting()).to.equal(0);
      expect(await sweeper.runOnce({ now: NOW })).to.include({ due: 1500, rerung: 1500 });
      expect(await bell.waiting()).to.equal(1500);
    });
  });
});
