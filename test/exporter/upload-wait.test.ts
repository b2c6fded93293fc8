import { expect } from 'chai';
import type { ChildProcess } from 'node:child_process';
import { useTestDb } from '../helpers/db.js';
import { spawnHerald } from '../helpers/cli.js';
import { REDIS_URL, redisPrefix, wipeRedisPrefix } from '../helpers/redis.js';
import { waitFor } from '../helpers/wait.js';
import { readyWorkbasket, startExporterEnv, type ExporterEnv } from './support.js';

// Issue 13 item 6: `herald upload --wait` in the README's order (queue first,
// then start a worker) says at once that no worker is running, keeps waiting,
// shows its progress on stderr, and finishes once a worker has done the run.

interface Proc {
  child: ChildProcess;
  out: { stdout: string; stderr: string };
  exited: Promise<number | null>;
}

describe('herald upload --wait (worker registry)', function () {
  this.timeout(180_000);
  const t = useTestDb(import.meta.url);
  const prefix = redisPrefix(import.meta.url);
  let env: ExporterEnv;
  const procs: Proc[] = [];

  function start(args: string[]): Proc {
    const child = spawnHerald(args, { env: { ...env.env, REDIS_URL, REDIS_PREFIX: prefix, HMRC_TIMEOUT_MS: '2000' } });
    const out = { stdout: '', stderr: '' };
    child.stdout!.setEncoding('utf8').on('data', (d: string) => (out.stdout += d));
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (out.stderr += d));
    const exited = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
    const p = { child, out, exited };
    procs.push(p);
    return p;
  }

  before(async () => {
    env = await startExporterEnv(t.get().url);
    await wipeRedisPrefix(prefix);
  });
  after(async () => {
    for (const p of procs) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
    await Promise.all(procs.map((p) => p.exited));
    await env.close();
    await wipeRedisPrefix(prefix);
  });

  it('says at once that no worker is running, keeps waiting with progress on stderr, and ends when a worker did the run', async () => {
    const { db } = t.get();
    await readyWorkbasket(db, 2, { sidBase: 7000 });
    const upload = start(['upload', '--wait', '--timeout', '150']);
    await waitFor('the no-worker notice and a progress line', async () => /no herald worker[^]*upload job/.test(upload.out.stderr), 60_000);
    expect(upload.out.stderr).to.match(/^no herald worker is running: start one with `herald worker`; waiting up to \d+ s\.\.\.\n/);
    expect(upload.out.stderr, 'progress while nothing runs').to.match(/upload job \d+: pending; envelopes 0, in S3 0, notified 0\n/);
    expect(upload.child.exitCode, 'still waiting').to.equal(null);

    const worker = start(['worker', '--grace', '1000']);
    expect(await upload.exited, upload.out.stderr).to.equal(0);
    expect(upload.out.stderr).to.match(new RegExp(`a herald worker is running now \\(pid ${worker.child.pid} on .+\\)\\n`));
    expect(upload.out.stderr).to.match(/upload job \d+: completed; envelopes 1, in S3 1, notified 1\n$/);
    expect(upload.out.stdout).to.match(/envelope \d{6}\s+DIT\d{6}\.xml.*uploaded\s+notified/);

    // With a worker alive and --json: no notice, no progress, only the JSON.
    await readyWorkbasket(db, 1, { sidBase: 8000 });
    const quiet = start(['upload', '--wait', '--json', '--timeout', '150']);
    expect(await quiet.exited, quiet.out.stderr).to.equal(0);
    expect(JSON.parse(quiet.out.stdout)).to.include({ ok: true, jobStatus: 'completed' });
    expect(quiet.out.stderr).to.not.match(/no herald worker|upload job/);

    worker.child.kill('SIGTERM');
    expect(await worker.exited).to.equal(0);
  });
});
