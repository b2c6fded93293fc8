import type { FailureMailRow } from './store.js';

// What a failure mail says. The next step depends on the error class (the
// classify() of the client that failed chose it), so the operator reading it
// knows whether to wait, fix credentials, fix data or look at a worker.

export const NEXT_STEPS: Record<string, string> = {
  transient:
    'The other side kept failing (timeouts, 5xx) until the attempts ran out. Check that it is up, then retry: ' +
    '`herald queue retry ID` or "retry now" on /admin.',
  rate_limited: 'The other side kept refusing us for load (429). Wait for its limit to reset, then retry the job.',
  auth: 'Credentials were rejected. Fix the key, token or secret in the configuration, restart the workers, then retry the job.',
  permanent:
    'The request itself was refused (4xx / validation): retrying as is will fail again. Fix the data named in the error, then retry, ' +
    'or clear the job if the work is no longer wanted.',
  stalled:
    'Its runs kept dying (worker crash, out of memory, kill -9) without finishing. Look at the worker logs around the failure time, ' +
    'fix the cause, then retry.',
};

const UNKNOWN_STEP = 'Look at the last error and the job history on /admin, then retry or clear the job.';

export function nextStepFor(errorClass: string | null): string {
  return (errorClass && NEXT_STEPS[errorClass]) || UNKNOWN_STEP;
}

export interface FailureMessage {
  subject: string;
  text: string;
  /** Stable per failure, so a rare re-send after a crash is recognisably the same mail. */
  messageId: string;
}

export function composeFailureMail(mail: FailureMailRow, opts: { adminUrl?: string | undefined } = {}): FailureMessage {
  const subject = mail.subject_type ? `${mail.subject_type} ${mail.subject_id}` : 'no subject';
  const lines = [
    `Job ${mail.job_id} (${mail.job_kind}) failed permanently at ${mail.failed_at.toISOString()}.`,
    '',
    `Subject:     ${subject}`,
    `Attempts:    ${mail.attempts}`,
    `Error class: ${mail.error_class ?? 'unknown'}`,
    `Last error:  ${mail.last_error ?? '(none recorded)'}`,
    '',
    `Next step: ${nextStepFor(mail.error_class)}`,
    '',
    `Retry from a shell: herald queue retry ${mail.job_id}`,
  ];
  if (opts.adminUrl) lines.push(`Admin page: ${opts.adminUrl.replace(/\/$/, '')}/admin?subject=${encodeURIComponent(mail.subject_id ?? '')}`);
  return {
    subject: `[herald] ${mail.job_kind} failed permanently: ${subject} (job ${mail.job_id})`,
    text: `${lines.join('\n')}\n`,
    messageId: `<herald-job-${mail.job_id}-failed-${mail.failed_at.getTime()}-${mail.id}@herald>`,
  };
}
