import crypto from 'node:crypto';
import type { Knex } from 'knex';
import { queryPrepared } from '../db/prepared.js';

// Every SQL statement on invoice_requests. Status moves are compare-and-set:
// each UPDATE names the status it expects and returns the row, or null when
// the row was not in that state (someone else moved it first).
//
//   pending ──claim──> processing ──complete──> completed
//      │                   │  ▲
//      │                   │  └─ claim again (a retry after a crash)
//      └──────fail─────────┴──────────────────> failed
// A request can also be claimed and completed inside another request's
// transaction (batch numbering); it is then never seen in processing.

type Db = Knex | Knex.Transaction;

export type RequestStatus = 'pending' | 'processing' | 'completed' | 'failed';

export interface InvoiceRequestRow {
  id: string;
  caller: string;
  idempotency_key: string | null;
  body_hash: string | null;
  payload: unknown;
  supplier_party_id: number;
  client_party_id: number;
  status: RequestStatus;
  invoice_id: number | null;
  error_message: string | null;
  created_at: Date;
  started_at: Date | null;
  completed_at: Date | null;
}

export interface NewInvoiceRequest {
  caller: string;
  idempotency_key: string | null;
  /** SHA-256 of the body when there is an Idempotency-Key (the replay check); null otherwise. */
  body_hash: string | null;
  payload: unknown;
  supplier_party_id: number;
  client_party_id: number;
}

const COLUMNS = [
  'id', 'caller', 'idempotency_key', 'body_hash', 'payload', 'supplier_party_id', 'client_party_id',
  'status', 'invoice_id', 'error_message', 'created_at', 'started_at', 'completed_at',
];

/** What an insert returns: only what the caller answers with (the payload is not read back). */
export type StoredRequest = Pick<InvoiceRequestRow, 'id' | 'created_at'>;

/**
 * Inserts requests in one statement; for each, its row, or null when
 * (caller, idempotency_key) already exists. ON CONFLICT (not
 * check-then-insert) so two concurrent calls with one key cannot both
 * insert: the second waits for the first and then does nothing (also within
 * one statement). Ids are chosen here so every row maps back to its caller.
 * The trigger tr_invoice_requests_enqueue (migration 0003) writes each
 * request's job row in this same statement. Prepared (src/db/prepared.ts):
 * this is the submit path's only statement.
 */
/** The submit statement: $1 is a jsonb array of requests with their ids (scripts/bench/submit.ts runs it through pgbench too). */
export const INSERT_INVOICE_REQUESTS_SQL = `INSERT INTO invoice_requests (id, caller, idempotency_key, body_hash, payload, supplier_party_id, client_party_id)
     SELECT v.id, v.caller, v.idempotency_key, v.body_hash, v.payload, v.supplier_party_id, v.client_party_id
       FROM jsonb_to_recordset($1::jsonb) AS v (id uuid, caller text, idempotency_key text, body_hash text,
                                                payload jsonb, supplier_party_id int, client_party_id int)
     ON CONFLICT ON CONSTRAINT ux_invoice_requests_idempotency DO NOTHING
     RETURNING id, created_at`;

export async function insertInvoiceRequests(db: Knex, reqs: readonly NewInvoiceRequest[]): Promise<(StoredRequest | null)[]> {
  const withIds = reqs.map((r) => ({ ...r, id: crypto.randomUUID() }));
  const rows = await queryPrepared<StoredRequest>(
    db,
    'herald_insert_invoice_requests',
    INSERT_INVOICE_REQUESTS_SQL,
    [JSON.stringify(withIds)],
  );
  const byId = new Map(rows.map((r) => [r.id, r]));
  return withIds.map((r) => byId.get(r.id) ?? null);
}

export async function findInvoiceRequestByKey(db: Db, caller: string, idempotencyKey: string): Promise<InvoiceRequestRow | null> {
  const row = await db('invoice_requests').select(COLUMNS).where({ caller, idempotency_key: idempotencyKey }).first();
  return (row as InvoiceRequestRow | undefined) ?? null;
}

export async function getInvoiceRequest(db: Db, id: string): Promise<InvoiceRequestRow | null> {
  const row = await db('invoice_requests').select(COLUMNS).where({ id }).first();
  return (row as InvoiceRequestRow | undefined) ?? null;
}

export interface InvoiceRequestView extends InvoiceRequestRow {
  invoice_number: string | null;
}

