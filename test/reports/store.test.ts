import { expect } from 'chai';
import knexFactory, { type Knex } from 'knex';
import { useTestDb } from '../helpers/db.js';
import { pgCode, PG_CHECK_VIOLATION } from '../../src/db/errors.js';
import { hashParams } from '../../src/reports/params.js';
import {
  completeReport, expireOverdueReports, expireReport, failReport, getReport, insertRunningReport, MAX_MESSAGE_CHARS, truncateMessage,
  type ReportRow,
} from '../../src/reports/store.js';

// The state machine in SQL: every transition is a compare-and-set on
// RUNNING, terminal <=> finished_at, and a success racing the timeout ends
// the report exactly once, whichever update wins.

const NOW = new Date('2031-05-01T10:00:00.000Z');
const at = (ms: number) => new Date(NOW.getTime() + ms);
const FILE = { fileKey: 'reports/uploads/x.csv', fileName: 'uploads-x.csv', fileSize: 10, rowCount: 1 };

let seq = 0;
async function running(db: Knex, opts: { timeoutMs?: number; createdAt?: Date; creator?: string } = {}): Promise<ReportRow> {
  const row = await insertRunningReport(
    db,
    { creator: opts.creator ?? 'test', reportType: 'uploads', paramsHash: hashParams({ n: ++seq }), params: { n: seq }, timeoutMs: opts.timeoutMs ?? 60_000 },
    opts.createdAt ?? NOW,
  );
  return row!;
}

