import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { useTestDb } from '../helpers/db.js';
import { importJsonText, importJsonWorkbasket } from '../../src/taric/import/import-json.js';
import { ImportError } from '../../src/taric/errors.js';
import { getWorkbasket } from '../../src/taric/store.js';
import { countRows, footnoteTransaction, footnoteWorkbasket, storedRecords, toJsonWorkbasket, type JsonWorkbasket } from './support/workbaskets.js';

const FIXTURES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../fixtures/workbaskets');

describe('taric.importJson', () => {
  const t = useTestDb(import.meta.url);
  const db = () => t.get().db;

  /** Runs an import that must fail; returns its error after checking nothing was stored. */
  async function rejected(input: unknown, opts: { title?: string } = {}): Promise<ImportError> {
    const before = await countRows(db());
    const err = await importJsonWorkbasket(db(), input, opts).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err, 'import should have failed').to.be.instanceOf(ImportError);
    expect(await countRows(db())).to.deep.equal(before);
    return err as ImportError;
  }

  it('imports every sample workbasket in fixtures/ with its records in order', async () => {
    const files = fs.readdirSync(FIXTURES).filter((f) => f.endsWith('.json'));
    expect(files.length).to.be.at.least(5);
    for (const file of files) {
      const doc = JSON.parse(fs.readFileSync(path.join(FIXTURES, file), 'utf8')) as JsonWorkbasket;
      const result = await importJsonText(db(), fs.readFileSync(path.join(FIXTURES, file), 'utf8'));
      const recordCount = doc.transactions.reduce((n, tx) => n + tx.records.length, 0);
      expect(result, file).to.include({ transactions: doc.transactions.length, records: recordCount });
      const wb = await getWorkbasket(db(), result.workbasketId);
      expect(wb).to.include({ title: doc.title, reason: doc.reason, status: 'EDITING' });
      const stored = await storedRecords(db(), result.workbasketId);
      expect(stored).to.deep.equal(
        doc.transactions.map((tx) => tx.records.map((r) => ({ type: r.type, updateType: r.update_type, fields: r.fields }))),
      );
    }
  });

  it('keeps a transaction whole across insert batches and numbers positions from 1', async () => {
    // 1,500 records in the first transaction span two batches of 1,000.
    const big = Array.from({ length: 750 }, (_, i) => footnoteTransaction(i)).flat();
    const doc = toJsonWorkbasket([big, footnoteTransaction(900), footnoteTransaction(901).slice(0, 1)]);
    const result = await importJsonWorkbasket(db(), doc);
    expect(result).to.include({ transactions: 3, records: 1503 });
    const { rows } = await db().raw(
      `SELECT t.position, count(*)::int AS n, min(r.position) AS lo, max(r.position) AS hi
         FROM transactions t JOIN records r ON r.transaction_id = t.id
        WHERE t.workbasket_id = ? GROUP BY t.position ORDER BY t.position`,
      [result.workbasketId],
    );
    expect(rows).to.deep.equal([
      { position: 1, n: 1500, lo: 1, hi: 1500 },
      { position: 2, n: 2, lo: 1, hi: 2 },
      { position: 3, n: 1, lo: 1, hi: 1 },
    ]);
    expect(await storedRecords(db(), result.workbasketId)).to.deep.equal([big, footnoteTransaction(900), footnoteTransaction(901).slice(0, 1)]);
  });

  it('lets --title override the title and accepts whole numbers as field values', async () => {
    const doc = toJsonWorkbasket([
      [{ type: 'footnote.description.period', updateType: 3, fields: { 'footnote.type.id': 'TN', 'footnote.id': '001', 'validity.start.date': '2026-01-01' } }],
    ]);
    (doc.transactions[0]!.records[0]!.fields as Record<string, unknown>)['footnote.description.period.sid'] = 42;
    const result = await importJsonWorkbasket(db(), doc, { title: 'From the command line' });
    expect((await getWorkbasket(db(), result.workbasketId))?.title).to.equal('From the command line');
    expect((await storedRecords(db(), result.workbasketId))[0]![0]!.fields['footnote.description.period.sid']).to.equal('42');
  });

  it('rejects an unknown record type with its position', async () => {
    const doc = footnoteWorkbasket(3);
    doc.transactions[2]!.records[1]!.type = 'footnote.colour';
    const err = await rejected(doc);
    expect(err.message).to.contain('transaction 3, record 2 (footnote.colour): unknown record type "footnote.colour"');
  });

  it('rejects an unknown field, naming it', async () => {
    const doc = footnoteWorkbasket(2);
    doc.transactions[1]!.records[0]!.fields['footnote.type.colour'] = 'red';
    const err = await rejected(doc);
    expect(err.message).to.contain('transaction 2, record 1 (footnote.type): field footnote.type.colour: is not a field of footnote.type');
  });

  it('rejects a missing required field, naming it', async () => {
    const doc = footnoteWorkbasket(2);
    delete doc.transactions[0]!.records[0]!.fields['validity.start.date'];
    const err = await rejected(doc);
    expect(err.message).to.contain('transaction 1, record 1 (footnote.type): field validity.start.date: is required');
  });

  it('rejects a malformed value with the rule it breaks', async () => {
    const doc = footnoteWorkbasket(3);
    doc.transactions[2]!.records[1]!.fields['footnote.type.id'] = 'tn';
    doc.transactions[1]!.records[0]!.fields['validity.start.date'] = '2026-02-30';
    const err = await rejected(doc);
    expect(err.message).to.contain('transaction 3, record 2 (footnote.type.description): field footnote.type.id: must match [A-Z]{2}|[A-Z]{3}');
    expect(err.message).to.contain('transaction 2, record 1 (footnote.type): field validity.start.date: day 30 does not exist');
    expect(err.problems).to.have.length(2);
  });

  it('refuses record types without a known record code (ceiling, quota.extended.information)', async () => {
    const doc = footnoteWorkbasket(1);
    doc.transactions.push({
      records: [
        { type: 'ceiling', update_type: 3, fields: { 'surveillance.number': '123456', 'validity.start.date': '2026-01-01', 'ceiling.reached.date': '2026-02-01' } },
      ],
    });
    doc.transactions.push({ records: [{ type: 'quota.extended.information', update_type: 3, fields: {} }] });
    const err = await rejected(doc);
    expect(err.message).to.match(/transaction 2, record 1 \(ceiling\): record type ceiling has no known TARIC record code/);
    expect(err.message).to.match(/transaction 3, record 1 \(quota.extended.information\): record type quota.extended.information has no known TARIC record code/);
  });

  it('rejects a bad update_type and badly shaped records, each with its position', async () => {
    const doc = footnoteWorkbasket(2) as unknown as { transactions: Array<{ records: unknown[] }> };
    (doc.transactions[0]!.records[0] as { update_type: unknown }).update_type = 4;
    doc.transactions[0]!.records[1] = { type: 'footnote.type', update_type: 3, fields: { 'footnote.type.id': 1.5 } };
    doc.transactions[1]!.records[0] = { type: 'footnote.type', update_type: 3, fields: {}, colour: 'red' };
    const err = await rejected(doc);
    expect(err.message).to.contain('transaction 1, record 1 (footnote.type): update_type: must be 1 (update), 2 (delete) or 3 (insert)');
    expect(err.message).to.contain('transaction 1, record 2 (footnote.type): field footnote.type.id: must be a string (or a whole number)');
    expect(err.message).to.match(/transaction 2, record 1 \(footnote.type\): .*colour/);
  });

  it('rejects a workbasket without transactions, an empty transaction, unknown keys and a missing title', async () => {
    expect((await rejected({ title: 'x', transactions: [] })).message).to.contain('transactions: a workbasket needs at least one transaction');
    expect((await rejected({ title: 'x', transactions: [{ records: [] }] })).message).to.contain(
      'transaction 1: records: a transaction needs at least one record',
    );
    expect((await rejected({ ...footnoteWorkbasket(1), owner: 'me' })).message).to.match(/owner/);
    const untitled = footnoteWorkbasket(1);
    delete untitled.title;
    expect((await rejected(untitled)).message).to.contain('field title: required');
  });

  it('rejects text that is not JSON, storing nothing', async () => {
    const before = await countRows(db());
    const err = await importJsonText(db(), '{"title": "x", "transactions": [').catch((e: unknown) => e);
    expect(err).to.be.instanceOf(ImportError);
    expect((err as Error).message).to.contain('not valid JSON');
    expect(await countRows(db())).to.deep.equal(before);
  });

  it('reports every problem in one run, up to a cap of 100', async () => {
    const doc = footnoteWorkbasket(150);
    for (const tx of doc.transactions) tx.records[0]!.fields['application.code'] = 'X';
    const err = await rejected(doc);
    expect(err.problems).to.have.length(100);
    expect(err.omitted).to.equal(50);
    expect(err.message).to.contain('150 problems');
    expect(err.message).to.contain('transaction 100, record 1 (footnote.type): field application.code: must be one of');
    expect(err.message).to.contain('... and 50 more');
  });
});
