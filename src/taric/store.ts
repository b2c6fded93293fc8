import type { DbOrTrx } from '../db/index.js';
import type { Knex } from 'knex';
import type { SourceTransaction, TaricRecord, UpdateType } from './model.js';

// Every SQL statement on workbaskets, transactions, records, envelopes and
// envelope_transactions. Bulk writes pass one jsonb/array parameter per
// statement (jsonb_to_recordset, unnest): a batch of 1,000 rows is one round
// trip and one run of the guard triggers, and never nears the 65,535
// bind-parameter limit of the protocol.

export const WORKBASKET_STATUSES = ['EDITING', 'READY_FOR_EXPORT', 'SENT', 'PUBLISHED', 'ERRORED'] as const;
export type WorkbasketStatus = (typeof WORKBASKET_STATUSES)[number];

export interface Workbasket {
  id: number;
  title: string;
  reason: string;
  status: WorkbasketStatus;
  createdAt: Date;
  statusChangedAt: Date;
}

export interface WorkbasketSummary extends Workbasket {
  transactions: number;
  records: number;
  exportedTransactions: number;
}

interface WorkbasketRow {
  id: number;
  title: string;
  reason: string;
  status: WorkbasketStatus;
  created_at: Date;
  status_changed_at: Date;
}

function toWorkbasket(r: WorkbasketRow): Workbasket {
  return { id: r.id, title: r.title, reason: r.reason, status: r.status, createdAt: r.created_at, statusChangedAt: r.status_changed_at };
}

// ---- workbaskets -----------------------------------------------------------

export async function insertWorkbasket(db: DbOrTrx, w: { title: string; reason: string }): Promise<Workbasket> {
  const { rows } = await db.raw<{ rows: WorkbasketRow[] }>(
    `INSERT INTO workbaskets (title, reason) VALUES (?, ?) RETURNING *`,
    [w.title, w.reason],
  );
  return toWorkbasket(rows[0]!);
}

export async function getWorkbasket(db: DbOrTrx, id: number): Promise<Workbasket | null> {
  const { rows } = await db.raw<{ rows: WorkbasketRow[] }>(`SELECT * FROM workbaskets WHERE id = ?`, [id]);
  return rows[0] ? toWorkbasket(rows[0]) : null;
}

export async function listWorkbaskets(db: DbOrTrx, filter: { status?: WorkbasketStatus } = {}): Promise<WorkbasketSummary[]> {
  const { rows } = await db.raw<{ rows: Array<WorkbasketRow & { transactions: number; records: number; exported: number }> }>(
    `SELECT w.*,
            (SELECT count(*)::int FROM transactions t WHERE t.workbasket_id = w.id) AS transactions,
            (SELECT count(*)::int FROM records r JOIN transactions t ON t.id = r.transaction_id
              WHERE t.workbasket_id = w.id) AS records,
            (SELECT count(*)::int FROM envelope_transactions et WHERE et.workbasket_id = w.id) AS exported
       FROM workbaskets w
      WHERE (?::text IS NULL OR w.status = ?::text)
      ORDER BY w.id`,
    [filter.status ?? null, filter.status ?? null],
  );
  return rows.map((r) => ({
    ...toWorkbasket(r),
    transactions: Number(r.transactions),
    records: Number(r.records),
    exportedTransactions: Number(r.exported),
  }));
}

/** Compare-and-set status change: the updated row, or null when it was not in `from`. */
export async function setWorkbasketStatusIf(
  db: DbOrTrx,
  id: number,
  from: WorkbasketStatus,
  to: WorkbasketStatus,
): Promise<Workbasket | null> {
  const { rows } = await db.raw<{ rows: WorkbasketRow[] }>(
    `UPDATE workbaskets SET status = ?, status_changed_at = now()
      WHERE id = ? AND status = ?
      RETURNING *`,
    [to, id, from],
  );
  return rows[0] ? toWorkbasket(rows[0]) : null;
}

/**
 * The workbaskets an export or dump reads. `ids` null: every workbasket in
 * `statuses`. With `lock` they are locked FOR SHARE, so their status cannot
 * change until the export commits.
 */
