import { expect } from 'chai';
import fc from 'fast-check';
import { buildEnvelopes, OversizeTransactionError, type BuiltEnvelope } from '../../src/taric/envelope/envelope-writer.js';
import type { SourceTransaction, TaricRecord } from '../../src/taric/model.js';
import { sampleRecord } from './support/sample-records.js';
import { ENVELOPE_FOOTER, envelopeHeader, renderTransaction } from '../../src/taric/envelope/serialize.js';
import { envelopeIds, md5, memorySinks, readEnvelope, type MemorySinks } from './support/envelopes.js';

// Splitting rules (src/taric/envelope/envelope-writer.ts): exact UTF-8 sizes, no
// transaction across envelopes, greedy filling, running size reset per
// envelope, oversize transactions fail the run. Checked against the bytes the
// sinks actually received.

function description(id: number, chars: number): TaricRecord {
  const text = [...'Ab&<é€𝄞 '.repeat(Math.ceil(chars / 8))].slice(0, chars).join('');
  return {
    type: 'footnote.description',
    updateType: 3,
    fields: { 'footnote.description.period.sid': String(id), 'language.id': 'EN', 'footnote.type.id': 'TN', 'footnote.id': '00001', description: text },
  };
}

function transaction(i: number, records: TaricRecord[], workbasketId = 1): SourceTransaction {
  return { transactionId: 1000 + i, workbasketId, records };
}

interface Run {
  envelopes: BuiltEnvelope[];
  sinks: MemorySinks;
  issued: string[];
}

interface RunOptions {
  validate?: boolean;
  segmentBytes?: number;
  first?: number;
}

async function run(transactions: SourceTransaction[], maxEnvelopeBytes: number, extra: RunOptions = {}): Promise<Run> {
  const sinks = memorySinks();
  const ids = envelopeIds();
  const envelopes = await buildEnvelopes({
    transactions,
    firstTaricTransactionId: extra.first ?? 500,
    nextEnvelopeId: ids.next,
    maxEnvelopeBytes,
    openSink: sinks.openSink,
    validate: extra.validate ?? false,
    ...(extra.segmentBytes ? { segmentBytes: extra.segmentBytes } : {}),
  });
  return { envelopes, sinks, issued: ids.issued };
}

/** Every rule of the splitter, checked on one run. */
function checkSplit(input: SourceTransaction[], max: number, first: number, { envelopes, sinks, issued }: Run): void {
  expect(issued).to.deep.equal(envelopes.map((e) => e.envelopeId));
  expect([...sinks.ended]).to.deep.equal(issued);
  const flat = envelopes.flatMap((e) => e.transactions);
  expect(flat.map((t) => t.transactionId)).to.deep.equal(input.map((t) => t.transactionId));
  expect(flat.map((t) => t.taricTransactionId)).to.deep.equal(input.map((_, i) => first + i));
  let next = 0;
  envelopes.forEach((e, k) => {
    const file = sinks.files.get(e.envelopeId)!;
    expect(e.transactions.length).to.be.greaterThan(0);
    expect(file.length, `envelope ${k} size`).to.equal(e.bytes);
    expect(e.bytes).to.be.at.most(max);
    expect(md5(file)).to.equal(e.md5);
    expect(e.transactions.map((t) => t.position)).to.deep.equal(e.transactions.map((_, i) => i + 1));
    // Running size restarts: header + this envelope's transactions + footer.
    const sum = e.transactions.reduce((n, t) => n + t.bytes, 0);
    expect(e.bytes).to.equal(Buffer.byteLength(envelopeHeader(e.envelopeId)) + sum + Buffer.byteLength(ENVELOPE_FOOTER));
    // Each transaction is measured as rendered where it landed.
    const text = file.toString('utf8');
    for (const t of e.transactions) {
      const start = text.indexOf(`<env:transaction id="${t.taricTransactionId}">`);
      const end = text.indexOf('</env:transaction>\n', start) + '</env:transaction>\n'.length;
      expect(Buffer.byteLength(text.slice(start, end)), `bytes of ${t.transactionId}`).to.equal(t.bytes);
    }
    // Sequence numbers and app.message ids restart at 1 in every envelope.
    const read = readEnvelope(file);
    const seqs = read.transactions.flatMap((t) => t.records.map((r) => [r.messageId, r.sequence]));
    expect(seqs).to.deep.equal(seqs.map((_, i) => [String(i + 1), String(i + 1)]));
    // Greedy: the next transaction would not have fitted in this envelope.
    next += e.transactions.length;
    if (k < envelopes.length - 1) {
      const records = read.transactions.reduce((n, t) => n + t.records.length, 0);
      const following = renderTransaction(input[next]!, first + next, records + 1);
      expect(e.bytes + following.bytes, `envelope ${k} was not filled`).to.be.greaterThan(max);
    }
  });
}

const recordArb = fc.oneof(
  fc.tuple(fc.integer({ min: 1, max: 1_000_000 }), fc.integer({ min: 0, max: 600 })).map(([id, n]) => description(id, n)),
  fc.integer({ min: 1, max: 1_000_000 }).map((seed) => sampleRecord('measure', seed)),
  fc.integer({ min: 1, max: 1_000_000 }).map((seed) => sampleRecord('footnote.type', seed)),
);
const transactionsArb = fc
  .array(fc.array(recordArb, { minLength: 1, maxLength: 4 }), { minLength: 1, maxLength: 40 })
  .map((list) => list.map((records, i) => transaction(i, records, 1 + (i % 3))));

