import { expect } from 'chai';
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { useTestDb } from '../helpers/db.js';
import { enqueueJob } from '../../src/jobs/store/enqueue.js';
import { getJob } from '../../src/jobs/store/runs.js';
import { listJobAttempts } from '../../src/jobs/store/admin.js';
import './kinds.js';
import { createRunsTable, REDIS_URL, redisPrefix, runsOf, waitFor, wipeRedisPrefix } from './support.js';

// Real worker processes, SIGKILLed at named crash points (src/lib/crash-point.ts).
// After each crash a fresh worker must finish the job exactly once: the
// sweeper resets the row (stall_count 1, the crash's attempt given back) and
// bee-queue's stall check frees the dead worker's bell.

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const WORKER = 'test/jobs/fixtures/worker-process.ts';

interface Worker {
  child: ChildProcess;
  ready: Promise<void>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function spawnWorker(databaseUrl: string, prefix: string, crashAt?: string): Worker {
  const env = { ...process.env, HERALD_CRASH_AT: crashAt ?? '' };
  const child = spawn(process.execPath, ['--import', 'tsx', WORKER, databaseUrl, REDIS_URL, prefix], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'inherit'] });
  const ready = new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => String(d).includes('ready') && resolve());
    child.once('exit', () => reject(new Error('worker exited before it was ready')));
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  ready.catch(() => undefined);
  return { child, ready, exited };
}

describe('jobs crash safety (SIGKILL)', () => {
  const t = useTestDb(import.meta.url);
  const prefix = redisPrefix(import.meta.url);
  const live: Worker[] = [];

  before(async () => createRunsTable(t.get().db));
  afterEach(async () => {
    for (const w of live.splice(0)) if (w.child.exitCode === null && w.child.signalCode === null) w.child.kill('SIGKILL');
  });
  after(async () => wipeRedisPrefix(prefix));

  for (const point of ['test.mid-job', 'jobs.after-claim', 'jobs.before-record']) {
    it(`finishes a job exactly once after its worker is killed at ${point}`, async () => {
      const { db, url } = t.get();
      const { id } = await enqueueJob(db, 'test-crash', { tag: point });
      const doomed = spawnWorker(url, prefix, point);
      live.push(doomed);
      const death = await doomed.exited;
      expect(death.signal, 'the worker died by SIGKILL').to.equal('SIGKILL');
      expect(await getJob(db, id), 'left claimed by the dead worker').to.include({ status: 'processing', attempts: 1 });
      const effectsBefore = point === 'jobs.before-record' ? 1 : 0;
      expect(await db('test_job_effects').where({ job_id: id })).to.have.length(effectsBefore);

      const rescuer = spawnWorker(url, prefix);
      live.push(rescuer);
      await rescuer.ready;
      await waitFor('the job to complete', async () => (await getJob(db, id))?.status === 'completed', 20_000);
      expect(await getJob(db, id)).to.include({ status: 'completed', stall_count: 1, attempts: 1 });
      expect(await db('test_job_effects').where({ job_id: id }), 'the effect happened once').to.have.length(1);
      const history = await listJobAttempts(db, id);
      expect(history.map((h) => [h.attempt, h.outcome])).to.deep.equal([[1, 'stalled'], [1, 'completed']]);
      const handlerRuns = (await runsOf(db, point)).length;
      expect(handlerRuns).to.equal(point === 'jobs.after-claim' ? 1 : 2);

      rescuer.child.kill('SIGTERM');
      expect(await rescuer.exited).to.deep.equal({ code: 0, signal: null });
    });
  }
});
