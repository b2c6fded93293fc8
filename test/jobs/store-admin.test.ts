import { expect } from 'chai';
import pg from 'pg';
import type { Knex } from 'knex';
import { useTestDb } from '../helpers/db.js';
import { CHANNEL, getJob } from '../../src/jobs/store/runs.js';
import { clearJob, countJobs, listJobs, notifyDueJobs, retryJob, retryJobs, unstickJobs } from '../../src/jobs/store/admin.js';
import type { JobRow } from '../../src/jobs/contract/types.js';

// Operator actions on a varied set of rows; every test checks that the rows
// it should not touch are byte-for-byte unchanged.

const NOW = new Date('2031-07-01T00:00:00.000Z');

async function seedVaried(db: Knex): Promise<Record<string, number>> {
  const ids: Record<string, number> = {};
  const add = async (name: string, sql: string) => {
    const { rows } = await db.raw(`INSERT INTO jobs (kind, subject_type, subject_id, status, attempts, stall_count, scheduled_at, started_at, heartbeat_at, claim_token, finished_at, last_error, error_class)
      VALUES ${sql} RETURNING id`);
    ids[name] = rows[0].id;
  };
  await add('pending', `('notify', 'upload', '1', 'pending', 0, 0, now(), NULL, NULL, NULL, NULL, NULL, NULL)`);
  await add('waitingRetry', `('notify', 'upload', '1', 'failed', 2, 0, now() + interval '1 hour', now(), now(), NULL, NULL, 'HTTP 503', 'transient')`);
  await add('deadUpload1', `('notify', 'upload', '1', 'failed_permanent', 5, 1, now(), now(), now(), NULL, now(), 'HTTP 400', 'permanent')`);
  await add('deadUpload2', `('notify', 'upload', '2', 'failed_permanent', 5, 0, now(), now(), now(), NULL, now(), 'HTTP 401', 'auth')`);
  await add('deadInvoice', `('submit', 'invoice', '9', 'failed_permanent', 3, 0, now(), now(), now(), NULL, now(), 'stalled', 'stalled')`);
  await add('done', `('notify', 'upload', '1', 'completed', 1, 0, now(), now(), now(), NULL, now(), NULL, NULL)`);
  await add('runningOld', `('submit', 'invoice', '9', 'processing', 1, 0, now(), now() - interval '2 hours', now() - interval '2 hours', gen_random_uuid(), NULL, NULL, NULL)`);
  await add('runningNew', `('submit', 'invoice', '9', 'processing', 1, 0, now(), now(), now(), gen_random_uuid(), NULL, NULL, NULL)`);
  return ids;
}

