import { expect } from 'chai';
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Knex } from 'knex';
import { useTestDb } from '../helpers/db.js';
import { REDIS_URL, redisPrefix, wipeRedisPrefix } from '../helpers/redis.js';
import { startExporterEnv, readyWorkbasket, bucketContents, waitFor, type ExporterEnv } from './support.js';

// Real `herald worker` processes, killed with SIGKILL at the four points the
// upload pipeline can die at: (a) envelopes stored, nothing in S3; (b) in the
// middle of the S3 put; (c) object in S3, notification not queued; (d) during
// the HMRC call. A fresh worker must then finish everything: each envelope in
// S3 once with the stored checksum, each upload notified with its stored
// correlation id, ids contiguous, nothing duplicated. Redis keys are under this
// file's own prefix, so wiping them disturbs no other file or suite.

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

interface Worker {
  child: ChildProcess;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

describe('exporter crash safety (SIGKILL)', function () {
  this.timeout(120_000);
  const t = useTestDb(import.meta.url);
  const prefix = redisPrefix(import.meta.url);
  let env: ExporterEnv;
  const live: Worker[] = [];

  function spawnWorker(crashAt = ''): Worker {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'worker', '--concurrency', '4', '--grace', '1000'], {
      cwd: ROOT,
      env: {
        ...process.env,
        ...env.env,
        REDIS_URL,
        REDIS_PREFIX: prefix,
        HERALD_CRASH_AT: crashAt,
        // Short timeouts so the sweeper calls a dead worker's job stuck within seconds.
        EXPORTER_EXPORT_TIMEOUT_MS: '1500',
        S3_TIMEOUT_MS: '1000',
        HMRC_TIMEOUT_MS: '1000',
        JOBS_SWEEP_INTERVAL_MS: '200',
        EXPORTER_MAX_ENVELOPE_SIZE: '8000',
      },
      stdio: ['ignore', 'ignore', process.env.TEST_LOG_LEVEL ? 'inherit' : 'ignore'],
    });
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
    const w = { child, exited };
    live.push(w);
    return w;
  }

  beforeEach(async () => {
    env = await startExporterEnv(t.get().url);
    await t.get().db.raw('TRUNCATE uploads, envelope_transactions, envelopes, records, transactions, workbaskets, job_attempts, jobs RESTART IDENTITY CASCADE');
    // Only this file's keys: other files and other suites share this Redis.
    await wipeRedisPrefix(prefix);
  });
  afterEach(async () => {
    for (const w of live.splice(0)) {
      if (w.child.exitCode === null && w.child.signalCode === null) w.child.kill('SIGKILL');
      await w.exited;
    }
    await env.close();
  });

  /** Several workbaskets, small envelopes: a run that makes several envelopes. */
  async function seed(db: Knex): Promise<void> {
    await db.raw(`SELECT 1`);
    await readyWorkbasket(db, 12, { sidBase: 1000, descriptionBytes: 600 });
    await readyWorkbasket(db, 12, { sidBase: 2000, descriptionBytes: 600 });
  }

  async function allNotified(db: Knex): Promise<boolean> {
    const { rows } = await db.raw(
      `SELECT (SELECT count(*) FROM envelopes)::int AS envelopes,
              (SELECT count(*) FROM uploads WHERE notification_sent IS NOT NULL)::int AS notified,
              (SELECT count(*) FROM workbaskets WHERE status <> 'SENT')::int AS unsent`,
    );
    return rows[0].envelopes > 0 && rows[0].notified === rows[0].envelopes && rows[0].unsent === 0;
  }

