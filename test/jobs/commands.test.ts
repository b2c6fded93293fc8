import { expect } from 'chai';
import { spawn, spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { useTestDb } from '../helpers/db.js';
import { enqueueJob } from '../../src/jobs/store/enqueue.js';
import { getJob } from '../../src/jobs/store/runs.js';
import './kinds.js';
import { REDIS_URL, redisPrefix, waitFor, wipeRedisPrefix } from './support.js';

// `herald worker` as a real process: help, bad input, signals, JSON summary.

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const HERALD = ['--import', 'tsx', 'src/cli/main.ts'];

describe('jobs.commands (herald worker)', () => {
  const t = useTestDb(import.meta.url);
  const prefix = redisPrefix(import.meta.url);
  after(async () => wipeRedisPrefix(prefix));

  it('documents its options in --help', () => {
    const out = spawnSync(process.execPath, [...HERALD, 'worker', '--help'], { cwd: ROOT, encoding: 'utf8' });
    expect(out.status).to.equal(0);
    expect(out.stdout).to.contain('--concurrency <n>').and.contain('--grace <ms>').and.contain('--json').and.contain('SIGTERM');
  });

  it('refuses a bad --concurrency with one line naming the option', () => {
    const out = spawnSync(process.execPath, [...HERALD, 'worker', '--concurrency', '0'], { cwd: ROOT, encoding: 'utf8' });
    expect(out.status).to.not.equal(0);
    expect(out.stderr.trim().split('\n')[0]).to.match(/--concurrency: must be a whole number from 1 to 500, got "0"/);
  });

  it('runs queued work, stops on SIGTERM (twice is fine) and prints its counts as JSON', async function () {
    this.timeout(60_000);
    const { db, url } = t.get();
    // No capability registers 'test-record', so the worker must fail it as an unknown kind: proof it claimed it.
    const { id } = await enqueueJob(db, 'test-record', { tag: 'cli' });
    const env = { ...process.env, DATABASE_URL: url, REDIS_URL, REDIS_PREFIX: prefix, LOG_LEVEL: 'info', JOBS_SWEEP_INTERVAL_MS: '1000' };
    const child = spawn(process.execPath, [...HERALD, 'worker', '--json', '--concurrency', '2'], { cwd: ROOT, env });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += String(d)));
    child.stderr.on('data', (d: Buffer) => (stderr += String(d)));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    await waitFor('worker started', async () => stderr.includes('worker started'), 30_000);
    await waitFor('the job to be claimed', async () => (await getJob(db, id))?.status === 'failed_permanent', 10_000);
    expect((await getJob(db, id))!.last_error).to.contain('unknown job kind "test-record"');
    child.kill('SIGTERM');
    child.kill('SIGTERM');
    // Nothing is running, so it must exit at once, not after the 30 s default grace.
    const hung = new Promise<string>((resolve) => setTimeout(() => resolve('still running 15 s after SIGTERM'), 15_000).unref());
    expect(await Promise.race([exited, hung])).to.equal(0);
    const summary = JSON.parse(stdout);
    expect(summary.stopped).to.equal(true);
    // At least ours (the failure hooks registered for the worker may enqueue and run more jobs).
    expect(summary.failed_permanent).to.be.at.least(1);
    expect(stderr).to.contain('finishing running jobs').and.contain('stopped');
  });
});