describe('jobs.store-admin', () => {
  const t = useTestDb(import.meta.url);
  let ids: Record<string, number>;
  let before: Map<number, JobRow>;

  async function unchangedExcept(...changed: string[]): Promise<void> {
    for (const [name, id] of Object.entries(ids)) {
      if (changed.includes(name)) continue;
      expect(await getJob(t.get().db, id), `${name} must be untouched`).to.deep.equal(before.get(id));
    }
  }

  beforeEach(async () => {
    const { db } = t.get();
    await db.raw('TRUNCATE jobs CASCADE');
    ids = await seedVaried(db);
    before = new Map(await Promise.all(Object.values(ids).map(async (id) => [id, (await getJob(db, id))!] as const)));
  });

  it('retryJob puts a failed_permanent job back to pending now with fresh attempts and stalls', async () => {
    const row = await retryJob(t.get().db, ids.deadUpload1!, NOW);
    expect(row).to.include({ status: 'pending', attempts: 0, stall_count: 0, finished_at: null, last_error: 'HTTP 400' });
    expect(row!.scheduled_at.toISOString()).to.equal(NOW.toISOString());
    await unchangedExcept('deadUpload1');
  });

  it('retryJob also pulls a waiting retry forward, and refuses running, pending and completed jobs', async () => {
    const { db } = t.get();
    expect(await retryJob(db, ids.waitingRetry!, NOW)).to.include({ status: 'pending', attempts: 0 });
    for (const name of ['pending', 'done', 'runningOld']) expect(await retryJob(db, ids[name]!), name).to.equal(null);
    await unchangedExcept('waitingRetry');
  });

  it('retryJobs by subject touches only that subject\'s failed jobs', async () => {
    const rows = await retryJobs(t.get().db, { subjectType: 'upload', subjectId: 1 });
    expect(rows.map((r) => r.id).sort()).to.deep.equal([ids.waitingRetry, ids.deadUpload1].sort());
    await unchangedExcept('waitingRetry', 'deadUpload1');
  });

  it('retryJobs({ status: failed_permanent }) retries every permanent failure and nothing else', async () => {
    const rows = await retryJobs(t.get().db, { status: 'failed_permanent' });
    expect(rows.map((r) => r.id).sort()).to.deep.equal([ids.deadUpload1, ids.deadUpload2, ids.deadInvoice].sort());
    await unchangedExcept('deadUpload1', 'deadUpload2', 'deadInvoice');
  });

  it('retryJobs never moves a row outside failed/failed_permanent, whatever the filter says', async () => {
    expect(await retryJobs(t.get().db, { status: ['processing', 'completed', 'pending'] })).to.deep.equal([]);
    await unchangedExcept();
  });

  it('unstickJobs resets only processing rows older than asked, as a stall', async () => {
    const rows = await unstickJobs(t.get().db, { olderThanMs: 60 * 60 * 1000 });
    expect(rows.map((r) => r.id)).to.deep.equal([ids.runningOld]);
    expect(rows[0]).to.include({ status: 'pending', stall_count: 1, attempts: 0, claim_token: null });
    await unchangedExcept('runningOld');
  });

  it('unstickJobs with ids resets just those, and requires an age', async () => {
    const { db } = t.get();
    expect((await unstickJobs(db, { olderThanMs: 0, ids: [ids.runningNew!] })).map((r) => r.id)).to.deep.equal([ids.runningNew]);
    await unchangedExcept('runningNew');
    const err = await unstickJobs(db, { olderThanMs: -1 }).catch((e: unknown) => e);
    expect(err).to.be.instanceOf(RangeError).with.property('message').that.matches(/^olderThanMs /);
  });

  it('clearJob deletes a finished or waiting job but never a running one', async () => {
    const { db } = t.get();
    expect(await clearJob(db, ids.runningOld!)).to.equal(null);
    expect(await clearJob(db, ids.deadInvoice!)).to.include({ id: ids.deadInvoice });
    expect(await getJob(db, ids.deadInvoice!)).to.equal(null);
    delete ids.deadInvoice;
    await unchangedExcept();
  });

  it('listJobs filters by status, kind and subject, newest first, with keyset paging', async () => {
    const { db } = t.get();
    expect((await listJobs(db, { status: 'failed_permanent' })).map((r) => r.id)).to.deep.equal([ids.deadInvoice, ids.deadUpload2, ids.deadUpload1]);
    expect((await listJobs(db, { kind: 'submit', subjectType: 'invoice', subjectId: '9', status: 'processing' })).map((r) => r.id)).to.deep.equal([ids.runningNew, ids.runningOld]);
    const page1 = await listJobs(db, { limit: 3 });
    const page2 = await listJobs(db, { limit: 3, beforeId: page1[2]!.id });
    expect([...page1, ...page2].map((r) => r.id)).to.deep.equal(Object.values(ids).sort((a, b) => b - a).slice(0, 6));
  });

  it('countJobs counts by kind and status', async () => {
    expect(await countJobs(t.get().db)).to.deep.equal([
      { kind: 'notify', status: 'completed', count: 1 },
      { kind: 'notify', status: 'failed', count: 1 },
      { kind: 'notify', status: 'failed_permanent', count: 2 },
      { kind: 'notify', status: 'pending', count: 1 },
      { kind: 'submit', status: 'failed_permanent', count: 1 },
      { kind: 'submit', status: 'processing', count: 2 },
    ]);
  });

  it('processDueJobsNow announces every due row to listening workers, and only those', async () => {
    const { db, url } = t.get();
    const listener = new pg.Client({ connectionString: url });
    await listener.connect();
    const heard: string[] = [];
    listener.on('notification', (m) => heard.push(m.payload ?? ''));
    await listener.query(`LISTEN ${CHANNEL}`);
    try {
      expect(await notifyDueJobs(db)).to.equal(1);
      await new Promise((r) => setTimeout(r, 100));
      expect(heard).to.deep.equal([`${ids.pending}:0:notify`]);
    } finally {
      await listener.end();
    }
    await unchangedExcept();
  });
});
