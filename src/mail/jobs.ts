import type { Knex } from 'knex';
import { enqueueJob } from '../jobs/store/enqueue.js';
import { PermanentError, TransientError } from '../jobs/contract/errors.js';
import type { JobDefinition, JobRow, PermanentFailureHook } from '../jobs/contract/types.js';
import type { Logger } from '../log.js';
import { composeFailureMail } from './message.js';
import { createSmtpMailer, mailsWanted, type Mailer, type MailSettings } from './mailer.js';
import { claimFailureMail, getFailureMail, insertFailureMail, markFailureMailSent, releaseFailureMail } from './store.js';

// Failure mails. Exactly one per entry of a job into failed_permanent:
// 1. src/jobs calls onPermanentFailure only in the transaction whose
//    compare-and-set moved the row (a racing worker's UPDATE finds nothing);
// 2. the hook writes a failure_mails row, unique on (job_id, failed_at), and
//    a send-failure-mail job with a dedupe key, both in that transaction:
//    no transition, no mail; transition committed, mail queued;
// 3. the send claims the row (pending -> sending, compare-and-set) before
//    talking SMTP and marks it sent afterwards, so two workers holding the
//    same job cannot both send.
// The one gap no design closes: a worker killed after the SMTP server took
// the mail but before "sent" is stored re-sends it once (same Message-ID)
// when the claim goes stale. That is the at-least-once side we choose over
// losing a failure notice.

export const SEND_FAILURE_MAIL = 'send-failure-mail';

declare module '../jobs/contract/types.js' {
  interface JobPayloads {
    'send-failure-mail': { failureMailId: number };
  }
}

const SEND_TIMEOUT_MS = 30_000;

export interface MailServices {
  settings: MailSettings;
  mailer(): Mailer;
}

/** The settings and an SMTP mailer made on first send (tests hand in their own mailer). */
export function createMailServices(settings: MailSettings, mailer?: Mailer): MailServices {
  let made = mailer;
  return {
    settings,
    mailer() {
      if (!settings.smtpUrl) throw new PermanentError('SMTP_URL is not set', { nextStep: 'set SMTP_URL, restart the workers, retry the job' });
      made ??= createSmtpMailer(settings.smtpUrl, settings.timeoutMs ?? SEND_TIMEOUT_MS);
      return made;
    },
  };
}

/** Writes the marker row and queues its send, in the transition's transaction. Returns the marker id, or null (off, or already queued). */
export async function queueFailureMail(trx: Knex.Transaction, job: JobRow): Promise<number | null> {
  const row = await insertFailureMail(trx, {
    jobId: Number(job.id),
    failedAt: job.finished_at ?? new Date(),
    jobKind: job.kind,
    subjectType: job.subject_type,
    subjectId: job.subject_id,
    attempts: job.attempts,
    errorClass: job.error_class,
    lastError: job.last_error,
  });
  if (!row) return null;
  await enqueueJob(trx, SEND_FAILURE_MAIL, { failureMailId: Number(row.id) }, {
    subjectType: 'job',
    subjectId: Number(job.id),
    dedupeKey: `mail:job-failed:${row.id}`,
  });
  return Number(row.id);
}

/**
 * The hook `herald worker` passes to the runner. A failed mail job sends no
 * mail about itself (that could loop while SMTP is down); it is logged and
 * shows on /admin like any other permanently failed job.
 */
export function failureMailHook(opts: { log?: Logger; settings: MailSettings }): PermanentFailureHook {
  return async (job, { db }) => {
    const { settings } = opts;
    if (job.kind === SEND_FAILURE_MAIL) {
      opts.log?.error({ jobId: job.id, lastError: job.last_error }, 'a failure mail could not be sent; see /admin');
      return;
    }
    if (!mailsWanted(settings)) {
      opts.log?.warn({ jobId: job.id, kind: job.kind, subjectId: job.subject_id }, 'job failed permanently (failure mails are off)');
      return;
    }
    await queueFailureMail(db, job);
  };
}

export const failureMailJob = (services: () => MailServices): JobDefinition<'send-failure-mail'> => ({
  kind: SEND_FAILURE_MAIL,
  timeoutMs: SEND_TIMEOUT_MS,
  maxAttempts: 8,
  // SMTP outages are minutes to hours: 30 s doubling to 30 min, about 1.5 h in all.
  backoff: { baseMs: 30_000, capMs: 1_800_000 },
  async run({ failureMailId }, { db, log }) {
    const mail = await getFailureMail(db, failureMailId);
    if (!mail) throw new PermanentError(`failure_mails row ${failureMailId} does not exist`);
    if (mail.status === 'sent') return;
    const { settings, mailer } = services();
    if (!mailsWanted(settings)) {
      log.warn({ failureMailId }, 'failure mails were switched off after this one was queued; not sent');
      return;
    }
    // Stale after 3x the send timeout, as the sweeper's "stuck".
    const claimed = await claimFailureMail(db, failureMailId, 3 * SEND_TIMEOUT_MS);
    if (!claimed) return; // another worker is sending or has sent it
    const msg = composeFailureMail(claimed, { adminUrl: settings.adminUrl });
    try {
      await mailer().send({ from: settings.from, to: settings.to, subject: msg.subject, text: msg.text, messageId: msg.messageId });
    } catch (err) {
      await releaseFailureMail(db, failureMailId, claimed.claim_token!);
      if (err instanceof PermanentError) throw err;
      throw new TransientError(`SMTP send failed: ${(err as Error).message}`, { cause: err, nextStep: 'check SMTP_URL and the mail server' });
    }
    await markFailureMailSent(db, failureMailId, claimed.claim_token!, msg.messageId);
  },
});
