import type { Knex } from 'knex';
import { JobError } from '../jobs/errors.js';
import type { JobSnooze } from '../jobs/types.js';
import { crashPoint } from '../lib/crash-point.js';
import type { Logger } from '../log.js';
import { classifyProviderError } from './classify.js';
import { attachPdf } from './pdf.js';
import type { ProviderServices } from './services.js';
import {
  advanceLegalStatus, countPollAttempt, getAttachment, getDocument, markNeedsAttention, type LegalStatus, type ProviderDocument,
} from './store.js';

// provider-poll: the fallback for lost webhooks. One job row per document
// and polling round, snoozed PROVIDER_POLL_INTERVAL_MS between attempts: the
// schedule lives in jobs.scheduled_at (a restart loses no poll) and nothing
// about a document stays in memory between polls, so one worker can follow
// 10,000 documents. The round ends when the status is terminal and, for an
// authorized document, its PDF is filed; or after PROVIDER_POLL_ATTEMPTS
// polls, with a warning and the document marked for attention.

const AUTHORIZED: ReadonlySet<LegalStatus> = new Set(['PAC_AUTHORIZED', 'DGI_AUTHORIZED']);

export interface PollContext {
  signal: AbortSignal;
  log: Logger;
  now: () => Date;
}

export type PollOutcome = 'finished' | 'stale' | 'exhausted' | 'again';

export async function runPoll(
  db: Knex,
  services: ProviderServices,
  payload: { documentId: number; generation: number },
  ctx: PollContext,
): Promise<void | JobSnooze> {
  const outcome = await pollOnce(db, services, payload, ctx);
  return outcome === 'again' ? { snoozeMs: services.config.PROVIDER_POLL_INTERVAL_MS } : undefined;
}

/** One poll of one document; exported for the race test and `herald pac` commands. */
export async function pollOnce(db: Knex, services: ProviderServices, payload: { documentId: number; generation: number }, ctx: PollContext): Promise<PollOutcome> {
  const doc = await getDocument(db, payload.documentId);
  // Another round took over (repoll), or nothing left to follow.
  if (!doc || doc.status !== 'submitted' || doc.poll_generation !== payload.generation || doc.needs_attention_at) return 'stale';
  if (await isDone(db, doc)) return 'finished';
  const max = services.config.PROVIDER_POLL_ATTEMPTS;
  if (doc.poll_attempts >= max) return exhausted(db, doc, max, ctx.log);

  const client = services.client('pac');
  let seen: ProviderDocument = doc;
  try {
    const status = await client.status!(
      { companyId: doc.company_id, token: services.token('pac', doc.credentials_ref), providerDocumentId: doc.provider_document_id! },
      { signal: ctx.signal },
    );
    crashPoint('providers.mid-poll');
    seen = (await advanceLegalStatus(db, doc.id, status.legalStatus, status.cufe)) ?? seen;
    if (AUTHORIZED.has(status.legalStatus) && status.pdfUrl) {
      try {
        await attachPdf(db, services, seen, status.pdfUrl, 'poll', { signal: ctx.signal });
      } catch (err) {
        // The next poll brings a fresh URL; the round goes on until the PDF is filed.
        ctx.log.warn({ documentId: doc.id, invoiceId: doc.invoice_id, err: (err as Error).message }, 'PDF download failed; trying again at the next poll');
      }
    }
  } catch (err) {
    const c = err instanceof JobError ? err : classifyProviderError(err, { provider: 'PAC', phase: 'status', now: ctx.now().getTime(), timeoutMs: services.config.PROVIDER_API_TIMEOUT_MS }).error;
    // Credentials refused: polling cannot succeed until someone fixes them.
    if (c.errorClass === 'auth') throw c;
    ctx.log.warn({ documentId: doc.id, errorClass: c.errorClass, err: c.message }, 'status poll failed; counted as an attempt');
  }
  const counted = await countPollAttempt(db, doc.id, doc.poll_generation, doc.poll_attempts);
  if (await isDone(db, (await getDocument(db, doc.id))!)) return 'finished';
  if (counted && counted.poll_attempts >= max) return exhausted(db, counted, max, ctx.log);
  return 'again';
}

async function isDone(db: Knex, doc: ProviderDocument): Promise<boolean> {
  if (!doc.final_at) return false;
  if (doc.legal_status !== 'DGI_AUTHORIZED') return true;
  return (await getAttachment(db, doc.invoice_id)) !== null;
}

async function exhausted(db: Knex, doc: ProviderDocument, max: number, log: Logger): Promise<PollOutcome> {
  const reason = `${doc.final_at ? 'no PDF filed' : 'no final legal status'} after ${max} polls (last status ${doc.legal_status ?? 'none'})`;
  if (await markNeedsAttention(db, doc.id, doc.poll_generation, reason)) {
    log.warn({ documentId: doc.id, invoiceId: doc.invoice_id, legalStatus: doc.legal_status }, `${reason}; marked for attention`);
  }
  return 'exhausted';
}
