import type { Knex } from 'knex';
import type { PhaseTimes } from '../../lib/phase-times.js';
import { insertEnvelope, insertEnvelopeTransactions, setEnvelopeContent, type NewEnvelopeTransaction } from '../store.js';
import type { EnvelopeIdSequence } from './allocate.js';
import type { BuiltTransaction, WrittenEnvelope } from './envelope-writer.js';

// The envelopes and envelope_transactions rows of an export, inserted while
// the envelopes are still being written and validated (the writer's onPlaced
// and onWritten), in the export's transaction, which commits only once every
// envelope has passed validation. On a 40 MB envelope the inserts are ~350 ms
// of foreign-key and index work in Postgres; done after validation they were
// on the critical path, done meanwhile they use the core that the renderer,
// paced by the validation thread, leaves mostly idle.
//
// An envelope's row is inserted at its first transaction (the rows after it
// reference it), with size 0 and no md5 until its file is complete. One
// statement at a time, in order, on the transaction's connection (which the
// export's page reads share: a batch is a few tens of ms, and the reads are
// one page ahead).

/** Rows per envelope_transactions insert while an envelope is being written. */
const BATCH_ROWS = 1000;

export interface StoredEnvelope extends WrittenEnvelope {
  /** envelopes.id */
  id: number;
}

export class EnvelopeRows {
  private chain: Promise<void> = Promise.resolve();
  private failure: { error: unknown } | null = null;
  private current: { envelopeId: string; rowId: Promise<number>; batch: NewEnvelopeTransaction[] } | null = null;
  private readonly stored: Array<Promise<StoredEnvelope>> = [];

  constructor(
    private readonly trx: Knex.Transaction,
    private readonly sequence: EnvelopeIdSequence,
    private readonly times?: PhaseTimes | undefined,
  ) {}

  placed(envelopeId: string, t: BuiltTransaction): void {
    if (this.current?.envelopeId !== envelopeId) this.open(envelopeId);
    const current = this.current!;
    current.batch.push({ transactionId: t.transactionId, workbasketId: t.workbasketId, taricTransactionId: t.taricTransactionId, position: t.position });
    if (current.batch.length >= BATCH_ROWS) this.flush();
  }

  written(e: WrittenEnvelope): void {
    if (this.current?.envelopeId !== e.envelopeId) throw new Error(`envelope ${e.envelopeId} written without its transactions`);
    this.flush();
    const rowId = this.current.rowId;
    this.current = null;
    const done = this.enqueue(async () => setEnvelopeContent(this.trx, await rowId, { sizeBytes: e.bytes, md5: e.md5 }));
    this.stored.push(done.then(async () => ({ ...e, id: await rowId })));
  }

  /** Every statement finished (also after a failure: the transaction may end only then); throws the first failure. */
  async settled(): Promise<void> {
    await this.chain;
    if (this.failure) throw this.failure.error;
  }

  /** The stored envelopes, in order, once every statement has succeeded. */
  async envelopes(): Promise<StoredEnvelope[]> {
    await this.settled();
    return Promise.all(this.stored);
  }

  private open(envelopeId: string): void {
    if (this.current) throw new Error(`envelope ${envelopeId} opened before ${this.current.envelopeId} was written`);
    const { year, counter } = this.sequence.lookup(envelopeId);
    let resolveId!: (id: number) => void;
    const rowId = new Promise<number>((resolve) => (resolveId = resolve));
    this.current = { envelopeId, rowId, batch: [] };
    void this.enqueue(async () => {
      const row = await insertEnvelope(this.trx, { envelopeId, year, counter, sizeBytes: 0, md5: '' });
      resolveId(row.id);
    });
  }

  private flush(): void {
    const current = this.current!;
    if (current.batch.length === 0) return;
    const rows = current.batch;
    current.batch = [];
    void this.enqueue(async () => insertEnvelopeTransactions(this.trx, await current.rowId, rows));
  }

  // After a failure the transaction is aborted: later statements are skipped,
  // and a row id that never came is never awaited (settled() throws first).
  private enqueue(statement: () => Promise<void>): Promise<void> {
    const run = this.chain.then(async () => {
      if (this.failure) return;
      const t0 = performance.now();
      try {
        await statement();
      } catch (error) {
        this.failure = { error };
      } finally {
        this.times?.add('store', performance.now() - t0);
      }
    });
    this.chain = run;
    return run;
  }
}
