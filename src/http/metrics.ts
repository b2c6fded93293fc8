import type { FastifyInstance } from 'fastify';
import type { Knex } from 'knex';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { countJobsByKindAndStatus, jobAttemptsAfter, lastJobAttemptId, oldestDueAgeByKind } from '../jobs/store/views.js';

// GET /metrics (Prometheus text format). Job and envelope figures come from
// Postgres at scrape time, so one `herald serve` reports the work of every
// worker process. Attempts, run durations and envelope sizes are fed from
// job_attempts / envelopes rows newer than the last scrape (an id cursor per
// server), so their counters only grow, as Prometheus expects; a fresh
// server starts from the rows of the last hour, not all history.
// HTTP latencies are measured in this process by an onResponse hook.

const DURATION_BUCKETS_S = [0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 600];
const HTTP_BUCKETS_S = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];
const ENVELOPE_BUCKETS_BYTES = [1e3, 1e4, 1e5, 1e6, 5e6, 1e7, 2e7, 3e7, 4e7];
const FEED_PAGE = 50_000;
const FIRST_LOOKBACK_SECONDS = 3600;
const FIRST_LOOKBACK = `now() - make_interval(secs => ${FIRST_LOOKBACK_SECONDS})`;

export interface MetricsOptions {
  db: Knex;
  /** Default true; tests turn the process metrics off to keep output small. */
  processMetrics?: boolean;
}

export function installMetrics(app: FastifyInstance, opts: MetricsOptions): Registry {
  const { db } = opts;
  const registry = new Registry();
  if (opts.processMetrics ?? true) collectDefaultMetrics({ register: registry, prefix: 'herald_' });

  const httpDuration = new Histogram({
    name: 'herald_http_request_duration_seconds',
    help: 'HTTP request latency by method, route and status code',
    labelNames: ['method', 'route', 'status_code'],
    buckets: HTTP_BUCKETS_S,
    registers: [registry],
  });
  const attempts = new Counter({
    name: 'herald_job_attempts_total',
    help: 'Job runs recorded in job_attempts, by kind and outcome',
    labelNames: ['kind', 'outcome'],
    registers: [registry],
  });
  const durations = new Histogram({
    name: 'herald_job_duration_seconds',
    help: 'Duration of job runs, by kind',
    labelNames: ['kind'],
    buckets: DURATION_BUCKETS_S,
    registers: [registry],
  });
  const envelopeBytes = new Histogram({
    name: 'herald_envelope_bytes',
    help: 'Size of TARIC3 envelope files written',
    buckets: ENVELOPE_BUCKETS_BYTES,
    registers: [registry],
  });
  let attemptCursor: number | null = null;
  let envelopeCursor: number | null = null;

  new Gauge({
    name: 'herald_jobs',
    help: 'Jobs by kind and status (completed: all time)',
    labelNames: ['kind', 'status'],
    registers: [registry],
    async collect() {
      const rows = await countJobsByKindAndStatus(db);
      this.reset();
      for (const r of rows) this.set({ kind: r.kind, status: r.status }, Number(r.n));
    },
  });
  new Gauge({
    name: 'herald_jobs_oldest_pending_age_seconds',
    help: 'How long the oldest due pending job of each kind has been due',
    labelNames: ['kind'],
    registers: [registry],
    async collect() {
      const rows = await oldestDueAgeByKind(db);
      this.reset();
      for (const r of rows) this.set({ kind: r.kind }, r.age);
    },
  });
  // Feeds the counters and histograms before any metric is serialised.
  const feed = async () => {
    for (const r of await jobAttemptsAfter(db, attemptCursor, { lookbackSeconds: FIRST_LOOKBACK_SECONDS, limit: FEED_PAGE })) {
      attempts.inc({ kind: r.kind, outcome: r.outcome });
      durations.observe({ kind: r.kind }, r.duration_ms / 1000);
      attemptCursor = r.id;
    }
    if (attemptCursor === null) attemptCursor = await lastJobAttemptId(db);
    const e = await db.raw(
      `SELECT id, size_bytes FROM envelopes WHERE ${envelopeCursor === null ? `created_at >= ${FIRST_LOOKBACK}` : 'id > ?'} ORDER BY id LIMIT ${FEED_PAGE}`,
      envelopeCursor === null ? [] : [envelopeCursor],
    );
    for (const r of e.rows as { id: number; size_bytes: number }[]) {
      envelopeBytes.observe(Number(r.size_bytes));
      envelopeCursor = Number(r.id);
    }
    if (envelopeCursor === null) envelopeCursor = Number((await db.raw(`SELECT coalesce(max(id), 0)::bigint AS m FROM envelopes`)).rows[0].m);
  };

  app.addHook('onResponse', async (req, reply) => {
    // The route pattern, not the URL: ids in paths would make a label per row.
    const route = req.routeOptions.url ?? 'unmatched';
    httpDuration.observe({ method: req.method, route, status_code: String(reply.statusCode) }, reply.elapsedTime / 1000);
  });
  app.get('/metrics', { config: { public: true }, schema: { hide: true } }, async (_req, reply) => {
    await feed();
    reply.type(registry.contentType);
    return registry.metrics();
  });
  return registry;
}
