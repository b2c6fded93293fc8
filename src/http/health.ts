import type { FastifyInstance } from 'fastify';
import type { Knex } from 'knex';
import { Redis } from 'ioredis';

// GET /healthz: the process is up and serving (no dependency checked, so an
// orchestrator does not restart Herald for a database outage it cannot fix).
// GET /readyz: Postgres answers and, when REDIS_URL is set, Redis answers;
// 503 with each failing part named otherwise, so a load balancer stops
// sending work here. The body names the failing dependency and nothing else:
// a connection error carries host names, ports and user names, so it goes
// to the log (once when a dependency starts failing, once when it is back),
// never to whoever can reach /readyz (docs/decisions/0014).

const CHECK_TIMEOUT_MS = 2000;

export interface HealthOptions {
  db: Knex;
  redisUrl?: string | undefined;
}

function withTimeout<T>(p: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not answer within ${CHECK_TIMEOUT_MS} ms`)), CHECK_TIMEOUT_MS);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

export function installHealth(app: FastifyInstance, opts: HealthOptions): void {
  let redis: Redis | undefined;
  const failing = new Set<string>();
  const redisClient = (url: string): Redis => {
    if (!redis) {
      redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1, connectTimeout: CHECK_TIMEOUT_MS });
      // Connection errors are reported by the failing ping; ioredis would log them again as unhandled.
      redis.on('error', () => undefined);
    }
    return redis;
  };
  app.addHook('onClose', async () => {
    redis?.disconnect();
  });

  app.get('/healthz', { config: { public: true }, schema: { hide: true } }, async () => ({ status: 'ok' }));

  app.get('/readyz', { config: { public: true }, schema: { hide: true } }, async (_req, reply) => {
    const checks: Record<string, { ok: boolean }> = {};
    const run = async (name: string, fn: () => Promise<unknown>) => {
      try {
        await withTimeout(fn(), name);
        checks[name] = { ok: true };
        if (failing.delete(name)) app.log.info({ dependency: name }, `readiness: ${name} answers again`);
      } catch (err) {
        checks[name] = { ok: false };
        if (!failing.has(name)) app.log.warn({ dependency: name, err }, `readiness: ${name} does not answer`);
        failing.add(name);
      }
    };
    await Promise.all([
      run('postgres', () => opts.db.raw('SELECT 1')),
      opts.redisUrl ? run('redis', () => redisClient(opts.redisUrl!).ping()) : Promise.resolve(),
    ]);
    const ok = Object.values(checks).every((c) => c.ok);
    reply.code(ok ? 200 : 503);
    const names = Object.keys(checks).filter((n) => !checks[n]!.ok);
    return ok ? { status: 'ready', checks } : { status: 'unavailable', failing: names, checks };
  });
}
