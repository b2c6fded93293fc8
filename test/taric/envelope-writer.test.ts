import { expect } from 'chai';
import { buildEnvelopes, UnexportableRecordError, type BuildEnvelopesOptions, type EnvelopeSink } from '../../src/taric/envelope/envelope-writer.js';
import type { SourceTransaction } from '../../src/taric/model.js';
import { sampleRecord, sampleTransactions } from './support/sample-records.js';
import { envelopeIds, md5, memorySinks, readEnvelope } from './support/envelopes.js';

// The API the export (src/taric/envelope/export.ts) builds on: what reaches the
// sinks, the figures returned, progress, option checks, failure handling.

const workbasket = (count: number, seed = 1): SourceTransaction[] => [...sampleTransactions({ count, seed, workbasketId: 4, firstTransactionId: 100 })];

function options(transactions: BuildEnvelopesOptions['transactions'], overrides: Partial<BuildEnvelopesOptions> = {}) {
  const sinks = memorySinks();
  const ids = envelopeIds();
  const opts: BuildEnvelopesOptions = {
    transactions,
    firstTaricTransactionId: 1,
    nextEnvelopeId: ids.next,
    maxEnvelopeBytes: 40_000,
    openSink: sinks.openSink,
    ...overrides,
  };
  return { opts, sinks, ids };
}