describe('taric.split', () => {
  it('keeps every envelope within the limit, fills each as far as it allows, and numbers everything contiguously', async () => {
    await fc.assert(
      fc.asyncProperty(transactionsArb, fc.integer({ min: 4096, max: 14_000 }), fc.integer({ min: 1, max: 90_000_000 }), async (input, max, first) => {
        let result: Run;
        try {
          result = await run(input, max, { first });
        } catch (err) {
          // Only allowed when some transaction cannot fit in an envelope alone.
          expect(err).to.be.instanceOf(OversizeTransactionError);
          const e = err as OversizeTransactionError;
          const i = input.findIndex((t) => t.transactionId === e.transactionId);
          const alone = Buffer.byteLength(envelopeHeader('230001')) + renderTransaction(input[i]!, first + i, 1).bytes + Buffer.byteLength(ENVELOPE_FOOTER);
          expect(e.bytes).to.equal(alone);
          expect(alone).to.be.greaterThan(max);
          return;
        }
        checkSplit(input, max, first, result);
      }),
      { numRuns: 120 },
    );
  });

  it('splits the same way with validation on, and every envelope validates', async () => {
    await fc.assert(
      fc.asyncProperty(transactionsArb, async (input) => {
        const fits = input.filter((t) => renderTransaction(t, 1, 1).bytes < 5000);
        if (fits.length === 0) return;
        const result = await run(fits, 6000, { validate: true, segmentBytes: 1500 });
        checkSplit(fits, 6000, 500, result);
        for (const e of result.envelopes) expect([e.valid, e.issues]).to.deep.equal([true, []]);
      }),
      { numRuns: 15 },
    );
  });

  it('returns no envelope, and asks for no id or sink, when there are no transactions', async () => {
    const r = await run([], 4096);
    expect(r.envelopes).to.deep.equal([]);
    expect(r.issued).to.deep.equal([]);
    expect(r.sinks.files.size).to.equal(0);
  });

  it('writes two and more envelopes in one run', async () => {
    const input = Array.from({ length: 30 }, (_, i) => transaction(i, [description(i + 1, 300), sampleRecord('measure', i + 1)]));
    const r = await run(input, 4096);
    expect(r.envelopes.length).to.be.greaterThan(3);
    checkSplit(input, 4096, 500, r);
  });

  describe('exactly at the limit', () => {
    const input = [transaction(0, [description(1, 500)]), transaction(1, [description(2, 700)]), transaction(2, [description(3, 100)])];

    it('accepts an envelope of exactly maxEnvelopeBytes and splits at one byte less', async () => {
      const big = await run(input, 1_000_000);
      expect(big.envelopes).to.have.length(1);
      const size = big.envelopes[0]!.bytes;

      const exact = await run(input, size);
      expect(exact.envelopes.map((e) => e.transactions.length)).to.deep.equal([3]);
      expect(exact.sinks.files.get('230001')!.length).to.equal(size);

      const less = await run(input, size - 1);
      expect(less.envelopes.map((e) => e.transactions.length)).to.deep.equal([2, 1]);
      checkSplit(input, size - 1, 500, less);
    });

    it('accepts a single transaction exactly as big as the limit and refuses it at one byte less', async () => {
      const one = [transaction(0, [description(1, 6000)])];
      const size = (await run(one, 1_000_000)).envelopes[0]!.bytes;
      expect((await run(one, size)).envelopes[0]!.bytes).to.equal(size);
      let err: unknown;
      await run(one, size - 1).catch((e) => (err = e));
      expect(err).to.be.instanceOf(OversizeTransactionError);
      expect((err as OversizeTransactionError).bytes).to.equal(size);
    });
  });

  describe('an oversize transaction', () => {
    const small = (i: number) => transaction(i, [description(i + 1, 100)], 7);
    const huge = (i: number) => transaction(i, [description(i + 1, 3000), description(i + 2, 3000)], 9);

    for (const [where, build] of [
      ['first', () => [huge(0), small(1), small(2)]],
      ['in the middle', () => [small(0), small(1), huge(2), small(3)]],
      ['last', () => [small(0), small(1), huge(2)]],
    ] as const) {
      it(`fails the whole run when it comes ${where}, naming workbasket, transaction, size and limit`, async () => {
        const input = build();
        const sinks = memorySinks();
        let err: unknown;
        await buildEnvelopes({
          transactions: input,
          firstTaricTransactionId: 1,
          nextEnvelopeId: envelopeIds().next,
          maxEnvelopeBytes: 8000,
          openSink: sinks.openSink,
          validate: false,
        }).catch((e) => (err = e));
        expect(err).to.be.instanceOf(OversizeTransactionError);
        const e = err as OversizeTransactionError;
        const hugeTx = input.find((t) => t.workbasketId === 9)!;
        expect([e.workbasketId, e.transactionId, e.maxBytes]).to.deep.equal([9, hugeTx.transactionId, 8000]);
        expect(e.taricTransactionId).to.equal(1 + input.indexOf(hugeTx));
        expect(e.bytes).to.be.greaterThan(8000);
        expect(e.message).to.equal(
          `workbasket 9, transaction (row ${hugeTx.transactionId}), TARIC transaction id ${e.taricTransactionId}: needs ${e.bytes} bytes as an envelope of its own, ` +
            'more than the limit of 8000 bytes; split it into smaller transactions',
        );
      });
    }
  });
});
