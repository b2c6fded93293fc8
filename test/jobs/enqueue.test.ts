import { expect } from 'chai';
import pg from 'pg';
import { useTestDb } from '../helpers/db.js';
import { enqueueJob } from '../../src/jobs/store/enqueue.js';
import { CHANNEL, getJob } from '../../src/jobs/store/runs.js';
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

  describe('announcing (NOTIFY herald_jobs)', () => {
    let listener: pg.Client;
    let heard: string[] = [];
    const settle = () => new Promise((resolve) => setTimeout(resolve, 150));
    before(async () => {
      listener = new pg.Client({ connectionString: t.get().url });
      await listener.connect();
      listener.on('notification', (m) => heard.push(m.payload ?? ''));
      await listener.query(`LISTEN ${CHANNEL}`);
    });
    after(async () => listener?.end());
    beforeEach(() => (heard = []));

    it('announces an enqueued row after the commit, never before, and not through the insert trigger', async () => {
      const { db } = t.get();
      let id = 0;
      await db.transaction(async (trx) => {
        ({ id } = await enqueueJob(trx, 'test-record', { tag: 'notify' }));
        await settle();
        expect(heard, 'nothing before commit').to.deep.equal([]);
      });
      await settle();
      expect(heard).to.deep.equal([`${id}:0:test-record`]);
      expect(await getJob(db, id)).to.include({ writer_announces: true });
    });

    it('announces nothing for a transaction that rolled back', async () => {
      const { db } = t.get();
      await db
        .transaction(async (trx) => {
          await enqueueJob(trx, 'test-record', { tag: 'gone' });
          throw new Error('rollback');
        })
        .catch(() => undefined);
      await settle();
      expect(heard).to.deep.equal([]);
    });

    it('waits for the outermost commit when enqueued inside a savepoint, and announces the delay of a later runAt', async () => {
      const { db } = t.get();
      let id = 0;
      await db.transaction(async (trx) => {
        await trx.transaction(async (sp) => {
          ({ id } = await enqueueJob(sp, 'test-record', { tag: 'nested' }, { runAt: new Date(Date.now() + 60_000) }));
        });
        await settle();
        expect(heard, 'savepoint released, transaction still open').to.deep.equal([]);
      });
      await settle();
      expect(heard).to.have.length(1);
      const [heardId, delay] = heard[0]!.split(':').map(Number);
      expect(heardId).to.equal(id);
      expect(delay).to.be.within(58_000, 60_000);
    });

    it('announces an autocommit enqueue, and a row inserted by plain SQL through the trigger', async () => {
      const { db } = t.get();
      const { id } = await enqueueJob(db, 'test-record', { tag: 'autocommit' });
      const { rows } = await db.raw(`INSERT INTO jobs (kind, payload) VALUES ('test-record', '{}') RETURNING id, writer_announces`);
      await settle();
      expect(heard.sort()).to.deep.equal([`${id}:0:test-record`, `${rows[0].id}:0:test-record`].sort());
      expect(rows[0].writer_announces).to.equal(false);
    });

    it('does not announce a dedupe hit (the existing row was announced when it was created)', async () => {
      const { db } = t.get();
      await enqueueJob(db, 'test-record', { tag: 'once' }, { dedupeKey: 'announce-once' });
      await settle();
      heard = [];
      expect((await enqueueJob(db, 'test-record', { tag: 'twice' }, { dedupeKey: 'announce-once' })).created).to.equal(false);
      await settle();
      expect(heard).to.deep.equal([]);
    });
  });
});
