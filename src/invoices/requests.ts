import crypto from 'node:crypto';
import type { Knex } from 'knex';
import { PG_FOREIGN_KEY_VIOLATION, pgCode } from '../db/errors.js';
import { crashPoint } from '../lib/crash-point.js';
import { InvoiceInputError } from './errors.js';
import { createBatcher } from '../lib/batcher.js';
import { findInvoiceRequestByKey, insertInvoiceRequests, type NewInvoiceRequest, type StoredRequest } from './request-store.js';
import type { GenerateInvoiceRequest } from './schemas.js';

// The async invoice queue's front door: one INSERT stores the request, and
// the trigger tr_invoice_requests_enqueue (migration 0003) writes its job row
// in the same statement (an outbox), so a request is never stored without
// the work that will process it, nor the work without the request.
//
// Concurrent submissions share statements (group commit, src/lib/batcher):
// while one INSERT is in flight the next requests queue and go out together
// as one multi-row INSERT, so a busy server pays one round trip, one commit
// and one NOTIFY per batch rather than per request. An idle server sends
// each request at once. Every caller still gets its answer only after the
// commit that stored its row.

/** The job kind; tr_invoice_requests_enqueue (migration 0003) writes the same string. */
export const INVOICE_REQUEST_JOB = 'invoice-request';

export class IdempotencyKeyReused extends Error {
  constructor(
    readonly idempotencyKey: string,
    readonly requestId: string,
  ) {
    super(`Idempotency-Key "${idempotencyKey}" was already used for request ${requestId} with a different body`);
    this.name = 'IdempotencyKeyReused';
  }
}

export interface SubmitInput {
  /** Who asks ("apikey:12"): idempotency keys are unique per caller. */
  caller: string;
  idempotencyKey?: string | undefined;
  body: GenerateInvoiceRequest;
}

export interface Submitted {
  request: StoredRequest;
  /** false: the Idempotency-Key was seen before with the same body; this is that request. */
  created: boolean;
}

/**
 * Stores a request and its job (one statement). With an Idempotency-Key, a repeat (same
 * caller, same key, same body) returns the first request and enqueues
 * nothing; a repeat with another body throws IdempotencyKeyReused.
 * Unknown supplier or client ids are refused by the foreign keys (no
 * extra lookup on the hot path).
 */
export async function submitInvoiceRequest(db: Knex, input: SubmitInput): Promise<Submitted> {
  const bodyHash = input.idempotencyKey === undefined ? null : hashBody(input.body);
  const outcome = await insertBatched(db, {
    caller: input.caller,
    idempotency_key: input.idempotencyKey ?? null,
    body_hash: bodyHash,
    payload: input.body,
    supplier_party_id: input.body.supplierId,
    client_party_id: input.body.clientId,
  });
  if ('error' in outcome) throw unknownPartyError(outcome.error, input.body) ?? outcome.error;
  if (outcome.row) {
    crashPoint('invoice-request:after-insert');
    return { request: outcome.row, created: true };
  }
  const existing = await findInvoiceRequestByKey(db, input.caller, input.idempotencyKey!);
  if (!existing) throw new Error(`invoice request with Idempotency-Key ${input.idempotencyKey} conflicted but cannot be read`);
  if (existing.body_hash !== bodyHash) throw new IdempotencyKeyReused(input.idempotencyKey!, existing.id);
  return { request: existing, created: false };
}

type InsertOutcome = { row: StoredRequest | null } | { error: unknown };

const batchers = new WeakMap<Knex, (req: NewInvoiceRequest) => Promise<InsertOutcome>>();

function insertBatched(db: Knex, req: NewInvoiceRequest): Promise<InsertOutcome> {
  let insert = batchers.get(db);
  if (!insert) {
    // One statement in flight: measured (npm run bench:submit) both faster and
    // with a lower p99 than two or four, because fewer, bigger batches mean
    // fewer commits and round trips.
    insert = createBatcher((reqs: NewInvoiceRequest[]) => insertOrSplit(db, reqs), { maxBatch: 100, maxInFlight: 1 });
    batchers.set(db, insert);
  }
  return insert(req);
}

/**
 * One statement for the batch; when it fails (one request naming an unknown
 * party fails the whole statement) each request is tried on its own, so
 * only the bad one gets the error.
 */
async function insertOrSplit(db: Knex, reqs: NewInvoiceRequest[]): Promise<InsertOutcome[]> {
  try {
    return (await insertInvoiceRequests(db, reqs)).map((row) => ({ row }));
  } catch (error) {
    if (reqs.length === 1) return [{ error }];
    return Promise.all(reqs.map(async (r) => (await insertOrSplit(db, [r]))[0]!));
  }
}

function unknownPartyError(err: unknown, body: GenerateInvoiceRequest): InvoiceInputError | null {
  if (pgCode(err) !== PG_FOREIGN_KEY_VIOLATION) return null;
  const constraint = (err as { constraint?: string }).constraint;
  if (constraint === 'fk_invoice_requests_supplier') {
    return new InvoiceInputError('UNKNOWN_SUPPLIER', 'supplierId', `supplierId ${body.supplierId}: no such party`, { cause: err });
  }
  if (constraint === 'fk_invoice_requests_client') {
    return new InvoiceInputError('UNKNOWN_CLIENT', 'clientId', `clientId ${body.clientId}: no such party`, { cause: err });
  }
  return null;
}

/** SHA-256 of the body as canonical JSON (keys sorted), so member order does not matter. */
export function hashBody(body: unknown): string {
  return crypto.createHash('sha256').update(canonicalJson(body)).digest('hex');
}

function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}