export async function selectWorkbasketsForExport(
  db: DbOrTrx,
  filter: { ids: number[] | null; statuses: WorkbasketStatus[] | null; lock: boolean },
): Promise<Workbasket[]> {
  const { rows } = await db.raw<{ rows: WorkbasketRow[] }>(
    `SELECT * FROM workbaskets
      WHERE (?::int[] IS NULL OR id = ANY (?::int[]))
        AND (?::text[] IS NULL OR status = ANY (?::text[]))
      ORDER BY id
      ${filter.lock ? 'FOR SHARE' : ''}`,
    [filter.ids, filter.ids, filter.statuses, filter.statuses],
  );
  return rows.map(toWorkbasket);
}

// ---- transactions and records ----------------------------------------------

export async function insertTransactions(
  db: DbOrTrx,
  workbasketId: number,
  positions: number[],
): Promise<Array<{ id: number; position: number }>> {
  const { rows } = await db.raw<{ rows: Array<{ id: number; position: number }> }>(
    `INSERT INTO transactions (workbasket_id, position)
     SELECT ?, p FROM unnest(?::int[]) AS p
     RETURNING id, position`,
    [workbasketId, positions],
  );
  return rows;
}

export interface NewRecord {
  transactionId: number;
  position: number;
  record: TaricRecord;
}

export async function insertRecords(db: DbOrTrx, records: NewRecord[]): Promise<void> {
  if (records.length === 0) return;
  const payload = records.map((r) => ({
    transaction_id: r.transactionId,
    position: r.position,
    record_type: r.record.type,
    update_type: r.record.updateType,
    fields: r.record.fields,
  }));
  await db.raw(
    `INSERT INTO records (transaction_id, position, record_type, update_type, fields)
     SELECT transaction_id, position, record_type, update_type, fields
       FROM jsonb_to_recordset(?::jsonb)
         AS r(transaction_id integer, position integer, record_type text, update_type smallint, fields jsonb)`,
    [JSON.stringify(payload)],
  );
}

export async function countPendingTransactions(db: DbOrTrx, workbasketIds: number[]): Promise<number> {
  const { rows } = await db.raw<{ rows: Array<{ n: number }> }>(
    `SELECT count(*)::int AS n FROM transactions t
      WHERE t.workbasket_id = ANY (?::int[])
        AND NOT EXISTS (SELECT 1 FROM envelope_transactions et WHERE et.transaction_id = t.id)`,
    [workbasketIds],
  );
  return Number(rows[0]!.n);
}

/** A transaction's columns with one of its records (null columns: a transaction without records). */
interface TransactionRecordRow {
  transaction_id: number;
  workbasket_id: number;
  record_type: string | null;
  update_type: number | null;
  fields: Record<string, string> | null;
}

/** Rows ordered by transaction (then record position) -> one entry per transaction, in that order. */
function groupByTransaction<R extends TransactionRecordRow>(rows: R[]): Array<{ row: R; records: TaricRecord[] }> {
  const out: Array<{ row: R; records: TaricRecord[] }> = [];
  let current: { row: R; records: TaricRecord[] } | undefined;
  for (const r of rows) {
    if (current?.row.transaction_id !== r.transaction_id) out.push((current = { row: r, records: [] }));
    if (r.record_type !== null) current.records.push({ type: r.record_type, updateType: Number(r.update_type) as UpdateType, fields: r.fields! });
  }
  return out;
}

/**
 * Keyset pages with the next page read ahead: its query runs while the
 * caller works through this one (the export renders while Postgres reads
 * and sends the next page), so an export waits for the database about once
 * rather than once per page. Measured in scripts/bench/export.ts.
 */
async function* readAhead<T, K>(first: K, fetchPage: (after: K) => Promise<{ items: T[]; next: K | null }>): AsyncGenerator<T> {
  const fetch = (after: K) => {
    const p = fetchPage(after);
    p.catch(() => undefined); // a failure is thrown where the page is awaited, not as an unhandled rejection meanwhile
    return p;
  };
  let pending: Promise<{ items: T[]; next: K | null }> | null = fetch(first);
  try {
    while (pending) {
      const page: { items: T[]; next: K | null } = await pending;
      pending = page.next === null ? null : fetch(page.next);
      yield* page.items;
    }
  } finally {
    // The caller stopped early: the query in flight runs on the caller's
    // connection (often its transaction), so let it end before returning.
    await pending?.catch(() => undefined);
  }
}

