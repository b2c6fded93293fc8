import type { Knex } from 'knex';
import { getInvoice, listInvoiceItems } from '../invoices/store.js';
import { enqueueJob } from '../jobs/store/enqueue.js';
import { JobError } from '../jobs/contract/errors.js';
import { crashPoint } from '../lib/crash-point.js';
import type { Logger } from '../log.js';
import { classifyProviderError, NEXT_STEPS, type Classified } from './classify.js';
import type { SubmitResult } from './provider.js';
import type { ProviderServices } from './services.js';
import {
  getDocument, markDocumentFailed, markDocumentRejected, markDocumentSubmitted, markSubmitStarted, recordDocumentError,
  type ProviderDocument,
} from './store.js';

// provider-submit: one run sends one document to its provider. The row's
// idempotency key is fixed, so every attempt sends the same document; a run
// that finds submit_started_at set (an earlier attempt may have reached the
// provider and died or timed out before recording it) looks the document up
// by that key first and records what it finds instead of posting again.

export const CLEANUP_DEDUPE_KEY = 'providers-cleanup';
const CLEANUP_FIRST_RUN_MS = 24 * 3600_000;

export interface SubmitContext {
  signal: AbortSignal;
  log: Logger;
  now: () => Date;
  /** This run's attempt number and the job's budget: the last failed attempt marks the document failed. */
  attempt: number;
  maxAttempts: number;
}

export async function runSubmit(db: Knex, services: ProviderServices, documentId: number, ctx: SubmitContext): Promise<void> {
  const doc = await getDocument(db, documentId);
  if (!doc) {
    ctx.log.warn({ documentId }, 'provider document no longer exists; nothing to submit');
    return;
  }
  if (doc.status !== 'pending') {
    // A second ring, or a run that died after recording: make sure polling exists.
    if (doc.status === 'submitted') await db.transaction((trx) => schedulePolling(trx, services, doc, ctx.now()));
    return;
  }
  try {
    const client = services.client(doc.provider_kind);
    const token = services.token(doc.provider_kind, doc.credentials_ref);
    const ids = { companyId: doc.company_id, token, idempotencyKey: doc.idempotency_key };
    let result: SubmitResult | null = null;
    if (doc.submit_started_at) {
      result = await client.lookup(ids, { signal: ctx.signal });
      if (result) ctx.log.info({ documentId, providerDocumentId: result.providerDocumentId }, 'found the document at the provider from an earlier attempt; not posting again');
    }
    if (!result) {
      await markSubmitStarted(db, doc.id);
      crashPoint('providers.before-submit-post');
      const invoice = await getInvoice(db, doc.invoice_id);
      if (!invoice) throw new Error(`invoice ${doc.invoice_id} of provider document ${doc.id} is missing`);
      const items = await listInvoiceItems(db, doc.invoice_id);
      result = await client.submit({ ...ids, invoice, items }, { signal: ctx.signal });
      crashPoint('providers.after-submit-post');
    }
    const submitted = result;
    await db.transaction(async (trx) => {
      const moved = await markDocumentSubmitted(trx, doc.id, submitted);
      if (moved) await schedulePolling(trx, services, moved, ctx.now());
    });
    ctx.log.info({ documentId, invoiceId: doc.invoice_id, legalStatus: submitted.legalStatus }, 'submitted the document to its provider');
  } catch (err) {
    const provider = doc.provider_kind === 'pac' ? 'PAC' : 'invoicing API';
    const c: Classified =
      err instanceof JobError
        ? { kind: err.errorClass === 'auth' ? 'auth' : err.errorClass === 'permanent' ? 'validation' : 'server', error: err }
        : classifyProviderError(err, { provider, phase: 'submit', now: ctx.now().getTime(), timeoutMs: services.config.PROVIDER_API_TIMEOUT_MS });
    await recordFailure(db, doc, c, ctx);
    throw c.error;
  }
}

async function recordFailure(db: Knex, doc: ProviderDocument, c: Classified, ctx: SubmitContext): Promise<void> {
  const e = { errorKind: c.kind, message: c.error.message, nextStep: c.error.nextStep ?? NEXT_STEPS[c.kind] };
  if (c.kind === 'rejected') {
    await markDocumentRejected(db, doc.id, { ...e, legalStatus: doc.provider_kind === 'pac' ? 'PAC_REJECTED' : null });
  } else if (c.error.errorClass === 'auth' || c.error.errorClass === 'permanent' || ctx.attempt >= ctx.maxAttempts) {
    await markDocumentFailed(db, doc.id, e);
  } else {
    await recordDocumentError(db, doc.id, e);
  }
  ctx.log.warn({ documentId: doc.id, invoiceId: doc.invoice_id, errorKind: c.kind, attempt: ctx.attempt }, `provider submission failed: ${c.error.message}`);
}

/**
 * The first poll (PAC) and the daily cleanup, in the transaction that
 * records the submission. Dedupe keys make a repeat a no-op; the poll's key
 * carries the generation so `herald pac repoll` starts a fresh round.
 */
export async function schedulePolling(trx: Knex.Transaction, services: ProviderServices, doc: ProviderDocument, now: Date): Promise<void> {
  // Also when already final: a DGI_AUTHORIZED document found by look-up still
  // needs its PDF, and the first poll finishes at once if it has one.
  if (doc.provider_kind === 'pac') {
    await enqueueJob(trx, 'provider-poll', { documentId: doc.id, generation: doc.poll_generation }, {
      subjectType: 'invoice',
      subjectId: doc.invoice_id,
      dedupeKey: `provider-poll:${doc.id}:${doc.poll_generation}`,
      runAt: new Date(now.getTime() + services.config.PROVIDER_POLL_INTERVAL_MS),
    });
  }
  await enqueueJob(trx, 'providers-cleanup', {}, { dedupeKey: CLEANUP_DEDUPE_KEY, runAt: new Date(now.getTime() + CLEANUP_FIRST_RUN_MS) });
}
