import Fastify, { LogController, type FastifyBaseLogger, type FastifyError, type FastifyInstance, type FastifyPluginAsync } from 'fastify';
import formbody from '@fastify/formbody';
import swagger from '@fastify/swagger';
import type { Knex } from 'knex';
import { hasZodFastifySchemaValidationErrors, jsonSchemaTransform, serializerCompiler, validatorCompiler } from 'fastify-type-provider-zod';
import type { Config } from '../config.js';
import type { Logger } from '../log.js';
import { ApiKeyVerifier, apiKeyFromHeader, type ApiKeyPrincipal } from './api-keys.js';
import { HttpError, formatFieldPath } from './errors.js';
import { escapeHtml } from '../lib/html.js';
import type { RouteDeps, RoutesPlugin } from './route-types.js';
import { installMetrics } from './metrics.js';
import { installHealth } from './health.js';

// The fastify server. It mounts the route plugins its caller gives it (the
// composition root lists every capability's); each gets RouteDeps as its
// options. Every route needs an API key unless its config says public: true.

export interface ServerOptions {
  db: Knex;
  config: Config;
  log: Logger;
  /** Route plugins to mount: the composition root's list (src/cli/wiring.ts), or a test's. */
  plugins: readonly RoutesPlugin[];
  /** How long a verified API key is remembered (default 30 s; 0 = ask the database every time). */
  apiKeyCacheMs?: number;
  now?: () => Date;
  /** Node process metrics on /metrics (default true). */
  processMetrics?: boolean;
}

declare module 'fastify' {
  interface FastifyRequest {
    apiKey: ApiKeyPrincipal | null;
  }
  interface FastifyContextConfig {
    /** No API key needed (OpenAPI document, health). */
    public?: boolean;
    /** Errors answer as a small HTML page and 401 asks the browser for credentials. */
    html?: boolean;
  }
}

// 1 MiB: a 500-line invoice is about 150 KB of JSON.
const BODY_LIMIT = 1024 * 1024;

export async function buildServer(opts: ServerOptions): Promise<FastifyInstance> {
  const log = opts.log.child({ component: 'http' });
  const app = Fastify({
    loggerInstance: log as FastifyBaseLogger,
    // One line per request would dominate the log at the rates this serves;
    // failures are logged by the error handler with the request id.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: BODY_LIMIT,
    genReqId: () => `req-${Math.random().toString(36).slice(2, 10)}`,
  });
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  await app.register(formbody);
  await app.register(swagger, {
    openapi: {
      info: { title: 'Herald API', version: '1', description: 'Invoices, invoice requests and parties. Authenticate with Authorization: Bearer <API key>.' },
      components: { securitySchemes: { apiKey: { type: 'http', scheme: 'bearer' } } },
      security: [{ apiKey: [] }],
    },
    transform: jsonSchemaTransform,
  });

  installErrorHandlers(app);
  installAuth(app, new ApiKeyVerifier(opts.db, { ttlMs: opts.apiKeyCacheMs ?? 30_000 }));

  app.get('/openapi.json', { config: { public: true }, schema: { hide: true } }, async () => app.swagger());
  installMetrics(app, { db: opts.db, processMetrics: opts.processMetrics });
  installHealth(app, { db: opts.db, redisUrl: opts.config.REDIS_URL });
  app.get('/health', { config: { public: true }, schema: { hide: true } }, async () => {
    await opts.db.raw('SELECT 1');
    return { status: 'ok' };
  });

  const deps: RouteDeps = { db: opts.db, config: opts.config, log, now: opts.now ?? (() => new Date()) };
  for (const plugin of opts.plugins) await app.register(plugin, deps);
  await app.ready();
  return app;
}

function installAuth(app: FastifyInstance, verifier: ApiKeyVerifier): void {
  app.decorateRequest('apiKey', null);
  app.addHook('onRequest', async (req, reply) => {
    if (req.routeOptions.config.public) return;
    const key = apiKeyFromHeader(req.headers.authorization);
    const principal = key ? await verifier.verify(key) : null;
    if (!principal) {
      if (req.routeOptions.config.html) reply.header('www-authenticate', 'Basic realm="Herald", charset="UTF-8"');
      throw new HttpError('UNAUTHORIZED');
    }
    req.apiKey = principal;
  });
}

function installErrorHandlers(app: FastifyInstance): void {
  app.setNotFoundHandler(async (req) => {
    throw new HttpError('ROUTE_NOT_FOUND', `no route ${req.method} ${req.url.split('?')[0]}`);
  });

  app.setErrorHandler(async (err: FastifyError, req, reply) => {
    const httpErr = toHttpError(err, req.id);
    if (httpErr.statusCode >= 500) req.log.error({ err, reqId: req.id, url: req.url }, 'request failed');
    reply.code(httpErr.statusCode);
    if (req.routeOptions.config?.html) {
      return reply.type('text/html; charset=utf-8').send(errorPage(httpErr));
    }
    return reply.send(httpErr.toBody());
  });
}

export function toHttpError(err: FastifyError, reqId: string): HttpError {
  if (err instanceof HttpError) return err;
  if (hasZodFastifySchemaValidationErrors(err)) {
    const errors = err.validation.map((v) => {
      const path = v.instancePath.split('/').filter(Boolean).map((p) => (/^\d+$/.test(p) ? Number(p) : p));
      const keys = (v.params as { keys?: string[] }).keys;
      // An unknown member is reported at the member, not at its parent.
      if (v.keyword === 'unrecognized_keys' && keys?.length) path.push(keys[0]!);
      const field = formatFieldPath(path) || (err.validationContext ?? 'body');
      const message = v.keyword === 'unrecognized_keys' ? 'unknown field' : v.message;
      return { field, message: `${field}: ${message}` };
    });
    return new HttpError('VALIDATION_FAILED', errors[0]!.message, { field: errors[0]!.field, errors });
  }
  const status = err.statusCode ?? 500;
  if (status === 413) return new HttpError('PAYLOAD_TOO_LARGE', undefined, {}, { cause: err });
  if (status === 415) return new HttpError('UNSUPPORTED_MEDIA_TYPE', `unsupported Content-Type: ${err.message}`, {}, { cause: err });
  // Fastify's own 4xx (bad JSON, empty body) say what is wrong and nothing secret.
  if (status >= 400 && status < 500) return new HttpError('INVALID_BODY', err.message, {}, { cause: err });
  if (isUnavailable(err)) return new HttpError('UNAVAILABLE', undefined, { requestId: reqId }, { cause: err });
  return new HttpError('INTERNAL', `internal error (request ${reqId}); see the server log`, { requestId: reqId }, { cause: err });
}

// The database is down or the pool is exhausted: the client should retry.
const UNAVAILABLE_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', '57P01', '57P03', '53300']);

function isUnavailable(err: FastifyError): boolean {
  return UNAVAILABLE_CODES.has(String(err.code)) || err.name === 'KnexTimeoutError';
}

function errorPage(err: HttpError): string {
  return `<!doctype html><meta charset="utf-8"><title>Error ${err.statusCode}</title>
<h1>${err.statusCode} ${escapeHtml(err.code)}</h1><p>${escapeHtml(err.message)}</p>`;
}

