import crypto from 'node:crypto';
import Fastify, { type FastifyReply, type FastifyRequest } from 'fastify';
import { FaultQueue, playHttpFault } from './faults.js';
import {
  HMRC_MEDIA_TYPE,
  HMRC_SCOPES,
  firstProblem,
  hmrcFaultSchema,
  notificationSchema,
  type HmrcFault,
  type HmrcFaultMatch,
  type HmrcRoute,
  type TransferReadyNotification,
} from './hmrc-schemas.js';

export type { HmrcFault, TransferReadyNotification } from './hmrc-schemas.js';

// A stand-in for HMRC's Secure Data Exchange notification API and its OAuth
// token endpoint: a real HTTP server on loopback that checks what HMRC
// checks, records what it received, and misbehaves on request (faults).
// Admin endpoints live under /__sandbox/ and are neither faulted nor recorded.

export interface HmrcSandboxOptions {
  port?: number;
  host?: string;
  clientId: string;
  clientSecret: string;
  srn: string;
  /** Lifetime of issued tokens (default 14400 s, HMRC's four hours). */
  tokenTtlSeconds?: number;
  faults?: HmrcFault[];
  /** Clock for token expiry (ms since epoch); tests move it instead of waiting. */
  now?: () => number;
}

export interface HmrcRequestRecord {
  at: string;
  method: string;
  path: string;
  route: HmrcRoute | 'unknown';
  contentType: string | undefined;
  accept: string | undefined;
  /** Whether an Authorization: Bearer header came with it (never the token). */
  bearer: boolean;
  /** Parsed JSON or form fields (client_secret replaced), else the raw text. */
  body: unknown;
  /** null when a fault dropped or hung the request. */
  status: number | null;
  fault: HmrcFault['type'] | null;
}

export interface HmrcSandbox {
  url: string;
  /** HMRC_BASE_URL: the notification API lives under it. */
  baseUrl: string;
  /** HMRC_TOKEN_URL. */
  tokenUrl: string;
  clientId: string;
  clientSecret: string;
  srn: string;
  requests(): HmrcRequestRecord[];
  /** Notifications accepted (204), in order. */
  notifications(): TransferReadyNotification[];
  tokenGrants(): number;
  inject(fault: HmrcFault): void;
  pendingFaults(): HmrcFault[];
  /** Forget requests, notifications, faults and issued tokens. */
  reset(): void;
  close(): Promise<void>;
}

const NOTIFY_PREFIX = '/organisations/notification/files/transfer/ready/';