/**
 * The workbaskets' transactions that are in no envelope yet, in export order
 * (workbasket id, then position), records by position. Reads `batchSize`
 * transactions with their records per query (keyset on the unique
 * (workbasket_id, position)), one page ahead, so memory holds two pages, not
 * a 40 MB export.
 */
export function readPendingTransactions(db: DbOrTrx, workbasketIds: number[], batchSize = 500): AsyncGenerator<SourceTransaction> {
  return readAhead<SourceTransaction, [number, number]>([0, 0], async (after) => {
    const { rows } = await db.raw<{ rows: Array<TransactionRecordRow & { position: number }> }>(
      `WITH page AS (
         SELECT t.id, t.workbasket_id, t.position FROM transactions t
          WHERE t.workbasket_id = ANY (?::int[])
            AND (t.workbasket_id, t.position) > (?, ?)
            AND NOT EXISTS (SELECT 1 FROM envelope_transactions et WHERE et.transaction_id = t.id)
          ORDER BY t.workbasket_id, t.position
          LIMIT ?)
       SELECT p.id AS transaction_id, p.workbasket_id, p.position, r.record_type, r.update_type, r.fields
         FROM page p LEFT JOIN records r ON r.transaction_id = p.id
        ORDER BY p.workbasket_id, p.position, r.position`,
      [workbasketIds, after[0], after[1], batchSize],
    );
    const page = groupByTransaction(rows);
    const last = page[page.length - 1]?.row;
    return {
      items: page.map(({ row, records }) => ({ transactionId: row.transaction_id, workbasketId: row.workbasket_id, workbasketPosition: row.position, records })),
      next: last && page.length === batchSize ? [last.workbasket_id, last.position] : null,
    };
  });
}

// ---- envelopes -------------------------------------------------------------

export interface Envelope {
  id: number;
  envelopeId: string;
  year: number;
  counter: number;
  sizeBytes: number;
  md5: string;
  createdAt: Date;
}

interface EnvelopeRow {
  id: number;
  envelope_id: string;
  year: number;
  counter: number;
  size_bytes: number;
  md5: string;
  created_at: Date;
}

function toEnvelope(r: EnvelopeRow): Envelope {
  return {
    id: r.id,
    envelopeId: r.envelope_id,
    year: Number(r.year),
    counter: Number(r.counter),
    sizeBytes: Number(r.size_bytes),
    md5: r.md5,
    createdAt: r.created_at,
  };
}

/**
 * Serializes every allocation of envelope and TARIC transaction ids. SHARE
 * ROW EXCLUSIVE conflicts with itself but not with plain reads, so a second
 * exporter waits here (before reading any number) instead of deadlocking
 * later, and readers of envelopes are never blocked.
 */
export async function lockEnvelopesTable(trx: Knex.Transaction): Promise<void> {
  await trx.raw(`LOCK TABLE envelopes IN SHARE ROW EXCLUSIVE MODE`);
}

/** Highest envelope counter used in a two-digit year (0 when none). */
export async function getLastEnvelopeCounter(db: DbOrTrx, year: number): Promise<number> {
  const { rows } = await db.raw<{ rows: Array<{ n: number | null }> }>(
    `SELECT max(counter) AS n FROM envelopes WHERE year = ?`,
    [year],
  );
  return Number(rows[0]?.n ?? 0);
}

/** Highest TARIC transaction id ever exported, or null before the first export. */
export async function getLastTaricTransactionId(db: DbOrTrx): Promise<number | null> {
  const { rows } = await db.raw<{ rows: Array<{ n: number | null }> }>(
    `SELECT max(taric_transaction_id) AS n FROM envelope_transactions`,
  );
  const n = rows[0]?.n;
  return n === null || n === undefined ? null : Number(n);
}

