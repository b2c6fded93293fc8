import { expect } from 'chai';
import type { FastifyInstance } from 'fastify';
import knexFactory, { type Knex } from 'knex';
import pino from 'pino';
import { closedPort } from '../helpers/ports.js';
import { loadConfig } from '../../src/config.js';
import { buildServer } from '../../src/http/server.js';
import { enqueueJob } from '../../src/jobs/store/enqueue.js';
import { useTestDb } from '../helpers/db.js';
import { REDIS_URL, quietLog } from '../jobs/support.js';

describe('metrics and health', () => {
  const t = useTestDb(import.meta.url);
  const apps: FastifyInstance[] = [];
  afterEach(async () => {
    for (const a of apps.splice(0)) await a.close();
  });
  const serve = async (env: Record<string, string> = {}, opts: { db?: Knex; log?: pino.Logger } = {}) => {
    const app = await buildServer({ db: opts.db ?? t.get().db, config: loadConfig({ REDIS_URL, METRICS_CACHE_MS: '0', ...env }), log: opts.log ?? quietLog, processMetrics: false, plugins: [] });
    apps.push(app);
    return app;
  };
  /** A logger whose lines the test reads. */
  const capturing = () => {
    const lines: Record<string, unknown>[] = [];
    return { lines, log: pino({ level: 'info', serializers: { err: pino.stdSerializers.err } }, { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) }) };
  };
  /** Counts the statements a knex instance sends. */
  const counting = (db: Knex) => {
    let n = 0;
    const on = () => void (n += 1);
    db.on('query', on);
    return { get: () => n, stop: () => void db.off('query', on) };
  };

  it('reports job counts by kind and status, the oldest pending age, attempts, durations and HTTP latencies', async () => {
    const { db } = t.get();
    const a = await enqueueJob(db, 'notify-hmrc', { uploadId: 1 });
    await enqueueJob(db, 'notify-hmrc', { uploadId: 2 });
    const c = await enqueueJob(db, 'upload-envelope', { uploadId: 3 });
    await db.raw(`UPDATE jobs SET scheduled_at = now() - interval '90 seconds' WHERE id = ?`, [a.id]);
    await db.raw(`UPDATE jobs SET status = 'failed_permanent', finished_at = now(), attempts = 2 WHERE id = ?`, [c.id]);
    const app = await serve();
    await app.inject({ url: '/healthz' }); // one request for the latency histogram
    // A run recorded after the first scrape is fed into the counters at the next.
    await app.inject({ url: '/metrics' });
    await db.raw(
      `INSERT INTO job_attempts (job_id, attempt, started_at, finished_at, outcome, error_class, error, duration_ms)
       VALUES (?, 2, now(), now(), 'failed_permanent', 'permanent', '400', 1500)`,
      [c.id],
    );
    const res = await app.inject({ url: '/metrics' });
    expect(res.statusCode).to.equal(200);
    const text = res.body;
    expect(text).to.match(/herald_jobs\{kind="notify-hmrc",status="pending"\} 2/);
    expect(text).to.match(/herald_jobs\{kind="upload-envelope",status="failed_permanent"\} 1/);
    const age = Number(text.match(/herald_jobs_oldest_pending_age_seconds\{kind="notify-hmrc"\} ([\d.]+)/)?.[1]);
    expect(age).to.be.within(89, 200);
    expect(text).to.match(/herald_job_attempts_total\{kind="upload-envelope",outcome="failed_permanent"\} 1/);
    expect(text).to.match(/herald_job_duration_seconds_bucket\{le="2.5",kind="upload-envelope"\} 1/);
    expect(text).to.match(/herald_job_duration_seconds_bucket\{le="1",kind="upload-envelope"\} 0/);
    expect(text).to.match(/herald_http_request_duration_seconds_count\{method="GET",route="\/healthz",status_code="200"\} 1/);
    expect(text).to.include('herald_envelope_bytes_count 0');
  });

  it('answers /healthz always and /readyz only while Postgres and Redis answer, naming the failing one and nothing about it', async () => {
    const ok = await serve();
    expect((await ok.inject({ url: '/healthz' })).json()).to.deep.equal({ status: 'ok' });
    const ready = await ok.inject({ url: '/readyz' });
    expect(ready.statusCode).to.equal(200);
    expect(ready.json()).to.deep.equal({ status: 'ready', checks: { postgres: { ok: true }, redis: { ok: true } } });

    const port = await closedPort();
    const { lines, log } = capturing();
    const noRedis = await serve({ REDIS_URL: `redis://herald-user:hunter2@127.0.0.1:${port}` }, { log });
    const res = await noRedis.inject({ url: '/readyz' });
    expect(res.statusCode).to.equal(503);
    expect(res.json()).to.deep.equal({ status: 'unavailable', failing: ['redis'], checks: { postgres: { ok: true }, redis: { ok: false } } });
    expect(res.body).to.not.include(String(port)).and.not.include('ECONNREFUSED').and.not.include('hunter2');
    await noRedis.inject({ url: '/readyz' });
    const warned = lines.filter((l) => l.dependency === 'redis');
    expect(warned, 'logged once while it keeps failing').to.have.length(1);
    expect(JSON.stringify(warned[0]), "the detail is in the log").to.match(/"err":\{"type":"\w+","message":"[^"]+/);
    expect((await noRedis.inject({ url: '/healthz' })).statusCode, 'the process itself is up').to.equal(200);

    const downDb = knexFactory({ client: 'pg', connection: `postgres://postgres:secret-pw@127.0.0.1:${port}/nowhere`, pool: { min: 0, max: 1 }, acquireConnectionTimeout: 3000 });
    try {
      const noPg = await serve({}, { db: downDb });
      const r = await noPg.inject({ url: '/readyz' });
      expect([r.statusCode, r.json().failing]).to.deep.equal([503, ['postgres']]);
      expect(r.body).to.not.include('secret-pw').and.not.include(String(port)).and.not.include('nowhere');
    } finally {
      await downDb.destroy();
    }
  });

  describe('GET /metrics protection and cache', () => {
    const TOKEN = 'metrics-token-0123456789';

    it('with METRICS_TOKEN, answers 401 in the error shape without the Bearer token or with another, 200 with it', async () => {
      const app = await serve({ METRICS_TOKEN: TOKEN });
      for (const authorization of [undefined, `Bearer ${TOKEN}x`, `Bearer ${TOKEN.slice(0, -1)}`, TOKEN, `Basic ${TOKEN}`]) {
        const res = await app.inject({ url: '/metrics', headers: authorization ? { authorization } : {} });
        expect(res.statusCode, String(authorization)).to.equal(401);
        expect(res.json()).to.deep.include({ code: 'UNAUTHORIZED', field: 'authorization' });
      }
      const res = await app.inject({ url: '/metrics', headers: { authorization: `bearer ${TOKEN}` } });
      expect(res.statusCode).to.equal(200);
      expect(res.body).to.include('herald_jobs');
      expect((await (await serve()).inject({ url: '/metrics' })).statusCode, 'unset: public').to.equal(200);
      expect(() => loadConfig({ METRICS_TOKEN: 'short' })).to.throw(/METRICS_TOKEN: must be at least 16 characters/);
    });

    it('reads the database once per METRICS_CACHE_MS, one refresh shared by concurrent scrapes', async () => {
      const { db } = t.get();
      await enqueueJob(db, 'providers-cleanup', {}, { dedupeKey: 'metrics-test-1' });
      // What one refresh costs, on a server of its own.
      const one = counting(db);
      await (await serve({ METRICS_CACHE_MS: '3600000' })).inject({ url: '/metrics' });
      one.stop();
      expect(one.get()).to.be.above(0);

      const app = await serve({ METRICS_CACHE_MS: '3600000' });
      const many = counting(db);
      const answers = await Promise.all(Array.from({ length: 20 }, () => app.inject({ url: '/metrics' })));
      many.stop();
      expect(answers.map((a) => a.statusCode)).to.deep.equal(Array(20).fill(200));
      expect(many.get(), '20 concurrent scrapes, one refresh').to.equal(one.get());
      expect(answers[0]!.body).to.match(/herald_jobs\{kind="providers-cleanup",status="pending"\} 1/);

      // Within the window: the previous figures, no statement.
      await enqueueJob(db, 'providers-cleanup', {}, { dedupeKey: 'metrics-test-2' });
      const later = counting(db);
      const cached = await app.inject({ url: '/metrics' });
      later.stop();
      expect(later.get()).to.equal(0);
      expect(cached.body).to.match(/herald_jobs\{kind="providers-cleanup",status="pending"\} 1/);
      // With no window, every scrape reads again.
      expect((await (await serve()).inject({ url: '/metrics' })).body).to.match(/herald_jobs\{kind="providers-cleanup",status="pending"\} 2/);
    });

    it('serves the previous figures when a refresh fails, 503 without any; never the error text', async () => {
      const own = knexFactory({ client: 'pg', connection: t.get().url, pool: { min: 0, max: 2 } });
      const app = await serve({}, { db: own });
      expect((await app.inject({ url: '/metrics' })).statusCode).to.equal(200);
      await own.destroy();
      const stale = await app.inject({ url: '/metrics' });
      expect(stale.statusCode).to.equal(200);
      expect(stale.body).to.match(/herald_metrics_refresh_failures_total 1/);

      const port = await closedPort();
      const down = knexFactory({ client: 'pg', connection: `postgres://postgres@127.0.0.1:${port}/x`, pool: { min: 0, max: 1 }, acquireConnectionTimeout: 3000 });
      try {
        const res = await (await serve({}, { db: down })).inject({ url: '/metrics' });
        expect(res.statusCode).to.equal(503);
        expect(res.json().code).to.equal('UNAVAILABLE');
        expect(res.body).to.not.include(String(port));
      } finally {
        await down.destroy();
      }
    });
  });
});
