import type { Knex } from 'knex';
import { JobError } from '../jobs/contract/errors.js';
import type { BatchItemResult } from '../jobs/contract/types.js';
import { crashPoint } from '../lib/crash-point.js';
import type { Logger } from '../log.js';
import { classifyProviderError } from './classify.js';
import { attachPdf, pdfFailureFields } from './pdf.js';
import type { ProviderServices } from './services.js';
import { getDocumentsForPoll, recordPolls, type PollDocument, type PollSeen } from './poll-store.js';
import { AUTHORIZED_LEGAL_STATUSES, markNeedsAttention, type ProviderDocument } from './store.js';

// provider-poll: the fallback for lost webhooks. One job row per document
// and polling round, snoozed PROVIDER_POLL_INTERVAL_MS between attempts: the
// schedule lives in jobs.scheduled_at (a restart loses no poll) and nothing
// about a document stays in memory between polls, so one worker can follow
// 10,000 documents. The worker claims due polls in batches (the kind's
// `batch`, src/jobs/batch-loop.ts): one query reads the batch's documents,
// the GETs run at once, one statement records what they saw. The round ends
// when the status is terminal and, for an authorized document, its PDF is
// filed; or after PROVIDER_POLL_ATTEMPTS polls, with a warning and the
// document marked for attention.

export interface PollContext {
  signal: AbortSignal;
  log: Logger;
  now: () => Date;
}

export type PollOutcome = 'finished' | 'stale' | 'exhausted' | 'again';

export interface PollPayload {
  documentId: number;
  generation: number;
}

/** The job's result for one poll: snooze until the next, done, or the auth error that ends the job. */
export function pollResult(outcome: PollOutcome | JobError, services: ProviderServices): BatchItemResult {
  if (outcome instanceof JobError) return { error: outcome };
  return outcome === 'again' ? { snoozeMs: services.config.PROVIDER_POLL_INTERVAL_MS } : undefined;
}

/** One poll of one document; exported for the race test and `herald pac` commands. */
export async function pollOnce(db: Knex, services: ProviderServices, payload: PollPayload, ctx: PollContext): Promise<PollOutcome> {
  const [outcome] = await pollMany(db, services, [payload], ctx);
  if (outcome instanceof JobError) throw outcome;
  return outcome!;
}

/** One poll of each document; per document, its outcome or the auth error that ends its job. */
export async function pollMany(db: Knex, services: ProviderServices, payloads: readonly PollPayload[], ctx: PollContext): Promise<(PollOutcome | JobError)[]> {
  const docs = new Map((await getDocumentsForPoll(db, payloads.map((p) => p.documentId))).map((d) => [d.id, d]));
  const max = services.config.PROVIDER_POLL_ATTEMPTS;
  const out: (PollOutcome | JobError)[] = [];
  const due: { index: number; doc: PollDocument }[] = [];
  for (const [index, p] of payloads.entries()) {
    const doc = docs.get(p.documentId);
    // Another round took over (repoll), or nothing left to follow.
    if (!doc || doc.status !== 'submitted' || doc.poll_generation !== p.generation || doc.needs_attention_at) out[index] = 'stale';
    else if (isDone(doc, doc.has_pdf)) out[index] = 'finished';
    else if (doc.poll_attempts >= max) out[index] = await exhausted(db, doc, max, ctx.log);
    else due.push({ index, doc });
  }

  const client = services.client('pac');
  const answers = await Promise.all(
    due.map(async ({ doc }) => {
      try {
        const token = services.token('pac', doc.credentials_ref);
        return { status: await client.status!({ companyId: doc.company_id, token, providerDocumentId: doc.provider_document_id! }, { signal: ctx.signal }) };
      } catch (err) {
        const c = err instanceof JobError ? err : classifyProviderError(err, { provider: 'PAC', phase: 'status', now: ctx.now().getTime(), timeoutMs: services.config.PROVIDER_API_TIMEOUT_MS }).error;
        return { error: c };
      }
    }),
  );
  crashPoint('providers.mid-poll');

  const polled: { index: number; doc: PollDocument; pdfUrl: string | null }[] = [];
  const seen: PollSeen[] = [];
  for (const [i, { index, doc }] of due.entries()) {
    const answer = answers[i]!;
    if (answer.error) {
      // Credentials refused: polling cannot succeed until someone fixes them.
      if (answer.error.errorClass === 'auth') {
        out[index] = answer.error;
        continue;
      }
      ctx.log.warn({ documentId: doc.id, errorClass: answer.error.errorClass, err: answer.error.message }, 'status poll failed; counted as an attempt');
    }
    const status = answer.status ?? null;
    seen.push({ id: doc.id, generation: doc.poll_generation, seen: doc.poll_attempts, legalStatus: status?.legalStatus ?? null, cufe: status?.cufe ?? null });
    polled.push({ index, doc, pdfUrl: status && AUTHORIZED_LEGAL_STATUSES.has(status.legalStatus) ? (status.pdfUrl ?? null) : null });
  }
  const recorded = new Map((await recordPolls(db, seen)).map((d) => [d.id, d]));

  await Promise.all(
    polled.map(async ({ index, doc: before, pdfUrl }) => {
      const doc = recorded.get(before.id) ?? before;
      let hasPdf = before.has_pdf;
      if (pdfUrl && !hasPdf) {
        try {
          await attachPdf(db, services, doc, pdfUrl, 'poll', { signal: ctx.signal });
          hasPdf = true;
        } catch (err) {
          // The next poll brings a fresh URL; the round goes on until the PDF is filed.
          ctx.log.warn({ documentId: doc.id, invoiceId: doc.invoice_id, ...pdfFailureFields(err, pdfUrl) }, 'PDF download failed; trying again at the next poll');
        }
      }
      if (isDone(doc, hasPdf)) out[index] = 'finished';
      else if (doc.poll_attempts >= max) out[index] = await exhausted(db, doc, max, ctx.log);
      else out[index] = 'again';
    }),
  );
  return out;
}

function isDone(doc: ProviderDocument, hasPdf: boolean): boolean {
  if (!doc.final_at) return false;
  return doc.legal_status !== 'DGI_AUTHORIZED' || hasPdf;
}

async function exhausted(db: Knex, doc: ProviderDocument, max: number, log: Logger): Promise<PollOutcome> {
  const reason = `${doc.final_at ? 'no PDF filed' : 'no final legal status'} after ${max} polls (last status ${doc.legal_status ?? 'none'})`;
  if (await markNeedsAttention(db, doc.id, doc.poll_generation, reason)) {
    log.warn({ documentId: doc.id, invoiceId: doc.invoice_id, legalStatus: doc.legal_status }, `${reason}; marked for attention`);
  }
  return 'exhausted';
}