export async function startHmrcSandbox(opts: HmrcSandboxOptions): Promise<HmrcSandbox> {
  const now = opts.now ?? Date.now;
  const ttl = opts.tokenTtlSeconds ?? 14_400;
  const faults = new FaultQueue<HmrcFaultMatch>((want = 'notify', got) => want === 'any' || want === got);
  for (const f of opts.faults ?? []) faults.push(hmrcFaultSchema.parse(f));
  let records: HmrcRequestRecord[] = [];
  let accepted: TransferReadyNotification[] = [];
  let grants = 0;
  let tokens = new Map<string, number>(); // token -> expires at (ms)
  const closing = new AbortController();

  // forceCloseConnections: close() must also end hung requests.
  const app = Fastify({ logger: false, forceCloseConnections: true, bodyLimit: 1_048_576 });
  // Every body arrives as text; each route checks its own content type, so
  // a wrong one is answered (and recorded) the way HMRC would, not by fastify.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'string' }, (_req, body, done) => done(null, body));

  function record(req: FastifyRequest, route: HmrcRecordRoute, body: unknown): HmrcRequestRecord {
    const rec: HmrcRequestRecord = {
      at: new Date(now()).toISOString(),
      method: req.method,
      path: req.url,
      route,
      contentType: req.headers['content-type'],
      accept: req.headers.accept,
      bearer: /^bearer\s/i.test(req.headers.authorization ?? ''),
      body,
      status: null,
      fault: null,
    };
    records.push(rec);
    return rec;
  }

  /** Applies the next matching fault; true when it answered (or killed) the request. */
  async function applyFault(route: HmrcRoute, rec: HmrcRequestRecord, req: FastifyRequest, reply: FastifyReply): Promise<boolean> {
    const fault = faults.take(route);
    if (!fault) return false;
    return playHttpFault(fault, rec, req, reply, {
      closing: closing.signal,
      body: (status) => ({ code: defaultCode(status), message: `sandbox fault ${status}` }),
    });
  }

  function answer(reply: FastifyReply, rec: HmrcRequestRecord, status: number, body?: unknown) {
    rec.status = status;
    reply.code(status);
    return body === undefined ? reply.send() : reply.send(body);
  }

  app.post('/oauth/token', async (req, reply) => {
    const raw = typeof req.body === 'string' ? req.body : '';
    const form = new URLSearchParams(raw);
    const shown = Object.fromEntries(form);
    if ('client_secret' in shown) shown.client_secret = '[redacted]';
    const rec = record(req, 'token', shown);
    if (await applyFault('token', rec, req, reply)) return reply;

    if (mediaType(req.headers['content-type']) !== 'application/x-www-form-urlencoded') {
      return answer(reply, rec, 400, { error: 'invalid_request', error_description: 'Content-Type must be application/x-www-form-urlencoded' });
    }
    for (const field of ['grant_type', 'client_id', 'client_secret']) {
      if (!form.get(field)) return answer(reply, rec, 400, { error: 'invalid_request', error_description: `${field} is required` });
    }
    if (form.get('grant_type') !== 'client_credentials') {
      return answer(reply, rec, 400, { error: 'unsupported_grant_type', error_description: 'grant_type must be client_credentials' });
    }
    if (!safeEqual(form.get('client_id')!, opts.clientId) || !safeEqual(form.get('client_secret')!, opts.clientSecret)) {
      return answer(reply, rec, 401, { error: 'invalid_client', error_description: 'client_id or client_secret is wrong' });
    }
    const scopes = (form.get('scope') ?? '').split(/\s+/).filter(Boolean);
    const unknownScope = scopes.find((s) => !(HMRC_SCOPES as readonly string[]).includes(s));
    if (unknownScope) return answer(reply, rec, 400, { error: 'invalid_scope', error_description: `scope ${unknownScope} is not granted` });

    const token = crypto.randomBytes(24).toString('hex');
    tokens.set(token, now() + ttl * 1000);
    grants += 1;
    return answer(reply, rec, 200, { access_token: token, token_type: 'bearer', expires_in: ttl, scope: scopes.join(' ') || HMRC_SCOPES.join(' ') });
  });

  app.post(`${NOTIFY_PREFIX}:srn`, async (req, reply) => {
    const raw = typeof req.body === 'string' ? req.body : '';
    const parsed = parseJson(raw);
    const rec = record(req, 'notify', parsed.ok ? parsed.value : raw);
    if (await applyFault('notify', rec, req, reply)) return reply;

    const auth = /^bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '');
    if (!auth) return answer(reply, rec, 401, { code: 'MISSING_CREDENTIALS', message: 'Authentication information is not provided' });
    const expiresAt = tokens.get(auth[1]!);
    if (expiresAt === undefined || expiresAt <= now()) {
      return answer(reply, rec, 401, { code: 'INVALID_CREDENTIALS', message: 'Invalid Authentication information provided' });
    }
    if (mediaType(req.headers.accept) !== HMRC_MEDIA_TYPE) {
      return answer(reply, rec, 406, { code: 'ACCEPT_HEADER_INVALID', field: 'Accept', message: `Accept must be ${HMRC_MEDIA_TYPE}` });
    }
    if (mediaType(req.headers['content-type']) !== HMRC_MEDIA_TYPE) {
      return answer(reply, rec, 415, { code: 'INVALID_CONTENT_TYPE', field: 'Content-Type', message: `Content-Type must be ${HMRC_MEDIA_TYPE}` });
    }
    const { srn } = req.params as { srn: string };
    if (srn !== opts.srn) return answer(reply, rec, 404, { code: 'NOT_FOUND', field: 'srn', message: `unknown service reference number ${srn}` });
    if (!parsed.ok) return answer(reply, rec, 400, { code: 'INVALID_JSON', field: 'body', message: 'body is not valid JSON' });
    const valid = notificationSchema.safeParse(parsed.value, { reportInput: true });
    if (!valid.success) {
      const p = firstProblem(valid.error);
      return answer(reply, rec, 400, { code: 'INVALID_REQUEST', field: p.field, message: `${p.field} ${p.message}` });
    }
    accepted.push(valid.data);
    return answer(reply, rec, 204);
  });

  app.get('/__sandbox/requests', async () => ({ requests: records, notifications: accepted, tokenGrants: grants, pendingFaults: faults.pending() }));
  app.post('/__sandbox/faults', async (req, reply) => {
    const parsed = parseJson(typeof req.body === 'string' ? req.body : '');
    const list = parsed.ok ? (Array.isArray(parsed.value) ? parsed.value : [parsed.value]) : [undefined];
    const checked = list.map((f) => hmrcFaultSchema.safeParse(f, { reportInput: true }));
    const bad = checked.findIndex((c) => !c.success);
    if (bad >= 0) {
      const p = firstProblem(checked[bad]!.error!, 'fault');
      return reply.code(400).send({ code: 'INVALID_FAULT', field: p.field, message: `fault ${bad}: ${p.field} ${p.message}` });
    }
    for (const c of checked) faults.push(c.data!);
    return reply.code(204).send();
  });
  app.delete('/__sandbox/faults', async (_req, reply) => {
    faults.clear();
    return reply.code(204).send();
  });
  app.post('/__sandbox/reset', async (_req, reply) => {
    reset();
    return reply.code(204).send();
  });
  app.setNotFoundHandler(async (req, reply) => {
    const rec = record(req, 'unknown', req.body);
    return answer(reply, rec, 404, { code: 'MATCHING_RESOURCE_NOT_FOUND', message: 'A resource with the name in the request can not be found in the API' });
  });

  function reset() {
    faults.clear();
    records = [];
    accepted = [];
    grants = 0;
    tokens = new Map();
  }

  const address = await app.listen({ port: opts.port ?? 0, host: opts.host ?? '127.0.0.1' });
  return {
    url: address,
    baseUrl: address,
    tokenUrl: `${address}/oauth/token`,
    clientId: opts.clientId,
    clientSecret: opts.clientSecret,
    srn: opts.srn,
    requests: () => records.map((r) => ({ ...r })),
    notifications: () => [...accepted],
    tokenGrants: () => grants,
    inject: (fault) => faults.push(hmrcFaultSchema.parse(fault)),
    pendingFaults: () => faults.pending() as HmrcFault[],
    reset,
    async close() {
      closing.abort();
      await app.close();
    },
  };
}

type HmrcRecordRoute = HmrcRoute | 'unknown';

function mediaType(header: string | undefined): string | undefined {
  return header?.split(';')[0]?.trim().toLowerCase();
}

function parseJson(raw: string): { ok: true; value: unknown } | { ok: false } {
  try {
    return { ok: true, value: JSON.parse(raw) };
  } catch {
    return { ok: false };
  }
}

function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && crypto.timingSafeEqual(x, y);
}

function defaultCode(status: number): string {
  if (status === 429) return 'MESSAGE_THROTTLED_OUT';
  if (status === 401) return 'INVALID_CREDENTIALS';
  if (status === 403) return 'FORBIDDEN';
  if (status >= 500) return 'SERVER_ERROR';
  return 'INVALID_REQUEST';
}