export async function getInvoiceRequestView(db: Db, id: string): Promise<InvoiceRequestView | null> {
  const { rows } = await db.raw(
    `SELECT r.*, i.invoice_number
       FROM invoice_requests r LEFT JOIN invoices i ON i.id = r.invoice_id
      WHERE r.id = ?`,
    [id],
  );
  return (rows[0] as InvoiceRequestView | undefined) ?? null;
}

/**
 * pending -> processing. A request already in processing is taken again: the
 * job mechanism lets one worker at a time hold the job, so a processing row
 * here is one whose previous worker died mid-run.
 */
export async function claimInvoiceRequest(db: Db, id: string): Promise<InvoiceRequestRow | null> {
  const { rows } = await db.raw(
    `UPDATE invoice_requests SET status = 'processing', started_at = coalesce(started_at, now())
      WHERE id = ? AND status IN ('pending', 'processing')
      RETURNING *`,
    [id],
  );
  return (rows[0] as InvoiceRequestRow | undefined) ?? null;
}

/**
 * pending -> processing for up to `limit` other requests of one supplier,
 * inside the caller's transaction (batch numbering, see generate.ts). Newest
 * first: jobs run roughly in arrival order, so the oldest pending requests
 * are the ones whose own jobs are about to run anyway; taking the newest
 * gets work done that would otherwise wait for the back of the queue. SKIP
 * LOCKED: rows another worker is claiming are left to it. Returned oldest
 * first (UPDATE ... RETURNING has no order), the order they are numbered in.
 */
export async function claimPendingInvoiceRequests(
  trx: Knex.Transaction,
  supplierId: number,
  excludeId: string,
  limit: number,
): Promise<InvoiceRequestRow[]> {
  const { rows } = await trx.raw(
    // MATERIALIZED: picked once. As `id IN (SELECT ... LIMIT ? FOR UPDATE SKIP LOCKED)`
    // Postgres may run a semi join that re-runs the subquery per row and moves
    // far more than `limit` rows (migrations/0016_jobs_claim_plan.ts).
    `WITH picked AS MATERIALIZED (
       SELECT id FROM invoice_requests
        WHERE supplier_party_id = ? AND status = 'pending' AND id <> ?
        ORDER BY created_at DESC, id DESC
        LIMIT ? FOR UPDATE SKIP LOCKED),
     claimed AS (
       UPDATE invoice_requests r SET status = 'processing', started_at = now()
         FROM picked
        WHERE r.id = picked.id AND r.status = 'pending'
        RETURNING r.*)
     SELECT * FROM claimed ORDER BY created_at, id`,
    [supplierId, excludeId, limit],
  );
  return rows as InvoiceRequestRow[];
}

/** processing -> completed for many requests at once; returns how many moved. */
export async function completeInvoiceRequests(db: Db, done: readonly { id: string; invoice_id: number }[]): Promise<number> {
  if (done.length === 0) return 0;
  const { rows } = await db.raw(
    `UPDATE invoice_requests r SET status = 'completed', invoice_id = v.invoice_id, completed_at = now()
       FROM jsonb_to_recordset(?::jsonb) AS v (id uuid, invoice_id int)
      WHERE r.id = v.id AND r.status = 'processing'
      RETURNING r.id`,
    [JSON.stringify(done)],
  );
  return rows.length;
}

export async function completeInvoiceRequest(db: Db, id: string, invoiceId: number): Promise<InvoiceRequestRow | null> {
  const { rows } = await db.raw(
    `UPDATE invoice_requests SET status = 'completed', invoice_id = ?, completed_at = now()
      WHERE id = ? AND status = 'processing'
      RETURNING *`,
    [invoiceId, id],
  );
  return (rows[0] as InvoiceRequestRow | undefined) ?? null;
}

export async function failInvoiceRequest(db: Db, id: string, message: string): Promise<InvoiceRequestRow | null> {
  const { rows } = await db.raw(
    `UPDATE invoice_requests SET status = 'failed', error_message = ?, completed_at = now()
      WHERE id = ? AND status IN ('pending', 'processing')
      RETURNING *`,
    [message, id],
  );
  return (rows[0] as InvoiceRequestRow | undefined) ?? null;
}

export async function countInvoiceRequestsByStatus(db: Db): Promise<Record<RequestStatus, number>> {
  const { rows } = await db.raw(`SELECT status, count(*)::int AS n FROM invoice_requests GROUP BY status`);
  const out: Record<RequestStatus, number> = { pending: 0, processing: 0, completed: 0, failed: 0 };
  for (const r of rows as { status: RequestStatus; n: number }[]) out[r.status] = Number(r.n);
  return out;
}
