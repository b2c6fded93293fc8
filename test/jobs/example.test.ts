import { expect } from 'chai';
import { createJobsRuntime } from '../../src/jobs/runtime/jobs-runtime.js';
import { getJob } from '../../src/jobs/store/runs.js';
import { createLogger } from '../../src/log.js';
import { exampleJobs, queueNotify, type Notifier } from '../../examples/notify-job.js';
import { useTestDb } from '../helpers/db.js';

// examples/notify-job.ts is the job example of src/jobs/README.md: it runs
// here as the README says it does.

describe('jobs.example (the README example)', () => {
  const t = useTestDb(import.meta.url);
  const log = createLogger('silent');

  function scripted(answers: Array<'sent' | 'retry' | 'refused'>): Notifier & { calls: number[] } {
    const calls: number[] = [];
    return {
      calls,
      async notify(uploadId) {
        calls.push(uploadId);
        return answers.shift() ?? 'sent';
      },
    };
  }

  function runtime(notifier: Notifier) {
    return createJobsRuntime({ definitions: exampleJobs(notifier), hooks: [], log, concurrency: 1, sweepIntervalMs: 60_000 });
  }

  it('enqueues once per upload in the caller transaction, retries a passing fault, and completes', async () => {
    const { db } = t.get();
    const notifier = scripted(['retry', 'sent']);
    const [first, again] = await db.transaction(async (trx) => [await queueNotify(trx, 7), await queueNotify(trx, 7)]);
    expect(first!.created).to.equal(true);
    expect(again, 'the dedupe key makes the second call a no-op').to.deep.equal({ id: first!.id, created: false });
    let slept = 0;
    await runtime(notifier).runInline(db, { until: 'idle', waitForRetriesMs: 3_600_000, sleep: async (ms) => void (slept += ms), now: () => new Date(Date.now() + slept) });
    const job = await getJob(db, first!.id);
    expect(job).to.include({ status: 'completed', attempts: 2 });
    expect(notifier.calls).to.deep.equal([7, 7]);
  });

  it('a rolled-back transaction leaves no job, and a refusal fails the job for good without retrying', async () => {
    const { db } = t.get();
    await db.transaction(async (trx) => {
      await queueNotify(trx, 8);
      await trx.rollback();
    }).catch(() => undefined);
    expect((await db.raw(`SELECT count(*)::int AS n FROM jobs WHERE subject_id = '8'`)).rows[0].n).to.equal(0);

    const notifier = scripted(['refused']);
    const { id } = await db.transaction((trx) => queueNotify(trx, 9));
    await runtime(notifier).runInline(db, { until: 'idle' });
    expect(await getJob(db, id)).to.include({ status: 'failed_permanent', attempts: 1, error_class: 'permanent' });
    expect(notifier.calls).to.deep.equal([9]);
  });
});