  async function checkEverythingDeliveredOnce(db: Knex): Promise<void> {
    const envelopes = await db('envelopes').orderBy('id');
    expect(envelopes.length, 'several envelopes').to.be.greaterThan(1);
    expect(envelopes.map((e) => e.counter), 'envelope ids contiguous').to.deep.equal(envelopes.map((_, i) => i + 1));
    const taric = await db('envelope_transactions').orderBy('taric_transaction_id').pluck('taric_transaction_id');
    expect(taric, 'TARIC transaction ids contiguous').to.deep.equal(taric.map((_, i) => i + 1));
    const { rows } = await db.raw(`SELECT count(*)::int AS n FROM transactions`);
    expect(taric.length, 'every transaction in exactly one envelope').to.equal(rows[0].n);

    const uploads = await db('uploads').orderBy('id');
    expect(uploads.map((u) => u.envelope_id)).to.deep.equal(envelopes.map((e) => e.id));
    const objects = await bucketContents(env.config());
    expect([...objects.keys()].sort(), 'exactly one object per envelope').to.deep.equal(uploads.map((u) => u.key).sort());
    for (const u of uploads) expect(objects.get(u.key), `checksum of ${u.key}`).to.equal(u.checksum);

    const notes = env.hmrc.notifications();
    const known = new Set(uploads.map((u) => u.correlation_id));
    for (const n of notes) expect(known.has(n.correlationID), `notification ${n.correlationID} belongs to an upload`).to.equal(true);
    for (const u of uploads) {
      const mine = notes.filter((n) => n.correlationID === u.correlation_id);
      expect(mine.length, `upload ${u.id} notified at least once`).to.be.greaterThan(0);
      for (const n of mine) expect(n.file).to.deep.equal({ fileName: u.file_name, fileSize: Number(u.file_size), checksum: u.checksum, checksumAlgorithm: 'MD5' });
    }
  }

  async function killAt(point: string): Promise<void> {
    const { db } = t.get();
    await seed(db);
    const doomed = spawnWorker(point);
    expect(await doomed.exited).to.deep.equal({ code: null, signal: 'SIGKILL' });
    spawnWorker();
    await waitFor('every envelope uploaded and notified', () => allNotified(db), 90_000);
    await checkEverythingDeliveredOnce(db);
  }

  it('(a) finishes the run when killed after the envelopes are stored, before S3', async () => {
    await killAt('exporter.after-export');
  });

  it('(c) finishes the run when killed after the S3 put, before the notification is queued', async () => {
    await killAt('exporter.after-s3-put');
  });

  it('(b) finishes the run when killed in the middle of an S3 put', async () => {
    const { db } = t.get();
    env.s3.inject({ type: 'latency', ms: 60_000, match: 'PUT', times: 1 });
    await seed(db);
    const doomed = spawnWorker();
    await waitFor('a PUT to reach S3', async () => env.s3.requests().some((r) => r.method === 'PUT' && r.fault === 'latency'), 60_000);
    doomed.child.kill('SIGKILL');
    await doomed.exited;
    spawnWorker();
    await waitFor('every envelope uploaded and notified', () => allNotified(db), 90_000);
    await checkEverythingDeliveredOnce(db);
  });

  it('(d) finishes the run when killed during the HMRC call, notifying again with the same correlation id', async () => {
    const { db } = t.get();
    env.hmrc.inject({ type: 'hang', match: 'notify', times: 1 });
    await seed(db);
    const doomed = spawnWorker();
    await waitFor('a notification to reach HMRC', async () => env.hmrc.requests().some((r) => r.route === 'notify' && r.fault === 'hang'), 60_000);
    const hung = env.hmrc.requests().find((r) => r.fault === 'hang')!.body as { correlationID: string };
    doomed.child.kill('SIGKILL');
    await doomed.exited;
    spawnWorker();
    await waitFor('every envelope uploaded and notified', () => allNotified(db), 90_000);
    await checkEverythingDeliveredOnce(db);
    expect(env.hmrc.notifications().some((n) => n.correlationID === hung.correlationID), 'the interrupted one was sent again with its id').to.equal(true);
  });

  it('completes all work when Redis loses every key mid-run', async () => {
    const { db } = t.get();
    env.hmrc.inject({ type: 'latency', ms: 300, match: 'notify', times: 50 });
    await seed(db);
    spawnWorker();
    await waitFor('the first envelope in S3', async () => env.s3.requests().some((r) => r.method === 'PUT'), 60_000);
    // Only this file's keys: other files and other suites share this Redis.
    await wipeRedisPrefix(prefix);
    await waitFor('every envelope uploaded and notified', () => allNotified(db), 90_000);
    await checkEverythingDeliveredOnce(db);
  });
});
