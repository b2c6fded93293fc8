import crypto from 'node:crypto';
import type { Knex } from 'knex';
import type { SourceTransaction } from '../model.js';
import { buildEnvelopes, type EnvelopeSink } from './envelope-writer.js';
import { TaricError } from '../errors.js';
import { getEnvelope, readEnvelopeTransactions } from '../store.js';

// The upload retry after a crash must send the same bytes under the same key
// as the first attempt, so a stored envelope is rendered again from its
// envelope_transactions rather than kept as a file.

/**
 * Re-renders a stored envelope, byte for byte, into `sink` (the upload retry
 * after a crash sends the same bytes under the same key). The bytes are
 * checked against the stored size and md5 before `sink.end()` is called: on a
 * mismatch it throws TaricError('envelope_mismatch') and never ends the sink,
 * so a half-checked upload is never completed.
 */
export async function renderStoredEnvelope(db: Knex | Knex.Transaction, envelopeRowId: number, sink: EnvelopeSink): Promise<{ envelopeId: string; bytes: number; md5: string }> {
  const envelope = await getEnvelope(db, envelopeRowId);
  if (!envelope) throw new TaricError('envelope_not_found', `envelope row ${envelopeRowId} does not exist`);
  const mismatch = (what: string) =>
    new TaricError('envelope_mismatch', `envelope ${envelope.envelopeId} re-rendered differently from the stored one: ${what}`);

  // Peek at the first transaction to learn the first TARIC id; every later one
  // must follow it contiguously, as the export stored them.
  const stored = readEnvelopeTransactions(db, envelopeRowId);
  const first = await stored.next();
  if (first.done) throw mismatch('it has no transactions');
  const firstTaric = first.value.taricTransactionId;
  async function* transactions(): AsyncGenerator<SourceTransaction> {
    let expected = firstTaric;
    let item = first;
    while (!item.done) {
      if (item.value.taricTransactionId !== expected) throw mismatch(`TARIC transaction ids are not contiguous at ${expected}`);
      expected += 1;
      yield { transactionId: item.value.transactionId, workbasketId: item.value.workbasketId, records: item.value.records };
      item = await stored.next();
    }
  }

  const hash = crypto.createHash('md5');
  let bytes = 0;
  let opened = 0;
  const checking: EnvelopeSink = {
    write(chunk) {
      hash.update(chunk);
      bytes += chunk.length;
      return sink.write(chunk);
    },
    async end() {
      const md5 = hash.digest('hex');
      const problem =
        bytes !== envelope.sizeBytes ? `${bytes} bytes, stored ${envelope.sizeBytes}` : md5 !== envelope.md5 ? `md5 ${md5}, stored ${envelope.md5}` : null;
      if (problem) {
        const err = mismatch(problem);
        await sink.abort?.(err);
        throw err;
      }
      await sink.end();
    },
    abort: (reason) => sink.abort?.(reason),
  };
  await buildEnvelopes({
    transactions: transactions(),
    firstTaricTransactionId: firstTaric,
    nextEnvelopeId: () => {
      opened += 1;
      if (opened > 1) throw mismatch('it no longer fits one envelope');
      return envelope.envelopeId;
    },
    // The limit was checked when the envelope was made; the md5 check
    // catches any difference, so nothing here may split it again.
    maxEnvelopeBytes: Number.MAX_SAFE_INTEGER,
    openSink: () => checking,
    // Same bytes as the validated original (md5 checked), so no second validation.
    validate: false,
  });
  return { envelopeId: envelope.envelopeId, bytes, md5: envelope.md5 };
}
