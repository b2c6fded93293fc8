import autocannon from 'autocannon';
import knexFactory from 'knex';
import { loadConfig } from '../../src/config.js';
import '../../src/db/index.js';
import { migrateLatest } from '../../src/db/migrate.js';
import { buildServer } from '../../src/http/server.js';
import { createLogger } from '../../src/log.js';
import { admin, arg, dbUrl, finish, loadGuard } from './support.js';

// npx tsx scripts/bench/metrics.ts [--jobs 200000 --scrapes 200 --connections 10]
//
// GET /metrics under scrapers that do not wait their turn: --jobs rows in
// the jobs table (six kinds, every status, a fifth pending and due), one
// job_attempts row per ten jobs in the last hour, then --scrapes requests at
// --connections at once (autocannon, in this process with the server).
// Prints the median / p99 latency, the scrapes/s, how many database
// statements the scrapes cost (counted by knex's query event), the load
// average and the closing JSON line. Target: no statement within one
// METRICS_CACHE_MS window (the first scrape refreshed), median < 50 ms.
// docs/decisions/0014.
// Env: BENCH_DATABASE_URL (admin connection), METRICS_CACHE_MS passes through.

const DB_NAME = `herald_bench_metrics_${process.pid}`;
const jobs = arg('jobs', 200_000);
const scrapes = arg('scrapes', 200);
const connections = arg('connections', 10);

await admin(`CREATE DATABASE ${DB_NAME}`);
const db = knexFactory({ client: 'pg', connection: dbUrl(DB_NAME), pool: { min: 0, max: 10 } });
try {
  await migrateLatest(db);
  await db.raw(
    `INSERT INTO jobs (kind, payload, status, scheduled_at, attempts, finished_at)
     SELECT (ARRAY['notify-hmrc', 'upload-envelope', 'provider-submit', 'provider-poll', 'report-generate', 'failure-mail'])[1 + g % 6],
            '{}'::jsonb,
            CASE WHEN g % 5 = 0 THEN 'pending' ELSE 'completed' END,
            now() - (g % 600) * interval '1 second', 1,
            CASE WHEN g % 5 = 0 THEN NULL ELSE now() END
       FROM generate_series(1, ?) g`,
    [jobs],
  );
  await db.raw(
    `INSERT INTO job_attempts (job_id, attempt, started_at, finished_at, outcome, duration_ms)
     SELECT id, 1, now() - interval '10 minutes', now() - interval '9 minutes', 'completed', 1000 FROM jobs WHERE id % 10 = 0`,
  );
  await db.raw('ANALYZE');
  let statements = 0;
  db.on('query', () => void (statements += 1));

  const config = loadConfig({ DATABASE_URL: dbUrl(DB_NAME), LOG_LEVEL: 'error', ...(process.env.METRICS_CACHE_MS ? { METRICS_CACHE_MS: process.env.METRICS_CACHE_MS } : {}) });
  const app = await buildServer({ db, config, log: createLogger('error'), plugins: [] });
  await app.listen({ port: 0, host: '127.0.0.1' });
  const url = `http://127.0.0.1:${(app.server.address() as { port: number }).port}/metrics`;
  await fetch(url).then((r) => r.text()); // the first scrape reads the last hour of attempts: not what a steady scraper sees
  statements = 0;
  const watch = loadGuard();
  const started = Date.now();
  const r = await autocannon({ url, connections, amount: scrapes });
  const wall = Date.now() - started;
  const load = watch.stop();
  await app.close();
  const perSecond = Math.round((scrapes / wall) * 1000);
  process.stdout.write(
    `${scrapes} scrapes at concurrency ${connections}, ${jobs} jobs: median ${r.latency.p50} ms, p99 ${r.latency.p99} ms, ` +
      `${perSecond} scrapes/s, ${statements} SQL statements, non-2xx ${r.non2xx}\n`,
  );
  const withinWindow = wall < config.METRICS_CACHE_MS;
  finish(
    load,
    { scrapes, connections, jobs, medianMs: r.latency.p50, p99Ms: r.latency.p99, scrapesPerSecond: perSecond, statements, non2xx: r.non2xx, cacheMs: config.METRICS_CACHE_MS },
    {
      'no SQL within one cache window': { met: !withinWindow || statements === 0, value: `${statements} statements in ${wall} ms` },
      'median < 50 ms': { met: r.latency.p50 < 50 && r.non2xx === 0, value: `${r.latency.p50} ms` },
    },
  );
} finally {
  await db.destroy();
  await admin(`DROP DATABASE ${DB_NAME}`);
}
