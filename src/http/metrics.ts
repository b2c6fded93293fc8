import type { FastifyInstance } from 'fastify';
import type { Knex } from 'knex';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { digestMatches, sha256Hex } from '../lib/digest.js';
import { HttpError } from './errors.js';
import { countJobsByKindAndStatus, jobAttemptsAfter, lastJobAttemptId, oldestDueAgeByKind } from '../jobs/store/views.js';

// GET /metrics (Prometheus text format). Job and envelope figures come from
// Postgres, so one `herald serve` reports the work of every worker process;
// they are read at most once per METRICS_CACHE_MS, by one refresh that every
// scrape arriving meanwhile waits for, so the database work does not grow
// with the scrape rate (docs/decisions/0014). With METRICS_TOKEN set, a
// scrape must send Authorization: Bearer <token>. Attempts, run durations
// and envelope sizes are fed from job_attempts / envelopes rows newer than
// the last refresh (an id cursor per server), so their counters only grow,
// as Prometheus expects; a fresh server starts from the rows of the last
// hour, not all history.
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
  /** METRICS_TOKEN: unset, /metrics is public. */
  token?: string | undefined;
  /** METRICS_CACHE_MS: the database figures are at most this old. */
  cacheMs: number;
  now?: () => number;
}

/** Bearer token check in constant time against the token's digest (taken once, at start). */
function bearerMatches(header: string | undefined, tokenDigest: string): boolean {
  const m = /^Bearer\s+(\S+)$/i.exec(header ?? '');
  return digestMatches(m?.[1] ?? '', tokenDigest) && !!m;
}

export function installMetrics(app: FastifyInstance, opts: MetricsOptions): Registry {
  const { db } = opts;
  const tokenDigest = opts.token ? sha256Hex(opts.token) : null;
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
  const now = opts.now ?? Date.now;
  let snapshot: { at: number; jobs: Awaited<ReturnType<typeof countJobsByKindAndStatus>>; oldest: Awaited<ReturnType<typeof oldestDueAgeByKind>> } = { at: 0, jobs: [], oldest: [] };
  let lastTry = 0;
  let inflight: Promise<{ failed: unknown } | null> | null = null;

  new Gauge({
    name: 'herald_jobs',
    help: 'Jobs by kind and status (completed: all time)',
    labelNames: ['kind', 'status'],
    registers: [registry],
    collect() {
      this.reset();
      for (const r of snapshot.jobs) this.set({ kind: r.kind, status: r.status }, Number(r.n));
    },
  });
  new Gauge({
    name: 'herald_jobs_oldest_pending_age_seconds',
    help: 'How long the oldest due pending job of each kind has been due',
    labelNames: ['kind'],
    registers: [registry],
    collect() {
      this.reset();
      for (const r of snapshot.oldest) this.set({ kind: r.kind }, r.age);
    },
  });
  new Gauge({
    name: 'herald_metrics_age_seconds',
    help: 'How old the database figures of this scrape are (they are refreshed at most every METRICS_CACHE_MS)',
    registers: [registry],
    collect() {
      this.set(snapshot.at ? (now() - snapshot.at) / 1000 : 0);
    },
  });
  const refreshFailures = new Counter({
    name: 'herald_metrics_refresh_failures_total',
    help: 'Database refreshes of the metrics that failed (the previous figures were served)',
    registers: [registry],
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

  // Everything read from the database, in one go; the gauges and counters then serialise what it left.
  const refresh = async () => {
    await feed();
    const [jobs, oldest] = await Promise.all([countJobsByKindAndStatus(db), oldestDueAgeByKind(db)]);
    snapshot = { at: now(), jobs, oldest };
  };
  /** Refreshes when the figures are older than cacheMs; one refresh at a time, shared by every scrape waiting on it. */
  const fresh = async (): Promise<void> => {
    if (!inflight && now() - lastTry >= opts.cacheMs) {
      lastTry = now();
      inflight = refresh()
        .then(
          () => null,
          (err: unknown) => {
            refreshFailures.inc();
            app.log.warn({ err }, 'metrics refresh from the database failed; serving the previous figures');
            return { failed: err };
          },
        )
        .finally(() => {
          inflight = null;
        });
    }
    const outcome = inflight ? await inflight : null;
    // Older figures beat none; without any, the scrape fails (503) rather than report zeros.
    if (outcome && !snapshot.at) throw new HttpError('UNAVAILABLE', 'the database did not answer; retry later', {}, { cause: outcome.failed });
  };

  app.addHook('onResponse', async (req, reply) => {
    // The route pattern, not the URL: ids in paths would make a label per row.
    const route = req.routeOptions.url ?? 'unmatched';
    httpDuration.observe({ method: req.method, route, status_code: String(reply.statusCode) }, reply.elapsedTime / 1000);
  });
  app.get('/metrics', { config: { public: true }, schema: { hide: true } }, async (req, reply) => {
    if (tokenDigest && !bearerMatches(req.headers.authorization, tokenDigest)) {
      throw new HttpError('UNAUTHORIZED', 'missing or wrong metrics token: send Authorization: Bearer <METRICS_TOKEN>', { field: 'authorization' });
    }
    await fresh();
    reply.type(registry.contentType);
    return registry.metrics();
  });
  return registry;
}
