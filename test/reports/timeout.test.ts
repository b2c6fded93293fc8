import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import type { Knex } from 'knex';
import { useTestDb } from '../helpers/db.js';
import type { Config } from '../../src/config.js';
import type { JobDefinition } from '../../src/jobs/contract/types.js';
import { createJobRunner, openJobRunnerCount, type JobRunner, type JobRunnerOptions } from '../../src/jobs/runtime/runner.js';
import { createReport } from '../../src/reports/create.js';
import { reportJobs } from '../../src/reports/jobs.js';
import { createReportServices } from '../../src/reports/services.js';
import { getReport, type ReportRow } from '../../src/reports/store.js';
import { createS3Storage, s3OptionsFromConfig, type S3Storage } from '../../src/storage/s3.js';
import { quietLog, REDIS_URL, reportConfig, seedUpload, startS3, waitFor, wipeRedisPrefix, type S3Sandbox } from './support.js';
import { redisPrefix } from '../helpers/redis.js';

// The timeout with the real worker: real Postgres, real Redis (bee-queue
// bells under this file's own key prefix), real S3 server. A generation is
// kept from finishing by a real lock on the uploads table, held by the test,
// so the report is genuinely RUNNING when its deadline comes.

const TIMEOUT_MS = 1500;
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** The S3 and report settings of `config` as the env a child process reads them from. */
function configEnv(config: Config): Record<string, string> {
  const keys = ['S3_ENDPOINT', 'S3_BUCKET', 'S3_ACCESS_KEY_ID', 'S3_SECRET_ACCESS_KEY', 'S3_FORCE_PATH_STYLE', 'S3_CHECKSUM_WHEN_REQUIRED', 'REPORTS_UPLOADS_TIMEOUT_MS'] as const;
  return Object.fromEntries(keys.map((k) => [k, String(config[k])]));
}

