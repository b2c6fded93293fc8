import { execFile } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { expect } from 'chai';
import { enqueueJob } from '../../src/jobs/store/enqueue.js';
import { getJob } from '../../src/jobs/store/runs.js';
import { registerWorker } from '../../src/jobs/store/workers.js';
import { useTestDb } from '../helpers/db.js';

// `herald queue ...` as a real child process against a real Postgres.

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const run = promisify(execFile);

async function herald(url: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await run(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], {
      cwd: ROOT, env: { ...process.env, DATABASE_URL: url, REDIS_URL: '', LOG_LEVEL: 'silent', MAIL_FAILURES_ENABLED: 'false' },
    });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

describe('herald queue', () => {
  const t = useTestDb(import.meta.url);
  const ids = { pending: 0, order: 0, dead: 0, stuck: 0 };

  before(async () => {
    const { db } = t.get();
    ids.pending = (await enqueueJob(db, 'notify-hmrc', { uploadId: 1 }, { subjectType: 'upload', subjectId: 1, runAt: new Date(Date.now() + 3_600_000) })).id;
    ids.order = (await enqueueJob(db, 'invoice-request', { requestId: 'r1' } as never, { subjectType: 'invoice_request', subjectId: 'ord-42' })).id;
    ids.dead = (await enqueueJob(db, 'notify-hmrc', { uploadId: 2 }, { subjectType: 'upload', subjectId: 2 })).id;
    ids.stuck = (await enqueueJob(db, 'upload-envelope', { uploadId: 3 }, { subjectType: 'upload', subjectId: 3 })).id;
    await db.raw(`UPDATE jobs SET status = 'failed', attempts = 2, last_error = 'PAC timeout', error_class = 'transient' WHERE id = ?`, [ids.order]);
    await db.raw(`UPDATE jobs SET status = 'failed_permanent', attempts = 12, finished_at = now(), last_error = 'SDES 401 token expired', error_class = 'auth' WHERE id = ?`, [ids.dead]);
    await db.raw(`UPDATE jobs SET status = 'processing', attempts = 1, claim_token = gen_random_uuid(), started_at = now() - interval '1 hour', heartbeat_at = now() - interval '1 hour' WHERE id = ?`, [ids.stuck]);
  });

  it('prints the counters per kind and in total as JSON', async () => {
    const r = await herald(t.get().url, ['queue', 'status', '--json']);
    expect(r.code, r.stderr).to.equal(0);
    const s = JSON.parse(r.stdout);
    expect(s.total).to.include({ pending: 1, processing: 1, failed: 1, failed_permanent: 1 });
    expect(s.kinds.find((k: { kind: string }) => k.kind === 'notify-hmrc')).to.include({ pending: 1, failed_permanent: 1, oldest_pending_s: null });
  });

  it('lists the live workers (pid, host, jobs held) and says when none is running', async () => {
    const { db, url } = t.get();
    const none = await herald(url, ['queue', 'status']);
    expect(none.code, none.stderr).to.equal(0);
    expect(none.stdout).to.contain('no herald worker is running: start one with `herald worker`');
    const live = await registerWorker(db, { pid: 31337, host: 'worker-host-1', runner: 'worker' });
    const dead = await registerWorker(db, { pid: 31338, host: 'worker-host-2', runner: 'worker' });
    await db.raw(`UPDATE job_workers SET heartbeat_at = now() - interval '1 hour' WHERE id = ?`, [dead]);
    await db.raw(`UPDATE jobs SET worker_id = ? WHERE id = ?`, [live, ids.stuck]);
    try {
      const text = await herald(url, ['queue', 'status']);
      expect(text.stdout).to.match(new RegExp(`1 live worker\\(s\\):\\nworker ${live}\\tworker\\tpid 31337 on worker-host-1\\tup .+\\theartbeat \\d+\\.\\d s ago\\tholding 1 job\\(s\\)\\n`));
      const json = JSON.parse((await herald(url, ['queue', 'status', '--json'])).stdout);
      expect(json.workers.map((w: { id: number; pid: number; host: string; running: number }) => [w.id, w.pid, w.host, w.running])).to.deep.equal([[live, 31337, 'worker-host-1', 1]]);
    } finally {
      await db.raw(`UPDATE jobs SET worker_id = NULL WHERE id = ?`, [ids.stuck]);
      await db.raw(`DELETE FROM job_workers`);
    }
  });

  it('lists jobs filtered by error text and status', async () => {
    const r = await herald(t.get().url, ['queue', 'list', '--error', 'TOKEN', '--status', 'failed_permanent', '--json']);
    expect(r.code, r.stderr).to.equal(0);
    expect(JSON.parse(r.stdout).jobs.map((j: { id: number }) => j.id)).to.deep.equal([ids.dead]);
  });

  it('names the option in one line on bad input', async () => {
    const r = await herald(t.get().url, ['queue', 'list', '--status', 'broken']);
    expect(r.code).to.not.equal(0);
    expect(r.stderr).to.include('--status: must be one of pending, processing, failed, failed_permanent, completed');
    const both = await herald(t.get().url, ['queue', 'retry', '5', '--all-failed']);
    expect(both.stderr.trim()).to.equal('herald: give exactly one of ID, --subject ID, --order-id ID or --all-failed');
  });

  it('retries by order id only the invoice jobs of that order, then unsticks and clears', async () => {
    const { db, url } = t.get();
    const r = await herald(url, ['queue', 'retry', '--order-id', 'ord-42', '--json']);
    expect(r.code, r.stderr).to.equal(0);
    expect(JSON.parse(r.stdout).retried.map((j: { id: number }) => j.id)).to.deep.equal([ids.order]);
    expect(await getJob(db, ids.order)).to.include({ status: 'pending', attempts: 0 });
    expect(await getJob(db, ids.dead), 'another subject is untouched').to.include({ status: 'failed_permanent', attempts: 12 });

    const u = await herald(url, ['queue', 'unstick', '--older-than', '60', '--json']);
    expect(JSON.parse(u.stdout).unstuck.map((j: { id: number }) => j.id)).to.deep.equal([ids.stuck]);
    expect(await getJob(db, ids.stuck)).to.include({ status: 'pending', attempts: 0, stall_count: 1 });

    const c = await herald(url, ['queue', 'clear', String(ids.dead)]);
    expect(c.stdout).to.include(`job ${ids.dead} (notify-hmrc, failed_permanent) deleted`);
    expect(await getJob(db, ids.dead)).to.equal(null);
  });
});
