import { expect } from 'chai';
import { randomUUID } from 'node:crypto';
import type { ChildProcess } from 'node:child_process';
import { useTestDb } from '../helpers/db.js';
import { spawnHerald } from '../helpers/cli.js';
import { REDIS_URL, redisPrefix, wipeRedisPrefix } from '../helpers/redis.js';
import { waitFor } from '../helpers/wait.js';
import { definitionsWith } from '../helpers/wiring.js';
import { startExporterEnv, type ExporterEnv } from '../exporter/support.js';
import { enqueueJob } from '../../src/jobs/store/enqueue.js';
import { listJobAttempts } from '../../src/jobs/store/admin.js';
import { getJob } from '../../src/jobs/store/runs.js';
import type { JobKind } from '../../src/jobs/contract/types.js';

// Issue 15 item 4: a `herald worker` SIGKILLed while it holds one job of
// every kind (HERALD_PAUSE_AT keeps each one right after its claim, like a
// worker killed mid-run: no heartbeat of the job's own, timeouts of up to
// 30 min) loses nothing and delays nothing for long: another live worker
// sees its heartbeats stop and every job runs again there within 30 s,
// exactly once more, its attempt given back (attempt numbers 1, 1).

/** One job of each kind, with payloads that make each run end at once (completed, failed for good, or snoozed far off). */
const PAYLOADS: Record<string, unknown> = {
  'invoice-request': { requestId: 999_999 },
  'upload-workbaskets': {},
  'upload-envelope': { uploadId: 999_999 },
  'notify-hmrc': { uploadId: 999_999 },
  'report-generate': { reportId: randomUUID() },
  'report-timeout': { reportId: randomUUID() },
  'reports-expire': {},
  'send-failure-mail': { failureMailId: 999_999 },
  'provider-submit': { documentId: 999_999 },
  'provider-poll': { documentId: 999_999, generation: 1 },
  'providers-cleanup': {},
};

interface Worker {
  child: ChildProcess;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

describe('jobs: a SIGKILLed worker\'s jobs (worker registry)', function () {
  this.timeout(180_000);
  const t = useTestDb(import.meta.url);
  const prefix = redisPrefix(import.meta.url);
  let env: ExporterEnv;
  const live: Worker[] = [];

  function spawnWorker(extra: Record<string, string> = {}): Worker {
    const child = spawnHerald(['worker', '--concurrency', '16', '--grace', '1000'], {
      env: {
        ...env.env, REDIS_URL, REDIS_PREFIX: prefix,
        // Longer than the test: only the worker registry can hand these jobs back in time.
        PROVIDER_API_TIMEOUT_MS: '60000', HMRC_TIMEOUT_MS: '60000', S3_TIMEOUT_MS: '60000', JOBS_SWEEP_INTERVAL_MS: '60000',
        ...extra,
      },
      stdio: ['ignore', 'ignore', process.env.TEST_LOG_LEVEL ? 'inherit' : 'ignore'],
    });
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
    const w = { child, exited };
    live.push(w);
    return w;
  }

  async function workerIdOf(w: Worker): Promise<number> {
    let id: number | undefined;
    await waitFor(`worker pid ${w.child.pid} to register`, async () => {
      const [row] = await t.get().db('job_workers').where({ pid: w.child.pid });
      id = row ? Number(row.id) : undefined;
      return id !== undefined;
    }, 60_000);
    return id!;
  }

  before(async () => {
    env = await startExporterEnv(t.get().url);
    await wipeRedisPrefix(prefix);
  });
  after(async () => {
    for (const w of live.splice(0)) {
      if (w.child.exitCode === null && w.child.signalCode === null) w.child.kill('SIGKILL');
      await w.exited;
    }
    await env.close();
    await wipeRedisPrefix(prefix);
  });

  it('runs every job of a SIGKILLed worker again in another worker within 30 s, exactly once more, attempts not used', async () => {
    const { db } = t.get();
    const kinds = definitionsWith().map((d) => d.kind as string).sort();
    expect(kinds, 'a payload for every kind (a new kind needs one here)').to.deep.equal(Object.keys(PAYLOADS).sort());
    const ids = new Map<string, number>();
    for (const kind of kinds) ids.set(kind, (await enqueueJob(db, kind as JobKind, PAYLOADS[kind] as never)).id);

    const doomed = spawnWorker({ HERALD_PAUSE_AT: 'jobs.after-claim' });
    const doomedId = await workerIdOf(doomed);
    await waitFor('the doomed worker to hold every job', async () => {
      const rows = await db('jobs').whereIn('id', [...ids.values()]).select('status', 'worker_id');
      return rows.every((r) => r.status === 'processing' && Number(r.worker_id) === doomedId);
    }, 60_000);
    const rescuer = spawnWorker();
    const rescuerId = await workerIdOf(rescuer);

    doomed.child.kill('SIGKILL');
    expect(await doomed.exited).to.deep.equal({ code: null, signal: 'SIGKILL' });
    // The bound, as a deadline: each job's second run recorded by then.
    await waitFor('every job to run again', async () => {
      for (const id of ids.values()) if ((await listJobAttempts(db, id)).length < 2) return false;
      return true;
    }, 30_000);

    rescuer.child.kill('SIGTERM');
    expect(await rescuer.exited).to.deep.equal({ code: 0, signal: null });
    for (const [kind, id] of ids) {
      const history = await listJobAttempts(db, id);
      expect(history.map((h) => [h.attempt, h.outcome === 'worker_lost' ? 'worker_lost' : 'ran', Number(h.worker_id)]), kind).to.deep.equal([
        [1, 'worker_lost', doomedId],
        [1, 'ran', rescuerId],
      ]);
      expect(history[0]!.error, kind).to.match(/^worker lost: worker \d+ \(pid \d+ on .+\) last heartbeat/);
      const row = (await getJob(db, id))!;
      expect(row.status, `${kind} ended its second run`).to.not.equal('processing');
      expect(row, kind).to.include({ stall_count: 1, attempts: row.status === 'pending' ? 0 : 1 });
    }
    expect(await db('job_workers').select('id'), 'the dead worker reaped, the stopped one deregistered').to.deep.equal([]);
  });
});