describe('reports timeout (worker, Redis, S3)', function () {
  this.timeout(120_000);
  const t = useTestDb(import.meta.url);
  const prefix = redisPrefix(import.meta.url);
  let s3: S3Sandbox;
  let config: Config;
  let storage: S3Storage;
  let definitions: JobDefinition[];
  let runners: JobRunner[] = [];
  const children = new Set<ChildProcess>();
  let lock: { trx: Knex.Transaction; release(): Promise<void> } | undefined;

  before(async () => {
    s3 = await startS3();
    config = reportConfig(s3.server, { REPORTS_UPLOADS_TIMEOUT_MS: String(TIMEOUT_MS), REPORTS_EXPIRE_INTERVAL_MS: '1000' });
    storage = createS3Storage(s3OptionsFromConfig(config));
    const services = createReportServices(config, { storage });
    definitions = reportJobs(config, () => services);
    await seedUpload(t.get().db, { counter: 1, uploadedAt: '2026-03-01T10:00:00Z', workbaskets: ['Spring duties'], firstTaricId: 1 });
  });
  after(async () => {
    storage.close();
    await s3.close();
    await wipeRedisPrefix(prefix);
  });
  beforeEach(async () => {
    await t.get().db.raw('TRUNCATE reports, jobs CASCADE');
    await wipeRedisPrefix(prefix);
    s3.server.reset();
  });
  afterEach(async () => {
    for (const child of children) child.kill('SIGKILL');
    await lock?.release();
    lock = undefined;
    await Promise.all(runners.map((r) => r.stop({ graceMs: 5000 })));
    runners = [];
    expect(openJobRunnerCount(), 'a runner was left running').to.equal(0);
  });

  async function startRunner(extra: Partial<JobRunnerOptions> = {}): Promise<JobRunner> {
    const runner = createJobRunner({
      db: t.get().db, definitions, redis: { url: REDIS_URL, prefix }, concurrency: 4, log: quietLog,
      sweepIntervalMs: 60_000, stallIntervalMs: 1000, abortGraceMs: 200, ...extra,
    });
    runners.push(runner);
    await runner.start();
    return runner;
  }

  /** A real `herald worker` process on this database and Redis prefix; resolves once it LISTENs. */
  async function startChildWorker(extraEnv: Record<string, string> = {}) {
    // node itself (not npx, whose shell would survive a SIGKILL sent to it and keep the worker alive).
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'worker', '--concurrency', '2'], {
      cwd: ROOT,
      env: {
        ...process.env, ...configEnv(config), DATABASE_URL: t.get().url, REDIS_URL, REDIS_PREFIX: prefix, LOG_LEVEL: 'warn',
        JOBS_SWEEP_INTERVAL_MS: '60000', ...extraEnv,
      },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    children.add(child);
    child.once('exit', () => children.delete(child));
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<NodeJS.Signals | null>((resolve) => child.once('exit', (_code, signal) => resolve(signal)));
    try {
      // A cold start takes 5-15 s on this shared machine: callers ask once it listens.
      await waitFor('the worker to LISTEN', async () => {
        const { rows } = await t.get().db.raw(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND query ILIKE 'LISTEN%'`);
        return rows[0].n > 0;
      }, 90_000);
    } catch (err) {
      child.kill('SIGKILL');
      throw new Error(`worker did not start: ${stderr}`, { cause: err });
    }
    return { child, exited, stderr: () => stderr };
  }

  /** Holds ACCESS EXCLUSIVE on uploads in an open transaction: the report's page query waits on it. */
  async function lockUploads(): Promise<void> {
    const trx = await t.get().db.transaction();
    await trx.raw('LOCK TABLE uploads IN ACCESS EXCLUSIVE MODE');
    let released = false;
    lock = {
      trx,
      async release() {
        if (released) return;
        released = true;
        await trx.commit();
      },
    };
  }

  const ask = async () => (await createReport(t.get().db, { type: 'uploads', params: { from: '2026-03-01', to: '2026-03-31' }, creator: 'test' }, { config })).report;
  const reload = async (r: ReportRow) => (await getReport(t.get().db, r.id))!;
  const jobOf = async (r: ReportRow, kind: string) => t.get().db('jobs').where({ kind, subject_id: r.id }).first();
  /** The generation is claimed and its page query is waiting on our lock. */
  const generationBlocked = (timeoutMs = 15_000) =>
    waitFor('the generation to wait on the uploads lock', async () => {
      const { rows } = await t.get().db.raw(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE '%FROM uploads u%'`);
      return rows[0].n > 0;
    }, timeoutMs);

  it('succeeds well within the timeout when nothing is in the way', async () => {
    await startRunner();
    const report = await ask();
    const done = await waitFor('SUCCESS', async () => {
      const r = await reload(report);
      return r.status !== 'running' && r;
    });
    expect(done).to.include({ status: 'success', row_count: 1 });
    expect((await storage.headObject(done.file_key!))!.size).to.equal(done.file_size);
  });

  it('fails a stuck report "timed out" at its deadline; the generation gives up then and uploads nothing', async () => {
    await lockUploads();
    await startRunner();
    const report = await ask();
    await generationBlocked();
    expect((await reload(report)).status).to.equal('running');
    const failed = await waitFor('FAIL', async () => {
      const r = await reload(report);
      return r.status !== 'running' && r;
    }, 10_000);
    expect(failed).to.include({ status: 'fail', error_message: 'timed out after 1500 ms', file_key: null });
    expect(new Date(failed.finished_at!).getTime()).to.be.at.least(new Date(failed.deadline_at).getTime());
    // Both jobs end: the timeout's CAS and the generation stopping at the same deadline (its query still waits on the lock).
    await waitFor('both jobs to complete', async () =>
      (await jobOf(report, 'report-timeout')).status === 'completed' && (await jobOf(report, 'report-generate')).status === 'completed');
    await lock!.release();
    await waitFor('the abandoned page query to finish', async () => {
      const { rows } = await t.get().db.raw(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE '%FROM uploads u%'`);
      return rows[0].n === 0;
    });
    expect(await reload(report)).to.deep.equal(failed);
    expect(s3.server.requests().filter((r) => r.method === 'PUT')).to.deep.equal([]);
  });

  it('discards a generation that finishes after its report ended: no upload, no change', async () => {
    await lockUploads();
    await startRunner();
    const report = await ask();
    await generationBlocked();
    // Ended by someone else while the page query waits (e.g. a timeout job on a faster clock).
    const { failReport } = await import('../../src/reports/store.js');
    const ended = (await failReport(t.get().db, report.id, 'ended elsewhere'))!;
    await lock!.release();
    await waitFor('the generation to finish', async () => (await jobOf(report, 'report-generate')).status === 'completed');
    expect(await reload(report)).to.deep.equal(ended);
    expect(s3.server.requests().filter((r) => r.method === 'PUT')).to.deep.equal([]);
  });

  it('fails a RUNNING report at its timeout after its worker died and Redis was flushed, through the sweeper', async () => {
    await lockUploads();
    // A real `herald worker` process...
    const worker = await startChildWorker();
    let report: ReportRow;
    try {
      // ...claims the generation, which waits on our lock...
      report = await ask();
      await generationBlocked().catch((err: unknown) => {
        throw new Error(`worker never ran the generation: ${worker.stderr()}`, { cause: err });
      });
      expect((await jobOf(report, 'report-generate')).status).to.equal('processing');
    } finally {
      // ...then dies with everything it held in memory (timers, the generation's own deadline).
      worker.child.kill('SIGKILL');
    }
    expect(await worker.exited).to.equal('SIGKILL');
    // And Redis loses every bell.
    expect(await wipeRedisPrefix(prefix), 'Redis held the bells').to.be.greaterThan(0);
    expect((await reload(report)).status).to.equal('running');
    // A fresh worker never heard of the timeout job: only its sweeper can find it when due.
    await startRunner({ sweepIntervalMs: 200 });
    const failed = await waitFor('FAIL', async () => {
      const r = await reload(report);
      return r.status !== 'running' && r;
    }, 10_000);
    expect(failed).to.include({ status: 'fail', error_message: 'timed out after 1500 ms', file_key: null });
    const late = new Date(failed.finished_at!).getTime() - new Date(failed.deadline_at).getTime();
    expect(late).to.be.within(0, 3000);
    // The dead worker's generation stays claimed until the sweeper calls it stalled (3x its timeout); the report did not wait for that.
    expect((await jobOf(report, 'report-generate')).status).to.equal('processing');
  });

  it('fails an overdue report whose jobs were all lost, through the reports-expire sweep', async () => {
    const report = await ask();
    // Cleared by an operator, or never written (a row inserted by hand): only the sweep is left.
    await t.get().db('jobs').whereIn('kind', ['report-generate', 'report-timeout']).where({ subject_id: report.id }).delete();
    // Started after the sweep row's NOTIFY: the jobs sweeper rings it when due.
    await startRunner({ sweepIntervalMs: 200 });
    const failed = await waitFor('FAIL', async () => {
      const r = await reload(report);
      return r.status !== 'running' && r;
    }, 10_000);
    expect(failed).to.include({ status: 'fail', error_message: 'timed out after 1500 ms' });
    const sweep = await t.get().db('jobs').where({ kind: 'reports-expire' }).first();
    await waitFor('the sweep to snooze', async () => (await t.get().db('job_attempts').where({ job_id: sweep.id, outcome: 'snoozed' })).length > 0);
    // It never completes: it comes back every REPORTS_EXPIRE_INTERVAL_MS.
    const again = await t.get().db('jobs').where({ id: sweep.id }).first();
    expect(again.status).to.be.oneOf(['pending', 'processing']);
    expect(again.finished_at).to.equal(null);
  });

  it('times out once, leaving no file, a report whose worker died right after uploading (crash point reports.after-upload)', async () => {
    const worker = await startChildWorker({ HERALD_CRASH_AT: 'reports.after-upload' });
    const report = await ask();
    expect(await worker.exited, worker.stderr()).to.equal('SIGKILL');
    const key = `reports/uploads/${report.id}.csv`;
    expect(await storage.headObject(key), 'the file was uploaded before the crash').to.not.equal(null);
    expect((await reload(report)).status).to.equal('running');
    await startRunner({ sweepIntervalMs: 200 });
    const failed = await waitFor('FAIL', async () => {
      const r = await reload(report);
      return r.status !== 'running' && r;
    }, 10_000);
    expect(failed).to.include({ status: 'fail', error_message: 'timed out after 1500 ms', file_key: null });
    await waitFor('the orphaned file to be removed', async () => (await storage.headObject(key)) === null);
    expect(await t.get().db('reports').count<{ n: number }[]>({ n: '*' })).to.deep.equal([{ n: 1 }]);
    expect((await jobOf(report, 'report-generate')).status, 'the dead run keeps its claim until the sweeper calls it stalled').to.equal('processing');
  });
});