describe('taric.envelope-writer', () => {
  it('returns, per envelope, the exact size and md5 of the bytes its sink received', async () => {
    const { opts, sinks } = options(workbasket(120));
    const envelopes = await buildEnvelopes(opts);
    expect(envelopes.length).to.be.greaterThan(1);
    for (const e of envelopes) {
      const file = sinks.files.get(e.envelopeId)!;
      expect([e.bytes, e.md5, e.valid, e.issues]).to.deep.equal([file.length, md5(file), true, []]);
      expect(e.records).to.equal(readEnvelope(file).transactions.reduce((n, t) => n + t.records.length, 0));
      expect(readEnvelope(file).id).to.equal(e.envelopeId);
    }
  });

  it('hands each envelope to onWritten once its sink has ended, in order, with the figures it returns', async () => {
    const seen: Array<{ envelopeId: string; bytes: number; md5: string; transactions: number; ended: boolean }> = [];
    const { opts, sinks } = options(workbasket(120, 5));
    opts.onWritten = (e) => seen.push({ envelopeId: e.envelopeId, bytes: e.bytes, md5: e.md5, transactions: e.transactions.length, ended: sinks.ended.has(e.envelopeId) });
    const envelopes = await buildEnvelopes(opts);
    expect(envelopes.length).to.be.greaterThan(1);
    expect(seen).to.deep.equal(envelopes.map((e) => ({ envelopeId: e.envelopeId, bytes: e.bytes, md5: e.md5, transactions: e.transactions.length, ended: true })));
  });

  it('writes the same bytes whatever the segment size, validated or not', async () => {
    const txs = workbasket(40, 2);
    const runs = [];
    for (const extra of [{}, { segmentBytes: 1 }, { segmentBytes: 777 }, { validate: false }]) {
      const { opts, sinks } = options(txs, extra);
      const envelopes = await buildEnvelopes(opts);
      runs.push({ md5: envelopes.map((e) => e.md5), files: [...sinks.files.values()].map((f) => f.toString('base64')) });
    }
    for (const r of runs.slice(1)) expect(r).to.deep.equal(runs[0]);
  });

  it('reads transactions from an async iterable, in order', async () => {
    const txs = workbasket(30, 3);
    async function* slowly() {
      for (const t of txs) {
        await new Promise((r) => setImmediate(r));
        yield t;
      }
    }
    const { opts } = options(slowly(), { firstTaricTransactionId: 9000 });
    const envelopes = await buildEnvelopes(opts);
    const flat = envelopes.flatMap((e) => e.transactions);
    expect(flat.map((t) => [t.transactionId, t.workbasketId, t.taricTransactionId])).to.deep.equal(txs.map((t, i) => [t.transactionId, 4, 9000 + i]));
  });

  it('awaits each write of a slow sink before the next and ends every sink once', async () => {
    const txs = workbasket(60, 4);
    const log: string[] = [];
    let busy = false;
    const { opts, ids } = options(txs, {
      segmentBytes: 2048,
      openSink: (id): EnvelopeSink => ({
        async write(chunk) {
          expect(busy, 'overlapping write').to.equal(false);
          busy = true;
          await new Promise((r) => setTimeout(r, 1));
          busy = false;
          log.push(`${id} write ${chunk.length}`);
        },
        async end() {
          log.push(`${id} end`);
        },
      }),
    });
    const envelopes = await buildEnvelopes(opts);
    expect(log.filter((l) => l.endsWith(' end'))).to.deep.equal(ids.issued.map((id) => `${id} end`));
    for (const e of envelopes) {
      const writes = log.filter((l) => l.startsWith(`${e.envelopeId} write`)).map((l) => Number(l.split(' ')[2]));
      expect(writes.reduce((a, b) => a + b, 0)).to.equal(e.bytes);
      expect(writes.length).to.be.greaterThan(1);
    }
  });

  it('reports progress in transactions and bytes, ending at the totals', async () => {
    const progress: Array<{ transactions: number; bytes: number }> = [];
    const { opts } = options(workbasket(80, 5), { segmentBytes: 4096, onProgress: (p) => progress.push(p) });
    const envelopes = await buildEnvelopes(opts);
    expect(progress.length).to.be.greaterThan(5);
    for (let i = 1; i < progress.length; i++) {
      expect(progress[i]!.bytes).to.be.greaterThan(progress[i - 1]!.bytes);
      expect(progress[i]!.transactions).to.be.at.least(progress[i - 1]!.transactions);
    }
    expect(progress.at(-1)).to.deep.equal({ transactions: 80, bytes: envelopes.reduce((n, e) => n + e.bytes, 0) });
  });

  it('refuses bad options with a message naming the option', async () => {
    const cases: Array<[Partial<BuildEnvelopesOptions>, string]> = [
      [{ maxEnvelopeBytes: 4095 }, 'maxEnvelopeBytes must be a whole number >= 4096, got 4095'],
      [{ maxEnvelopeBytes: 5000.5 }, 'maxEnvelopeBytes must be a whole number >= 4096, got 5000.5'],
      [{ firstTaricTransactionId: 0 }, 'firstTaricTransactionId must be a whole number from 1 to 99999999, got 0'],
      [{ segmentBytes: 0 }, 'segmentBytes must be a whole number >= 1, got 0'],
    ];
    for (const [bad, message] of cases) {
      let err: unknown;
      await buildEnvelopes(options(workbasket(1), bad).opts).catch((e) => (err = e));
      expect((err as Error).message).to.equal(message);
    }
  });

  it('stops before a TARIC transaction id would pass 99999999', async () => {
    let err: unknown;
    const { opts } = options(workbasket(3), { firstTaricTransactionId: 99_999_998, validate: false });
    await buildEnvelopes(opts).catch((e) => (err = e));
    expect((err as Error).message).to.equal('TARIC transaction id 100000000 for transaction 102 would exceed 99999999');
  });

  it('fails on a record it cannot export and aborts the open sink with that error', async () => {
    const txs = workbasket(10, 6);
    txs[7]!.records.push(sampleRecord('ceiling', 1));
    const { opts, sinks } = options(txs);
    let err: unknown;
    await buildEnvelopes(opts).catch((e) => (err = e));
    expect(err).to.be.instanceOf(UnexportableRecordError);
    expect((err as Error).message).to.contain('(ceiling): record type ceiling has no record code known to Herald');
    expect([...sinks.aborted.keys()]).to.deep.equal(['230001']);
    expect(sinks.aborted.get('230001')).to.equal(err);
    expect(sinks.ended.size).to.equal(0);
  });

  it('fails when a sink fails, with the sink error', async () => {
    const boom = new Error('disk full');
    const { opts } = options(workbasket(10, 7), {
      openSink: () => ({
        write() {
          throw boom;
        },
        async end() {},
      }),
    });
    let err: unknown;
    await buildEnvelopes(opts).catch((e) => (err = e));
    expect(err).to.equal(boom);
  });
});
