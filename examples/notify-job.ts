// The job example of src/jobs/README.md, compiled by `npm run typecheck` and
// run by test/jobs/example.test.ts, so the documented way to add a kind
// cannot drift from the code. A capability declares its payload, builds its
// definitions from its services (the composition root hands them in), and
// enqueues in the transaction of the change that needs the side effect.
import type { Knex } from 'knex';
import { PermanentError, TransientError } from '../src/jobs/contract/errors.js';
import { defineJob, type JobDefinition } from '../src/jobs/contract/types.js';
import { enqueueJob } from '../src/jobs/store/enqueue.js';

declare module '../src/jobs/contract/types.js' {
  interface JobPayloads {
    'example-notify': { uploadId: number };
  }
}

/** The outside system; a real one is an HTTP client that honours the signal. */
export interface Notifier {
  /** 'retry': a passing fault (5xx, timeout); 'refused': the request itself is wrong. */
  notify(uploadId: number, opts: { signal: AbortSignal }): Promise<'sent' | 'retry' | 'refused'>;
}

export function exampleJobs(notifier: Notifier): JobDefinition[] {
  const notify = defineJob('example-notify', {
    timeoutMs: 30_000,
    maxAttempts: 5,
    backoff: { baseMs: 2_000, capMs: 600_000 },
    async run({ uploadId }, { signal, log }) {
      // Re-runs happen (a worker dies after the call): the side effect must be idempotent at the far end.
      const answer = await notifier.notify(uploadId, { signal });
      if (answer === 'retry') throw new TransientError(`upload ${uploadId}: notifier busy`);
      if (answer === 'refused') throw new PermanentError(`upload ${uploadId}: refused`, { nextStep: 'fix the upload, then retry the job' });
      log.info({ uploadId }, 'notified');
    },
  });
  return [notify as JobDefinition];
}

/** In the caller's transaction: the job row commits with the change, or neither does. A second call for the same upload adds nothing. */
export async function queueNotify(trx: Knex.Transaction, uploadId: number): Promise<{ id: number; created: boolean }> {
  return enqueueJob(trx, 'example-notify', { uploadId }, { subjectType: 'upload', subjectId: uploadId, dedupeKey: `example-notify:${uploadId}` });
}
