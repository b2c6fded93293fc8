import type { Knex } from 'knex';
import { TaricError } from '../errors.js';
import { getLastEnvelopeCounter, getLastTaricTransactionId, lockEnvelopesTable } from '../store.js';

// Envelope ids (YYxxxx) and TARIC transaction ids are allocated inside the one
// database transaction that stores the envelopes using them, after
// `LOCK TABLE envelopes IN SHARE ROW EXCLUSIVE MODE`: exporters in any number
// of processes take turns, each reads the numbers its predecessor committed,
// and a run that fails (invalid envelope, oversize transaction, crash) rolls
// back without consuming a number. The unique constraints on envelopes and
// envelope_transactions are the backstop. (tamato read the last envelope id
// without a lock, so two exporters could pick the same one.)

/** Each year's envelopes are numbered YY0001..YY9999. */
export const MAX_ENVELOPE_COUNTER = 9999;

/** Two-digit year of `now` in UTC (the same as UK time at New Year: GMT). */
export function envelopeYear(now: Date): number {
  return now.getUTCFullYear() % 100;
}

export function formatEnvelopeId(year: number, counter: number): string {
  return `${String(year).padStart(2, '0')}${String(counter).padStart(4, '0')}`;
}

export interface NextIds {
  year: number;
  /** Counter the next envelope of `year` takes (1 in a year without envelopes). */
  nextCounter: number;
  /** TARIC transaction id the next exported transaction takes. */
  nextTaricTransactionId: number;
}

export interface NumberingOptions {
  now: Date;
  /** Used when no transaction has been exported yet (config EXPORTER_FIRST_TRANSACTION_ID). */
  firstTransactionId: number;
}

/**
 * The numbers the next export takes. Inside withEnvelopeNumbering they are
 * final; outside it (the dump preview) they are what an export started now
 * would take unless another one commits first.
 */
export async function readNextIds(db: Knex | Knex.Transaction, opts: NumberingOptions): Promise<NextIds> {
  const year = envelopeYear(opts.now);
  const lastCounter = await getLastEnvelopeCounter(db, year);
  const lastTaric = await getLastTaricTransactionId(db);
  return { year, nextCounter: lastCounter + 1, nextTaricTransactionId: lastTaric === null ? opts.firstTransactionId : lastTaric + 1 };
}

/** Hands out consecutive envelope ids of one year; past YY9999 it refuses. */
export class EnvelopeIdSequence {
  private counter: number;
  readonly issued: Array<{ envelopeId: string; year: number; counter: number }> = [];

  constructor(
    readonly year: number,
    firstCounter: number,
  ) {
    this.counter = firstCounter;
  }

  next(): string {
    if (this.counter > MAX_ENVELOPE_COUNTER) {
      const yy = String(this.year).padStart(2, '0');
      throw new TaricError(
        'envelope_ids_exhausted',
        `no envelope id left for year ${yy}: ${yy}${MAX_ENVELOPE_COUNTER} has been used (ids are YY0001-YY9999); nothing was exported`,
      );
    }
    const id = { envelopeId: formatEnvelopeId(this.year, this.counter), year: this.year, counter: this.counter };
    this.issued.push(id);
    this.counter += 1;
    return id.envelopeId;
  }

  /** Year and counter of an id this sequence issued. */
  lookup(envelopeId: string): { year: number; counter: number } {
    const found = this.issued.find((i) => i.envelopeId === envelopeId);
    if (!found) throw new Error(`envelope id ${envelopeId} was not issued by this sequence`);
    return found;
  }
}

/**
 * Runs `fn` in a new database transaction that holds the envelope numbering
 * lock and knows the next ids; whatever `fn` stores commits with them, and if
 * it throws nothing is stored and no number is used.
 */
export async function withEnvelopeNumbering<T>(
  db: Knex,
  opts: NumberingOptions,
  fn: (trx: Knex.Transaction, next: NextIds) => Promise<T>,
): Promise<T> {
  return db.transaction(async (trx) => {
    await lockEnvelopesTable(trx);
    return fn(trx, await readNextIds(trx, opts));
  });
}
