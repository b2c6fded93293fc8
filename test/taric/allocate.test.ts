import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { useTestDb } from '../helpers/db.js';
import { EnvelopeIdSequence, envelopeYear, formatEnvelopeId, readNextIds } from '../../src/taric/envelope/allocate.js';
import { exportReadyWorkbaskets, type ExportOptions } from '../../src/taric/envelope/export.js';
import { TaricError } from '../../src/taric/errors.js';
import { insertEnvelope, listEnvelopes } from '../../src/taric/store.js';
import { countRows, footnoteTransaction, longFootnoteTransaction, readyWorkbasket, transactionIdsInFile } from './support/workbaskets.js';

describe('taric.allocate', () => {
  describe('envelope id format', () => {
    it('writes ids as YYxxxx from the UTC year of now', () => {
      expect(formatEnvelopeId(26, 1)).to.equal('260001');
      expect(formatEnvelopeId(5, 9999)).to.equal('059999');
      expect(envelopeYear(new Date('2026-12-31T23:59:59.999Z'))).to.equal(26);
      expect(envelopeYear(new Date('2027-01-01T00:00:00.000Z'))).to.equal(27);
      expect(envelopeYear(new Date('2100-06-01T00:00:00Z'))).to.equal(0);
    });

    it('hands out consecutive ids and refuses to pass YY9999', () => {
      const seq = new EnvelopeIdSequence(26, 9998);
      expect(seq.next()).to.equal('269998');
      expect(seq.next()).to.equal('269999');
      expect(() => seq.next())
        .to.throw(TaricError, 'no envelope id left for year 26: 269999 has been used')
        .with.property('code', 'envelope_ids_exhausted');
      expect(seq.lookup('269999')).to.deep.equal({ envelopeId: '269999', year: 26, counter: 9999 });
    });
  });

  describe('numbering in the database', () => {
    const t = useTestDb(import.meta.url);
    const db = () => t.get().db;
    let workDir: string;
    beforeEach(() => {
      workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'herald-allocate-'));
    });
    afterEach(async () => {
      fs.rmSync(workDir, { recursive: true, force: true });
      await db().raw(`UPDATE workbaskets SET status = 'SENT' WHERE status = 'READY_FOR_EXPORT'`);
    });
    const run = (now: string, extra: Partial<ExportOptions> = {}) =>
      exportReadyWorkbaskets(db(), { now: new Date(now), maxEnvelopeBytes: 40_000_000, firstTransactionId: 700, workDir, ...extra });

    it('starts at YY0001 and at EXPORTER_FIRST_TRANSACTION_ID when nothing was exported', async () => {
      expect(await readNextIds(db(), { now: new Date('2026-05-01T00:00:00Z'), firstTransactionId: 700 })).to.deep.equal({
        year: 26,
        nextCounter: 1,
        nextTaricTransactionId: 700,
      });
      await readyWorkbasket(db(), [footnoteTransaction(1), footnoteTransaction(2)]);
      const { envelopes } = await run('2026-05-01T00:00:00Z');
      expect(envelopes.map((e) => e.envelopeId)).to.deep.equal(['260001']);
      expect(transactionIdsInFile(fs.readFileSync(envelopes[0]!.file, 'utf8'))).to.deep.equal([700, 701]);
      // Later exports continue from the last stored id, whatever the setting says now.
      expect(await readNextIds(db(), { now: new Date('2026-05-01T00:00:00Z'), firstTransactionId: 1 })).to.deep.equal({
        year: 26,
        nextCounter: 2,
        nextTaricTransactionId: 702,
      });
    });

    it('restarts the envelope counter each year (injected now) while transaction ids run on', async () => {
      await readyWorkbasket(db(), [footnoteTransaction(3)]);
      const lateDecember = await run('2026-12-31T23:59:59Z');
      expect(lateDecember.envelopes.map((e) => e.envelopeId)).to.deep.equal(['260002']);
      await readyWorkbasket(db(), Array.from({ length: 4 }, (_, i) => longFootnoteTransaction(i, 3000)));
      const newYear = await run('2027-01-01T00:00:00Z', { maxEnvelopeBytes: 9000 });
      const n = newYear.envelopes.length;
      expect(n).to.be.at.least(2);
      expect(newYear.envelopes.map((e) => e.envelopeId)).to.deep.equal(Array.from({ length: n }, (_, i) => formatEnvelopeId(27, i + 1)));
      const ids = newYear.envelopes.flatMap((e) => transactionIdsInFile(fs.readFileSync(e.file, 'utf8')));
      expect(ids).to.deep.equal([703, 704, 705, 706]);
      const rows = await listEnvelopes(db());
      expect(rows.map((r) => [r.year, r.counter])).to.deep.equal([
        [26, 1],
        [26, 2],
        ...Array.from({ length: n }, (_, i) => [27, i + 1]),
      ]);
    });

    it('fails with a clear error past YY9999 and uses no id, even when the first envelopes still fit', async () => {
      await insertEnvelope(db(), { envelopeId: '289998', year: 28, counter: 9998, sizeBytes: 1, md5: 'x' });
      const w = await readyWorkbasket(db(), Array.from({ length: 6 }, (_, i) => longFootnoteTransaction(10 + i, 3000)));
      const before = await countRows(db());
      // Several envelopes needed: 289999 fits, the second would be 2810000.
      const err = await run('2028-06-01T00:00:00Z', { maxEnvelopeBytes: 9000 }).catch((x: unknown) => x);
      expect(err).to.be.instanceOf(TaricError).with.property('code', 'envelope_ids_exhausted');
      expect((err as Error).message).to.equal('no envelope id left for year 28: 289999 has been used (ids are YY0001-YY9999); nothing was exported');
      expect(await countRows(db())).to.deep.equal(before);
      expect(fs.readdirSync(workDir)).to.deep.equal([]);
      // A new year has ids again; the transaction ids the failed run would have used come next.
      const next = await run('2029-01-01T00:00:00Z', { maxEnvelopeBytes: 9000, workbasketIds: [w] });
      expect(next.envelopes[0]!.envelopeId).to.equal('290001');
      expect(next.envelopes[0]!.firstTaricTransactionId).to.equal(707);
    });

    it('gives the next successful run the ids a failed run would have had', async () => {
      const before = await readNextIds(db(), { now: new Date('2029-02-01T00:00:00Z'), firstTransactionId: 700 });
      const good = await readyWorkbasket(db(), [footnoteTransaction(20), footnoteTransaction(21)]);
      await readyWorkbasket(db(), [longFootnoteTransaction(22, 6000)]);
      const failed = await run('2029-02-01T00:00:00Z', { maxEnvelopeBytes: 5000 }).catch((x: unknown) => x);
      expect(failed).to.be.instanceOf(Error).with.property('name', 'OversizeTransactionError');
      expect(await readNextIds(db(), { now: new Date('2029-02-01T00:00:00Z'), firstTransactionId: 700 })).to.deep.equal(before);
      const ok = await run('2029-02-01T00:00:00Z', { maxEnvelopeBytes: 5000, workbasketIds: [good] });
      expect(ok.envelopes.map((e) => e.envelopeId)).to.deep.equal([formatEnvelopeId(29, before.nextCounter)]);
      expect(ok.envelopes[0]!.firstTaricTransactionId).to.equal(before.nextTaricTransactionId);
    });
  });
});