export async function insertEnvelope(
  db: DbOrTrx,
  e: { envelopeId: string; year: number; counter: number; sizeBytes: number; md5: string },
): Promise<Envelope> {
  const { rows } = await db.raw<{ rows: EnvelopeRow[] }>(
    `INSERT INTO envelopes (envelope_id, year, counter, size_bytes, md5) VALUES (?, ?, ?, ?, ?) RETURNING *`,
    [e.envelopeId, e.year, e.counter, e.sizeBytes, e.md5],
  );
  return toEnvelope(rows[0]!);
}

/** The size and md5 of an envelope inserted before its file was complete. */
export async function setEnvelopeContent(db: DbOrTrx, id: number, e: { sizeBytes: number; md5: string }): Promise<void> {
  await db.raw(`UPDATE envelopes SET size_bytes = ?, md5 = ? WHERE id = ?`, [e.sizeBytes, e.md5, id]);
}

export interface NewEnvelopeTransaction {
  transactionId: number;
  workbasketId: number;
  taricTransactionId: number;
  position: number;
}

export async function insertEnvelopeTransactions(
  db: DbOrTrx,
  envelopeRowId: number,
  rows: NewEnvelopeTransaction[],
  batchSize = 5000,
): Promise<void> {
  // One int[] per column (unnest): cheaper for Postgres to read than the
  // same rows as jsonb, and a 40 MB envelope's ~10,000 rows are two statements.
  for (let i = 0; i < rows.length; i += batchSize) {
    const batch = rows.slice(i, i + batchSize);
    await db.raw(
      `INSERT INTO envelope_transactions (envelope_id, transaction_id, workbasket_id, taric_transaction_id, position)
       SELECT ?, transaction_id, workbasket_id, taric_transaction_id, position
         FROM unnest(?::int[], ?::int[], ?::int[], ?::int[]) AS r(transaction_id, workbasket_id, taric_transaction_id, position)`,
      [
        envelopeRowId,
        batch.map((r) => r.transactionId),
        batch.map((r) => r.workbasketId),
        batch.map((r) => r.taricTransactionId),
        batch.map((r) => r.position),
      ],
    );
  }
}

export async function getEnvelope(db: DbOrTrx, id: number): Promise<Envelope | null> {
  const { rows } = await db.raw<{ rows: EnvelopeRow[] }>(`SELECT * FROM envelopes WHERE id = ?`, [id]);
  return rows[0] ? toEnvelope(rows[0]) : null;
}

export async function listEnvelopes(db: DbOrTrx): Promise<Envelope[]> {
  const { rows } = await db.raw<{ rows: EnvelopeRow[] }>(`SELECT * FROM envelopes ORDER BY id`);
  return rows.map(toEnvelope);
}

export interface StoredEnvelopeTransaction extends SourceTransaction {
  taricTransactionId: number;
  position: number;
}

/** An envelope's transactions by position, with their records, `batchSize` per query (one page read ahead). */
export function readEnvelopeTransactions(db: DbOrTrx, envelopeRowId: number, batchSize = 500): AsyncGenerator<StoredEnvelopeTransaction> {
  return readAhead<StoredEnvelopeTransaction, number>(0, async (after) => {
    const { rows } = await db.raw<{ rows: Array<TransactionRecordRow & { taric_transaction_id: number; position: number }> }>(
      `WITH page AS (
         SELECT transaction_id, workbasket_id, taric_transaction_id, position FROM envelope_transactions
          WHERE envelope_id = ? AND position > ?
          ORDER BY position
          LIMIT ?)
       SELECT p.transaction_id, p.workbasket_id, p.taric_transaction_id, p.position, r.record_type, r.update_type, r.fields
         FROM page p LEFT JOIN records r ON r.transaction_id = p.transaction_id
        ORDER BY p.position, r.position`,
      [envelopeRowId, after, batchSize],
    );
    const page = groupByTransaction(rows);
    const last = page[page.length - 1]?.row;
    return {
      items: page.map(({ row, records }) => ({
        transactionId: row.transaction_id,
        workbasketId: row.workbasket_id,
        taricTransactionId: row.taric_transaction_id,
        position: row.position,
        records,
      })),
      next: last && page.length === batchSize ? last.position : null,
    };
  });
}
