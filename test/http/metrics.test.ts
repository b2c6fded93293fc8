import { expect } from 'chai';
import type { FastifyInstance } from 'fastify';
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
  const serve = async (env: Record<string, string> = {}) => {
    const app = await buildServer({ db: t.get().db, config: loadConfig({ REDIS_URL, ...env }), log: quietLog, processMetrics: false, plugins: [] });
    apps.push(app);
    return app;
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

  it('answers /healthz always and /readyz only while Postgres and Redis answer', async () => {
    const ok = await serve();
    expect((await ok.inject({ url: '/healthz' })).json()).to.deep.equal({ status: 'ok' });
    const ready = await ok.inject({ url: '/readyz' });
    expect(ready.statusCode).to.equal(200);
    expect(ready.json()).to.deep.include({ status: 'ready' });
    expect(ready.json().checks).to.deep.equal({ postgres: { ok: true }, redis: { ok: true } });

    const noRedis = await serve({ REDIS_URL: 'redis://127.0.0.1:1' });
    const res = await noRedis.inject({ url: '/readyz' });
    expect(res.statusCode).to.equal(503);
    expect(res.json().checks.postgres).to.deep.equal({ ok: true });
    expect(res.json().checks.redis.ok).to.equal(false);
    expect((await noRedis.inject({ url: '/healthz' })).statusCode, 'the process itself is up').to.equal(200);
  });
});