describe('reports.store', () => {
  const t = useTestDb(import.meta.url);

  it('inserts RUNNING with its deadline fixed at created_at + timeout', async () => {
    const r = await running(t.get().db, { timeoutMs: 90_000 });
    expect(r).to.include({ status: 'running', timeout_ms: 90_000, finished_at: null, file_key: null, error_message: null });
    expect(new Date(r.created_at).toISOString()).to.equal(NOW.toISOString());
    expect(new Date(r.deadline_at).toISOString()).to.equal(at(90_000).toISOString());
  });

  it('moves RUNNING to SUCCESS once; a later failure or timeout changes nothing', async () => {
    const { db } = t.get();
    const r = await running(db, { timeoutMs: 1000 });
    const done = await completeReport(db, r.id, FILE, at(500));
    expect(done).to.include({ status: 'success', file_key: FILE.fileKey, file_size: 10, row_count: 1 });
    expect(new Date(done!.finished_at!).toISOString()).to.equal(at(500).toISOString());
    expect(await failReport(db, r.id, 'boom', at(600))).to.equal(null);
    expect(await expireReport(db, r.id, at(5000))).to.equal(null);
    expect(await completeReport(db, r.id, { ...FILE, fileKey: 'other' })).to.equal(null);
    expect(await getReport(db, r.id)).to.deep.equal(done);
  });

  it('moves RUNNING to FAIL once with a truncated message; a late success changes nothing', async () => {
    const { db } = t.get();
    const r = await running(db);
    const failed = await failReport(db, r.id, `${'x'.repeat(5000)}\u0000`);
    expect(failed!.status).to.equal('fail');
    expect(Array.from(failed!.error_message!)).to.have.length(MAX_MESSAGE_CHARS);
    expect(failed!.error_message!.endsWith('…')).to.equal(true);
    expect(await completeReport(db, r.id, FILE)).to.equal(null);
    expect((await getReport(db, r.id))!.file_key).to.equal(null);
  });

  it('truncates on code points, never splitting a surrogate pair', () => {
    const long = '😀'.repeat(1500);
    const cut = truncateMessage(long);
    expect(Array.from(cut)).to.have.length(MAX_MESSAGE_CHARS);
    expect(Buffer.from(cut, 'utf8').toString('utf8'), 'no lone surrogate').to.equal(cut);
    expect(truncateMessage('  short  ')).to.equal('short');
    expect(truncateMessage('\u0000')).to.equal('failed (no message)');
  });

  it('times out only at or after the deadline, with the timeout in the message', async () => {
    const { db } = t.get();
    const r = await running(db, { timeoutMs: 90_000 });
    expect(await expireReport(db, r.id, at(89_999))).to.equal(null);
    const expired = await expireReport(db, r.id, at(90_000));
    expect(expired).to.include({ status: 'fail', error_message: 'timed out after 90 s' });
    const odd = await running(db, { timeoutMs: 1500 });
    expect((await expireReport(db, odd.id, at(2000)))!.error_message).to.equal('timed out after 1500 ms');
  });

  it('lets the database refuse a terminal row without finished_at, a SUCCESS without a file, a FAIL without a message', async () => {
    const { db } = t.get();
    const r = await running(db);
    for (const sql of [
      `UPDATE reports SET status = 'success', file_key = 'k', file_name = 'n', file_size = 1, row_count = 1 WHERE id = ?`,
      `UPDATE reports SET status = 'success', finished_at = now() WHERE id = ?`,
      `UPDATE reports SET status = 'fail', finished_at = now() WHERE id = ?`,
      `UPDATE reports SET finished_at = now() WHERE id = ?`,
      `UPDATE reports SET status = 'fail', finished_at = now(), error_message = repeat('x', 1001) WHERE id = ?`,
    ]) {
      const err = await db.raw(sql, [r.id]).then(() => null, (e: unknown) => e);
      expect(pgCode(err), sql).to.equal(PG_CHECK_VIOLATION);
    }
    expect((await getReport(db, r.id))!.status).to.equal('running');
  });

  it('expires every overdue RUNNING report in one sweep and leaves the rest exactly as they were', async () => {
    const { db } = t.get();
    await db.raw('TRUNCATE reports');
    const overdue = [await running(db, { timeoutMs: 1000 }), await running(db, { timeoutMs: 2000 })];
    const notYet = await running(db, { timeoutMs: 10_000 });
    const succeeded = await running(db, { timeoutMs: 1000 });
    await completeReport(db, succeeded.id, FILE, at(10));
    const failed = await running(db, { timeoutMs: 1000 });
    await failReport(db, failed.id, 'broke', at(10));
    const untouched = await Promise.all([notYet, succeeded, failed].map((r) => getReport(db, r.id)));
    const moved = await expireOverdueReports(db, at(2000));
    expect(moved.map((r) => r.id).sort()).to.deep.equal(overdue.map((r) => r.id).sort());
    expect(moved.map((r) => r.error_message).sort()).to.deep.equal(['timed out after 1 s', 'timed out after 2 s']);
    expect(await Promise.all([notYet, succeeded, failed].map((r) => getReport(db, r.id)))).to.deep.equal(untouched);
    expect(await expireOverdueReports(db, at(2000))).to.deep.equal([]);
  });

  describe('success racing the timeout', () => {
    let pools: Knex[] = [];
    before(() => {
      pools = [0, 1].map(() => knexFactory({ client: 'pg', connection: t.get().url, pool: { min: 1, max: 2 } }));
    });
    after(async () => Promise.all(pools.map((p) => p.destroy())));

    it('ends each of 100 reports exactly once: SUCCESS with its file or FAIL "timed out", whichever update won', async () => {
      const { db } = t.get();
      const tally = { success: 0, fail: 0 };
      for (let i = 0; i < 100; i++) {
        const r = await running(db, { timeoutMs: 1000 });
        // Alternate who starts first so neither side always has the head start.
        const calls = [
          () => completeReport(pools[0]!, r.id, { ...FILE, fileKey: `reports/uploads/${r.id}.csv` }),
          () => expireReport(pools[1]!, r.id, at(1000)),
        ];
        const [ok, expired] = i % 2 === 0 ? await Promise.all([calls[0]!(), calls[1]!()]) : (await Promise.all([calls[1]!(), calls[0]!()])).reverse();
        const winners = [ok, expired].filter((x) => x !== null);
        expect(winners, `round ${i}`).to.have.length(1);
        const final = (await getReport(db, r.id))!;
        expect(final).to.deep.equal(winners[0]);
        if (ok) {
          expect(final).to.include({ status: 'success', file_key: `reports/uploads/${r.id}.csv`, error_message: null });
          tally.success++;
        } else {
          expect(final).to.include({ status: 'fail', error_message: 'timed out after 1 s', file_key: null });
          tally.fail++;
        }
        expect(final.finished_at).to.not.equal(null);
      }
      expect(tally.success + tally.fail).to.equal(100);
      process.stderr.write(`      (success won ${tally.success}, timeout won ${tally.fail})\n`);
    });
  });
});
