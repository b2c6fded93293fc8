import { defineJob, type PermanentFailureHook } from '../jobs/contract/types.js';
import { classifyDatabaseError, failureMessage, TransientError } from '../jobs/contract/errors.js';
import { crashPoint } from '../lib/crash-point.js';
import { InvoiceInputError, NumberingExhausted } from './errors.js';
import { generateInvoice } from './generate.js';
import { claimInvoiceRequest, completeInvoiceRequest, failInvoiceRequest, getInvoiceRequest } from './request-store.js';
import { INVOICE_REQUEST_JOB } from './requests.js';
import { describeFirstIssue, generateInvoiceRequest } from './schemas.js';

declare module '../jobs/contract/types.js' {
  interface JobPayloads {
    'invoice-request': { requestId: string };
  }
}

// One job per invoice request. The request row keeps the domain status the
// API shows; the job row (src/jobs) keeps attempts, backoff and stalls.
//
// Crash recovery, by named crash point:
//   invoice-request:after-insert          (request + job committed, nobody ran it)
//       -> the job row is pending; a worker started later claims it.
//   invoice:before-commit                 (inside generateInvoice's transaction)
//       -> Postgres rolls the transaction back (number and all); the sweeper
//          resets the stalled job, which gives its attempt back.
//   invoice-request:after-invoice-commit  (invoice committed, request still PROCESSING)
//       -> the retry, under the supplier lock, finds the invoice by its
//          request_id (ux_invoices_request makes it the only one), takes no
//          number, links it, COMPLETED. Batched companions committed COMPLETED.
//   invoice-request:after-completed       (request COMPLETED, job not yet completed)
//       -> the retry finds nothing to claim and returns.
//
// Client mistakes (unknown party, wrong role, a payload that no longer
// validates) are outcomes, not job failures: the request becomes FAILED with
// the message and the job completes, so nobody is paged for them.

export const INVOICE_REQUEST_MAX_ATTEMPTS = 10;

// Up to 1 + 199 invoices per supplier lock and commit (see generate.ts).
// bench:invoices (4 workers, one supplier, 10,000 requests, load ~15 on 2
// cores): 61/s unbatched, 344/s at 50 per batch, 684/s at 200. A batch of 200
// took ~0.3 s there, far inside timeoutMs.
export const INVOICE_BATCH_COMPANIONS = 199;

export const invoiceRequestJob = defineJob(INVOICE_REQUEST_JOB, {
  // generateInvoice is a handful of statements; 30 s means the database is
  // in trouble, and 3x that (the stuck threshold) is a dead worker.
  timeoutMs: 30_000,
  maxAttempts: INVOICE_REQUEST_MAX_ATTEMPTS,
  // Transient failures are database hiccups: retry soon, never wait long.
  backoff: { baseMs: 1_000, capMs: 60_000 },
  async run({ requestId }, { db, log, job }) {
    const request = await claimInvoiceRequest(db, requestId);
    if (!request) {
      const current = await getInvoiceRequest(db, requestId);
      // Usual for requests completed in another request's batch.
      log.debug({ requestId, status: current?.status ?? 'missing' }, 'invoice request has nothing left to do');
      return;
    }
    const parsed = generateInvoiceRequest.safeParse(request.payload);
    if (!parsed.success) {
      await failInvoiceRequest(db, requestId, describeFirstIssue(parsed.error).message);
      return;
    }
    let generated;
    try {
      generated = await generateInvoice(db, parsed.data, { requestId, companions: INVOICE_BATCH_COMPANIONS });
    } catch (err) {
      if (err instanceof InvoiceInputError || err instanceof NumberingExhausted) {
        await failInvoiceRequest(db, requestId, err.message);
        log.info({ requestId, code: err instanceof InvoiceInputError ? err.code : err.name }, 'invoice request failed: %s', err.message);
        return;
      }
      const failure = classifyInvoiceFailure(err);
      // A permanent failure, and the last attempt, settle the request too, so no request outlives its job.
      if (failure.errorClass === 'permanent') {
        await failInvoiceRequest(db, requestId, failureMessage(failure));
      } else if (job.attempts >= (job.max_attempts ?? INVOICE_REQUEST_MAX_ATTEMPTS)) {
        await failInvoiceRequest(db, requestId, failureMessage(new TransientError(`gave up after ${job.attempts} attempts: ${failure.message}`)));
      }
      throw failure;
    }
    crashPoint('invoice-request:after-invoice-commit');
    const completed = await completeInvoiceRequest(db, requestId, generated.id);
    if (!completed) log.warn({ requestId, invoiceId: generated.id }, 'invoice request was no longer processing when its invoice was ready');
    crashPoint('invoice-request:after-completed');
  },
});

/**
 * What a failed generation means: a value the database refuses (SQLSTATE 22,
 * e.g. a date or amount past its column) fails the same way on every try, so
 * it is permanent; other database and connection trouble is transient. The
 * message is stable (no SQL, no values): it reaches the API's errorMessage.
 */
export function classifyInvoiceFailure(err: unknown) {
  return classifyDatabaseError(err, 'generating the invoice failed') ?? new TransientError('generating the invoice failed', { cause: err });
}

/**
 * For src/jobs' onPermanentFailure (runner, sweeper): when an invoice-request
 * job ends failed_permanent without its handler deciding (stalled too often,
 * or an attempt limit reached elsewhere), its request becomes FAILED in the
 * same transaction, so no request is left PROCESSING for ever.
 */
export const failRequestOfDeadJob: PermanentFailureHook = async (job, { db }) => {
  if (job.kind !== INVOICE_REQUEST_JOB) return;
  const { requestId } = job.payload as { requestId: string };
  await failInvoiceRequest(db, requestId, `[${job.error_class ?? 'permanent'}] gave up: ${job.last_error ?? 'job failed permanently'}`);
};
