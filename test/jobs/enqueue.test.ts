import { expect } from 'chai';
import pg from 'pg';
import { useTestDb } from '../helpers/db.js';
import { enqueueJob } from '../../src/jobs/enqueue.js';
import { CHANNEL, getJob } from '../../src/jobs/store.js';
import './kinds.js';

describe('jobs.enqueueJob', () => {
  const t = useTestDb(import.meta.url);

  it('writes the row in the caller\'s transaction: a rollback leaves no job', async () => {
    const { db } = t.get();
    let id = 0;
    await db
      .transaction(async (trx) => {
        ({ id } = await enqueueJob(trx, 'test-record', { tag: 'rolled-back' }, { subjectType: 'invoice', subjectId: 42 }));
        expect(await getJob(trx, id)).to.include({ status: 'pending', subject_type: 'invoice', subject_id: '42' });
        throw new Error('business change failed');
      })
      .catch((err: Error) => expect(err.message).to.equal('business change failed'));
    expect(id).to.be.greaterThan(0);
    expect(await getJob(db, id)).to.equal(null);
  });

  it('returns the existing job for a second enqueue with the same dedupe key', async () => {
    const { db } = t.get();
    const first = await enqueueJob(db, 'test-record', { tag: 'a' }, { dedupeKey: 'mail:job-1' });
    const second = await enqueueJob(db, 'test-record', { tag: 'b' }, { dedupeKey: 'mail:job-1' });
    expect(first.created).to.equal(true);
    expect(second).to.deep.equal({ id: first.id, created: false });
    const rows = await db('jobs').where({ dedupe_key: 'mail:job-1' });
    expect(rows).to.have.length(1);
    expect(rows[0].payload).to.deep.equal({ tag: 'a' });
  });

  it('gives two concurrent transactions with one dedupe key one row, the loser waiting for the winner', async () => {
    const { db } = t.get();
    const results = await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        db.transaction(async (trx) => {
          const r = await enqueueJob(trx, 'test-record', { tag: `race-${i}` }, { dedupeKey: 'race-key' });
          await new Promise((resolve) => setTimeout(resolve, 20)); // hold the transaction open
          return r;
        }),
      ),
    );
    expect(new Set(results.map((r) => r.id)).size).to.equal(1);
    expect(results.filter((r) => r.created)).to.have.length(1);
    expect(await db('jobs').where({ dedupe_key: 'race-key' })).to.have.length(1);
  });

  it('keeps a dedupe key usable inside a transaction that goes on afterwards (no aborted transaction)', async () => {
    const { db } = t.get();
    await db.transaction(async (trx) => {
      await enqueueJob(trx, 'test-record', { tag: 'x' }, { dedupeKey: 'in-trx' });
      const again = await enqueueJob(trx, 'test-record', { tag: 'y' }, { dedupeKey: 'in-trx' });
      expect(again.created).to.equal(false);
      await trx.raw('SELECT 1'); // would fail with 25P02 if the conflict had aborted the transaction
    });
  });

  it('stores runAt and maxAttempts, and leaves max_attempts null for the kind to decide', async () => {
    const { db } = t.get();
    const runAt = new Date(Date.now() + 3_600_000);
    const a = await getJob(db, (await enqueueJob(db, 'test-record', { tag: 'later' }, { runAt, maxAttempts: 7 })).id);
    expect(a!.scheduled_at.getTime()).to.equal(runAt.getTime());
    expect(a!.max_attempts).to.equal(7);
    const b = await getJob(db, (await enqueueJob(db, 'test-record', { tag: 'now' })).id);
    expect(b!.max_attempts).to.equal(null);
  });

  it('refuses bad options with a message naming the field', async () => {
    const { db } = t.get();
    const fails = async (opts: object, field: string) => {
      const err = await enqueueJob(db, 'test-record', { tag: 'bad' }, opts as never).then(() => null, (e: Error) => e);
      expect(err?.message, JSON.stringify(opts)).to.match(new RegExp(`^${field} `));
    };
    await fails({ maxAttempts: 0 }, 'maxAttempts');
    await fails({ maxAttempts: 1.5 }, 'maxAttempts');
    await fails({ dedupeKey: '' }, 'dedupeKey');
    await fails({ runAt: new Date('nope') }, 'runAt');
    await fails({ subjectType: '' }, 'subjectType');
  });

  it('announces the row on commit only (NOTIFY from the trigger), also for rows inserted by plain SQL', async () => {
    const { db, url } = t.get();
    const listener = new pg.Client({ connectionString: url });
    await listener.connect();
    const heard: string[] = [];
    listener.on('notification', (m) => heard.push(m.payload ?? ''));
    await listener.query(`LISTEN ${CHANNEL}`);
    try {
      let id = 0;
      await db.transaction(async (trx) => {
        ({ id } = await enqueueJob(trx, 'test-record', { tag: 'notify' }));
        await new Promise((resolve) => setTimeout(resolve, 100));
        expect(heard, 'nothing before commit').to.deep.equal([]);
      });
      const { rows } = await db.raw(`INSERT INTO jobs (kind, payload, scheduled_at) VALUES ('test-record', '{}', now() + interval '1 hour') RETURNING id`);
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(heard[0]).to.equal(`${id}:0`);
      const [sqlId, delay] = heard[1]!.split(':').map(Number);
      expect(sqlId).to.equal(rows[0].id);
      expect(delay).to.be.within(3_599_000, 3_600_000);
    } finally {
      await listener.end();
    }
  });
});
