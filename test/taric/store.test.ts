import { expect } from 'chai';
import knexFactory from 'knex';
import { useTestDb } from '../helpers/db.js';
import { importJsonWorkbasket } from '../../src/taric/import/import-json.js';
import { PG_WORKBASKET_FROZEN } from '../../src/taric/errors.js';
import { pgCode, PG_UNIQUE_VIOLATION } from '../../src/db/errors.js';
import {
  getWorkbasket,
  insertEnvelope,
  insertEnvelopeTransactions,
  insertTransactions,
  insertWorkbasket,
  listWorkbaskets,
  readEnvelopeTransactions,
  readPendingTransactions,
  setWorkbasketStatusIf,
} from '../../src/taric/store.js';
import { footnoteTransaction, footnoteWorkbasket, toJsonWorkbasket } from './support/workbaskets.js';

async function codeOf(p: Promise<unknown>): Promise<string | undefined> {
  return p.then(
    () => 'no error',
    (err: unknown) => pgCode(err),
  );
}

describe('taric.store', () => {
  const t = useTestDb(import.meta.url);
  const db = () => t.get().db;

  it('moves a workbasket EDITING -> READY_FOR_EXPORT once (compare-and-set), null otherwise', async () => {
    const { workbasketId } = await importJsonWorkbasket(db(), footnoteWorkbasket(1));
    const before = await getWorkbasket(db(), workbasketId);
    const moved = await setWorkbasketStatusIf(db(), workbasketId, 'EDITING', 'READY_FOR_EXPORT');
    expect(moved).to.include({ id: workbasketId, status: 'READY_FOR_EXPORT' });
    expect(moved!.statusChangedAt.getTime()).to.be.at.least(before!.statusChangedAt.getTime());
    expect(await setWorkbasketStatusIf(db(), workbasketId, 'EDITING', 'READY_FOR_EXPORT')).to.equal(null);
    expect(await setWorkbasketStatusIf(db(), 999_999, 'EDITING', 'READY_FOR_EXPORT')).to.equal(null);
    expect((await getWorkbasket(db(), workbasketId))?.status).to.equal('READY_FOR_EXPORT');
  });

  it('lists workbaskets with their sizes, filtered by status', async () => {
    const a = await importJsonWorkbasket(db(), footnoteWorkbasket(3, 0, 'list a'));
    const b = await importJsonWorkbasket(db(), footnoteWorkbasket(2, 10, 'list b'));
    await setWorkbasketStatusIf(db(), b.workbasketId, 'EDITING', 'READY_FOR_EXPORT');
    const all = await listWorkbaskets(db());
    expect(all.find((w) => w.id === a.workbasketId)).to.include({ title: 'list a', status: 'EDITING', transactions: 3, records: 6, exportedTransactions: 0 });
    const ready = await listWorkbaskets(db(), { status: 'READY_FOR_EXPORT' });
    expect(ready.map((w) => w.id)).to.include(b.workbasketId).and.not.include(a.workbasketId);
    expect(ready.every((w) => w.status === 'READY_FOR_EXPORT')).to.equal(true);
  });

  it('refuses any change to transactions and records once a workbasket has left EDITING', async () => {
    const editing = await importJsonWorkbasket(db(), footnoteWorkbasket(2, 20));
    const frozen = await importJsonWorkbasket(db(), footnoteWorkbasket(2, 30));
    await setWorkbasketStatusIf(db(), frozen.workbasketId, 'EDITING', 'READY_FOR_EXPORT');
    const txOf = async (w: number) => (await db().raw(`SELECT id FROM transactions WHERE workbasket_id = ? ORDER BY position`, [w])).rows[0].id as number;
    const frozenTx = await txOf(frozen.workbasketId);
    const editingTx = await txOf(editing.workbasketId);

    const attempts = {
      insertRecord: db().raw(`INSERT INTO records (transaction_id, position, record_type, update_type, fields) VALUES (?, 99, 'footnote.type', 3, '{}')`, [frozenTx]),
      updateRecord: db().raw(`UPDATE records SET fields = '{}' WHERE transaction_id = ?`, [frozenTx]),
      deleteRecord: db().raw(`DELETE FROM records WHERE transaction_id = ?`, [frozenTx]),
      moveRecordIn: db().raw(`UPDATE records SET transaction_id = ?, position = 77 WHERE transaction_id = ? AND position = 1`, [frozenTx, editingTx]),
      insertTransaction: db().raw(`INSERT INTO transactions (workbasket_id, position) VALUES (?, 99)`, [frozen.workbasketId]),
      updateTransaction: db().raw(`UPDATE transactions SET position = 98 WHERE id = ?`, [frozenTx]),
      deleteTransaction: db().raw(`DELETE FROM transactions WHERE id = ?`, [frozenTx]),
      deleteWorkbasket: db().raw(`DELETE FROM workbaskets WHERE id = ?`, [frozen.workbasketId]),
    };
    for (const [name, attempt] of Object.entries(attempts)) expect(await codeOf(attempt), name).to.equal(PG_WORKBASKET_FROZEN);

    // The EDITING workbasket next to it is still editable, and deletable.
    expect(await codeOf(db().raw(`UPDATE records SET fields = fields WHERE transaction_id = ?`, [editingTx]))).to.equal('no error');
    expect(await codeOf(db().raw(`DELETE FROM workbaskets WHERE id = ?`, [editing.workbasketId]))).to.equal('no error');
    expect((await db().raw(`SELECT count(*)::int AS n FROM records r JOIN transactions t ON t.id = r.transaction_id WHERE t.workbasket_id = ?`, [frozen.workbasketId])).rows[0].n).to.equal(4);
  });

  it('lets a READY workbasket go back to EDITING until one of its transactions is in an envelope', async () => {
    const w = await importJsonWorkbasket(db(), footnoteWorkbasket(1, 40));
    await setWorkbasketStatusIf(db(), w.workbasketId, 'EDITING', 'READY_FOR_EXPORT');
    expect(await setWorkbasketStatusIf(db(), w.workbasketId, 'READY_FOR_EXPORT', 'EDITING')).to.include({ status: 'EDITING' });
    await setWorkbasketStatusIf(db(), w.workbasketId, 'EDITING', 'READY_FOR_EXPORT');
    const tx = (await db().raw(`SELECT id FROM transactions WHERE workbasket_id = ?`, [w.workbasketId])).rows[0].id;
    const env = await insertEnvelope(db(), { envelopeId: '990001', year: 99, counter: 1, sizeBytes: 1, md5: 'x' });
    await insertEnvelopeTransactions(db(), env.id, [{ transactionId: tx, workbasketId: w.workbasketId, taricTransactionId: 1, position: 1 }]);
    expect(await codeOf(setWorkbasketStatusIf(db(), w.workbasketId, 'READY_FOR_EXPORT', 'EDITING'))).to.equal(PG_WORKBASKET_FROZEN);
    expect((await getWorkbasket(db(), w.workbasketId))?.status).to.equal('READY_FOR_EXPORT');
    // The unique constraints back the numbers: a second use of TARIC id 1 fails.
    const other = await importJsonWorkbasket(db(), footnoteWorkbasket(1, 41));
    const otherTx = (await db().raw(`SELECT id FROM transactions WHERE workbasket_id = ?`, [other.workbasketId])).rows[0].id;
    expect(await codeOf(insertEnvelopeTransactions(db(), env.id, [{ transactionId: otherTx, workbasketId: other.workbasketId, taricTransactionId: 1, position: 2 }]))).to.equal(
      PG_UNIQUE_VIOLATION,
    );
    expect(await codeOf(insertEnvelope(db(), { envelopeId: '990001', year: 99, counter: 1, sizeBytes: 1, md5: 'x' }))).to.equal(PG_UNIQUE_VIOLATION);
  });

  it('makes a status change wait for a transaction still writing records, which then cannot slip past', async () => {
    const w = await importJsonWorkbasket(db(), footnoteWorkbasket(1, 50));
    const tx = (await db().raw(`SELECT id FROM transactions WHERE workbasket_id = ?`, [w.workbasketId])).rows[0].id;
    const other = knexFactory({ client: 'pg', connection: t.get().url, pool: { min: 0, max: 2 } });
    try {
      const writer = await db().transaction();
      await writer.raw(`INSERT INTO records (transaction_id, position, record_type, update_type, fields) VALUES (?, 3, 'footnote.type', 3, '{}')`, [tx]);
      const ready = setWorkbasketStatusIf(other, w.workbasketId, 'EDITING', 'READY_FOR_EXPORT');
      // The status update is blocked on the row lock the guard took.
      for (let i = 0; i < 100; i++) {
        const { rows } = await db().raw(
          `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE 'UPDATE workbaskets%'`,
        );
        if (rows[0].n === 1) break;
        await new Promise((r) => setTimeout(r, 20));
      }
      const { rows: waiting } = await db().raw(
        `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE 'UPDATE workbaskets%'`,
      );
      expect(waiting[0].n).to.equal(1);
      await writer.commit();
      expect(await ready).to.include({ status: 'READY_FOR_EXPORT' });
      expect(await codeOf(db().raw(`INSERT INTO records (transaction_id, position, record_type, update_type, fields) VALUES (?, 4, 'footnote.type', 3, '{}')`, [tx]))).to.equal(
        PG_WORKBASKET_FROZEN,
      );
    } finally {
      await other.destroy();
    }
  });

  it('streams unexported transactions in workbasket then position order, in batches', async () => {
    const a = await importJsonWorkbasket(db(), toJsonWorkbasket([footnoteTransaction(60), footnoteTransaction(61), footnoteTransaction(62)]));
    const b = await importJsonWorkbasket(db(), toJsonWorkbasket([footnoteTransaction(63), footnoteTransaction(64)]));
    const seen: Array<[number, string]> = [];
    for await (const tx of readPendingTransactions(db(), [b.workbasketId, a.workbasketId], 2)) {
      seen.push([tx.workbasketId, tx.records[0]!.fields['footnote.type.id']!]);
      expect(tx.records.map((r) => r.type)).to.deep.equal(['footnote.type', 'footnote.type.description']);
    }
    expect(seen).to.deep.equal([
      [a.workbasketId, footnoteTransaction(60)[0]!.fields['footnote.type.id']],
      [a.workbasketId, footnoteTransaction(61)[0]!.fields['footnote.type.id']],
      [a.workbasketId, footnoteTransaction(62)[0]!.fields['footnote.type.id']],
      [b.workbasketId, footnoteTransaction(63)[0]!.fields['footnote.type.id']],
      [b.workbasketId, footnoteTransaction(64)[0]!.fields['footnote.type.id']],
    ]);
    // A transaction already in an envelope is not pending any more.
    const firstOfA = (await db().raw(`SELECT id FROM transactions WHERE workbasket_id = ? AND position = 1`, [a.workbasketId])).rows[0].id;
    const env = await insertEnvelope(db(), { envelopeId: '980001', year: 98, counter: 1, sizeBytes: 1, md5: 'x' });
    await insertEnvelopeTransactions(db(), env.id, [{ transactionId: firstOfA, workbasketId: a.workbasketId, taricTransactionId: 500, position: 1 }]);
    const left: number[] = [];
    for await (const tx of readPendingTransactions(db(), [a.workbasketId], 1)) left.push(tx.transactionId);
    expect(left).to.have.length(2).and.not.include(firstOfA);
  });

  it('reads a transaction without records, and a last page that is exactly full', async () => {
    const a = await importJsonWorkbasket(db(), toJsonWorkbasket([footnoteTransaction(70), footnoteTransaction(71)]));
    const empty = await insertWorkbasket(db(), { title: 'no records', reason: 'test' });
    await insertTransactions(db(), empty.id, [1]);
    const seen: Array<[number, number]> = [];
    // Three transactions, pages of three then of one: the reader must stop
    // after the empty page that follows an exactly full one, and keep the
    // transaction whose records are none.
    for await (const tx of readPendingTransactions(db(), [a.workbasketId, empty.id], 3)) seen.push([tx.workbasketId, tx.records.length]);
    expect(seen).to.deep.equal([
      [a.workbasketId, 2],
      [a.workbasketId, 2],
      [empty.id, 0],
    ]);
    const paged: number[] = [];
    for await (const tx of readPendingTransactions(db(), [a.workbasketId, empty.id], 1)) paged.push(tx.records.length);
    expect(paged).to.deep.equal([2, 2, 0]);
  });

  it('stops reading when the consumer stops, and reports a page that fails where it is read', async () => {
    const a = await importJsonWorkbasket(db(), toJsonWorkbasket([footnoteTransaction(80), footnoteTransaction(81), footnoteTransaction(82)]));
    const env = await insertEnvelope(db(), { envelopeId: '980002', year: 98, counter: 2, sizeBytes: 1, md5: 'x' });
    const ids = (await db().raw(`SELECT id FROM transactions WHERE workbasket_id = ? ORDER BY position`, [a.workbasketId])).rows.map((r: { id: number }) => r.id);
    await insertEnvelopeTransactions(
      db(),
      env.id,
      ids.map((id: number, i: number) => ({ transactionId: id, workbasketId: a.workbasketId, taricTransactionId: 600 + i, position: i + 1 })),
    );
    // Early stop inside a transaction (a page is read ahead by then): the
    // transaction stays usable.
    await db().transaction(async (trx) => {
      for await (const tx of readEnvelopeTransactions(trx, env.id, 1)) {
        expect(tx.position).to.equal(1);
        break;
      }
      expect((await trx.raw('SELECT 1 AS one')).rows[0].one).to.equal(1);
    });
    // The second page's query fails (the transaction is aborted by then):
    // the error comes out of the loop, not as an unhandled rejection.
    const failure = await db()
      .transaction(async (trx) => {
        const positions: number[] = [];
        for await (const tx of readEnvelopeTransactions(trx, env.id, 1)) {
          positions.push(tx.position);
          if (tx.position === 1) await trx.raw('SELECT 1/0').catch(() => undefined);
        }
        return positions;
      })
      .then(
        () => null,
        (err: Error) => err.message,
      );
    expect(failure).to.match(/current transaction is aborted|division by zero/);
  });
});
