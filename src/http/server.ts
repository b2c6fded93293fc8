import Fastify, { LogController, type FastifyBaseLogger, type FastifyReply, type FastifyError, type FastifyInstance, type FastifyPluginAsync } from 'fastify';
import type { Socket } from 'node:net';
import formbody from '@fastify/formbody';
import swagger from '@fastify/swagger';
import type { Knex } from 'knex';
import { hasZodFastifySchemaValidationErrors, jsonSchemaTransform, serializerCompiler, validatorCompiler } from 'fastify-type-provider-zod';
import type { Config } from '../config.js';
import type { Logger } from '../log.js';
import { ApiKeyVerifier, apiKeyFromHeader, type ApiKeyPrincipal } from './api-keys.js';
import { HTTP_ERRORS, HttpError, formatFieldPath, type HttpErrorCode } from './errors.js';
import { escapeHtml } from '../lib/html.js';
import type { RouteDeps, RoutesPlugin } from './route-types.js';
import { installMetrics } from './metrics.js';
import { installHealth } from './health.js';
import { installSecurityHeaders } from './security-headers.js';
import { OPENAPI_OPTIONS } from './openapi.js';

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
    // request.ip and request.protocol believe X-Forwarded-* only from these proxies.
    trustProxy: trustProxy(opts.config.HTTP_TRUST_PROXY),
    genReqId: () => `req-${Math.random().toString(36).slice(2, 10)}`,
    // Fastify answers these itself, before any route: in Herald's shape too.
    frameworkErrors: (err, _req, reply) => {
      const code = err.code === 'FST_ERR_MAX_PARAM_LENGTH' ? 'URI_TOO_LONG' : 'BAD_URL';
      const message = code === 'URI_TOO_LONG' ? undefined : 'url: the path is not valid percent-encoded UTF-8';
      (reply as FastifyReply).code(HTTP_ERRORS[code].status).send(new HttpError(code, message, { field: 'url' }).toBody());
    },
    clientErrorHandler: answerClientError,
  });
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  await app.register(formbody);
  installSecurityHeaders(app);
  await app.register(swagger, { ...OPENAPI_OPTIONS, transform: jsonSchemaTransform });

  installErrorHandlers(app);
  installAuth(app, new ApiKeyVerifier(opts.db, { ttlMs: opts.apiKeyCacheMs ?? 30_000 }));

  app.get('/openapi.json', { config: { public: true }, schema: { hide: true } }, async () => app.swagger());
  installMetrics(app, { db: opts.db, processMetrics: opts.processMetrics, token: opts.config.METRICS_TOKEN, cacheMs: opts.config.METRICS_CACHE_MS });
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

/** A hop count trusts that many proxies nearest the server (Fastify's types take it as a function). */
function trustProxy(setting: Config['HTTP_TRUST_PROXY']): boolean | string[] | ((address: string, hop: number) => boolean) {
  return typeof setting === 'number' ? (_address, hop) => hop < setting : setting;
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
    throw new HttpError('ROUTE_NOT_FOUND', `no route ${req.method} ${req.url.split('?')[0]}`, { field: 'url' });
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
  if (status >= 400 && status < 500) return clientMistake(err, status);
  if (isUnavailable(err)) return new HttpError('UNAVAILABLE', undefined, { requestId: reqId }, { cause: err });
  return new HttpError('INTERNAL', `internal error (request ${reqId}); see the server log`, { requestId: reqId }, { cause: err });
}

/**
 * Fastify's and its plugins' own 4xx (body parsing, content type, CSRF), as
 * the catalogue's codes, each naming the part of the request at fault. Their
 * messages say what is wrong and nothing secret.
 */
function clientMistake(err: FastifyError, status: number): HttpError {
  const at = (code: HttpErrorCode, field: string, message: string) => new HttpError(code, `${field}: ${message}`, { field }, { cause: err });
  if (status === 413) return at('PAYLOAD_TOO_LARGE', 'body', `must be at most ${BODY_LIMIT} bytes`);
  if (status === 415) return at('UNSUPPORTED_MEDIA_TYPE', 'content-type', `unsupported Content-Type: ${err.message}`);
  if (err.code === 'FST_CSRF_INVALID_TOKEN' || err.code === 'FST_CSRF_MISSING_SECRET') return new HttpError('CSRF_REJECTED', undefined, { field: '_csrf' }, { cause: err });
  // Fastify drops the parser's reason: a syntax error and a poisoning attempt look the same.
  if (err.code === 'FST_ERR_CTP_INVALID_JSON_BODY') return at('INVALID_BODY', 'body', 'must be valid JSON, with no "__proto__" key and no "constructor" holding a "prototype"');
  if (err.code === 'FST_ERR_CTP_INVALID_CONTENT_LENGTH') return at('INVALID_BODY', 'content-length', err.message);
  return at('INVALID_BODY', 'body', err.message);
}

// Malformed HTTP (a header block over Node's limit, a request that never
// finished arriving): no route, no reply object, only the socket.
const CLIENT_ERRORS: Record<string, HttpErrorCode> = { HPE_HEADER_OVERFLOW: 'HEADERS_TOO_LARGE', ERR_HTTP_REQUEST_TIMEOUT: 'REQUEST_TIMEOUT' };

function answerClientError(err: NodeJS.ErrnoException, socket: Socket): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  const code = CLIENT_ERRORS[err.code ?? ''] ?? 'BAD_REQUEST';
  const { status } = HTTP_ERRORS[code];
  const body = JSON.stringify(new HttpError(code, undefined, { field: code === 'HEADERS_TOO_LARGE' ? 'headers' : 'request' }).toBody());
  if (socket.writable) {
    socket.write(`HTTP/1.1 ${status} ${code}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
  }
  socket.destroy(err);
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

