import { z } from 'zod';
import type { Config } from '../config.js';
import { AuthError, JobError, PermanentError, RateLimitedError, TransientError } from '../jobs/contract/errors.js';
import type { Logger } from '../log.js';
import { NETWORK_ERROR_CODES } from '../lib/network-errors.js';

// Client for HMRC's Secure Data Exchange notification API: tells HMRC that
// an envelope file is in the bucket. OAuth2 client credentials; the token is
// cached until shortly before it expires, refreshed once if HMRC answers 401,
// and every failure leaves through classifyHmrcError. Secrets and tokens are
// never logged and never put in error messages.

export const HMRC_MEDIA_TYPE = 'application/vnd.hmrc.1.0+json';
const SCOPE = 'write:transfer-ready';
// Refresh this long before expiry (or at half-life for short-lived tokens),
// so a token never expires between our check and HMRC's.
const REFRESH_MARGIN_MS = 60_000;
// Enough of an error body to act on; HMRC's are a code and a sentence.
const MAX_BODY_IN_MESSAGE = 1_000;

export interface HmrcClientOptions {
  baseUrl: string;
  tokenUrl: string;
  clientId: string;
  clientSecret: string;
  srn: string;
  /** Per HTTP call (token and notification each), body included. */
  timeoutMs: number;
}

export interface HmrcClientDeps {
  /** Clock for token expiry and Retry-After dates (ms since epoch). */
  now?: () => number;
  log?: Logger;
}

export interface TransferReady {
  /** Stored on the upload row before the call, so a retry repeats it. */
  correlationId: string;
  fileName: string;
  fileSize: number;
  /** MD5 of the file, 32 hex characters. */
  checksum: string;
}

export interface HmrcClient {
  notifyTransferReady(n: TransferReady, opts?: { signal?: AbortSignal }): Promise<void>;
  /** Asks the token endpoint for a fresh token (herald doctor): the credentials and the endpoint work. */
  checkCredentials(opts?: { signal?: AbortSignal }): Promise<void>;
}

export class HmrcConfigError extends Error {
  constructor(readonly missing: string[]) {
    super(`HMRC notifications are not configured: set ${missing.join(', ')}`);
    this.name = 'HmrcConfigError';
  }
}

export function hmrcOptionsFromConfig(config: Config): HmrcClientOptions {
  const keys = ['HMRC_BASE_URL', 'HMRC_TOKEN_URL', 'HMRC_CLIENT_ID', 'HMRC_CLIENT_SECRET', 'HMRC_SRN'] as const;
  const missing = keys.filter((k) => !config[k]);
  if (missing.length) throw new HmrcConfigError(missing);
  return {
    baseUrl: config.HMRC_BASE_URL!,
    tokenUrl: config.HMRC_TOKEN_URL!,
    clientId: config.HMRC_CLIENT_ID!,
    clientSecret: config.HMRC_CLIENT_SECRET!,
    srn: config.HMRC_SRN!,
    timeoutMs: config.HMRC_TIMEOUT_MS,
  };
}

/** A non-2xx answer, kept whole until classifyHmrcError decides what it means. */
export class HmrcHttpError extends Error {
  constructor(
    readonly phase: 'token' | 'notify',
    readonly status: number,
    readonly body: string,
    readonly retryAfter: string | null,
  ) {
    super(`HMRC ${phase === 'token' ? 'token endpoint' : 'notification'} answered HTTP ${status}: ${body.slice(0, MAX_BODY_IN_MESSAGE) || '(empty body)'}`);
    this.name = 'HmrcHttpError';
  }
}

const tokenSchema = z.object({
  access_token: z.string().min(1),
  token_type: z.string().regex(/^bearer$/i),
  expires_in: z.number().positive(),
});

interface Answer {
  status: number;
  ok: boolean;
  body: string;
  retryAfter: string | null;
}

interface CachedToken {
  token: string;
  refreshAt: number;
}

export function createHmrcClient(opts: HmrcClientOptions, deps: HmrcClientDeps = {}): HmrcClient {
  const now = deps.now ?? Date.now;
  const notifyUrl = new URL(`organisations/notification/files/transfer/ready/${encodeURIComponent(opts.srn)}`, withSlash(opts.baseUrl)).href;
  let cached: CachedToken | undefined;
  // Concurrent calls without a valid token share one token request.
  let inflight: Promise<CachedToken> | undefined;

  async function fetchToken(): Promise<CachedToken> {
    const form = new URLSearchParams({ grant_type: 'client_credentials', client_id: opts.clientId, client_secret: opts.clientSecret, scope: SCOPE });
    const res = await fetch(opts.tokenUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
      body: form.toString(),
      signal: AbortSignal.timeout(opts.timeoutMs),
    });
    const text = await res.text();
    if (!res.ok) throw new HmrcHttpError('token', res.status, text, res.headers.get('retry-after'));
    let parsed;
    try {
      parsed = tokenSchema.parse(JSON.parse(text));
    } catch (err) {
      // A 200 that is not a token is a proxy or gateway page, not a verdict.
      throw new TransientError('HMRC token endpoint answered 200 without a usable token', { cause: err });
    }
    const lifeMs = parsed.expires_in * 1000;
    deps.log?.debug({ expiresInS: parsed.expires_in }, 'fetched an HMRC access token');
    return { token: parsed.access_token, refreshAt: now() + lifeMs - Math.min(REFRESH_MARGIN_MS, lifeMs / 2) };
  }

  async function getToken(signal: AbortSignal | undefined): Promise<string> {
    if (cached && now() < cached.refreshAt) return cached.token;
    inflight ??= fetchToken().then(
      (t) => {
        cached = t;
        inflight = undefined;
        return t;
      },
      (err: unknown) => {
        inflight = undefined;
        throw err;
      },
    );
    return (await untilAborted(inflight, signal)).token;
  }

  async function post(token: string, n: TransferReady, signal: AbortSignal | undefined): Promise<Answer> {
    const deadline = AbortSignal.timeout(opts.timeoutMs);
    const res = await fetch(notifyUrl, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, accept: HMRC_MEDIA_TYPE, 'content-type': HMRC_MEDIA_TYPE },
      body: JSON.stringify({
        informationType: 'EDM',
        correlationID: n.correlationId,
        file: { fileName: n.fileName, fileSize: n.fileSize, checksum: n.checksum, checksumAlgorithm: 'MD5' },
      }),
      signal: signal ? AbortSignal.any([signal, deadline]) : deadline,
    });
    // Read the body under the same deadline: a server can hang mid-body too.
    return { status: res.status, ok: res.ok, body: await res.text(), retryAfter: res.headers.get('retry-after') };
  }

  return {
    async checkCredentials({ signal } = {}) {
      cached = undefined;
      try {
        await getToken(signal);
      } catch (err) {
        throw classifyHmrcError(err, { now: now(), timeoutMs: opts.timeoutMs });
      }
    },
    async notifyTransferReady(n, { signal } = {}) {
      try {
        let token = await getToken(signal);
        let res = await post(token, n, signal);
        if (res.status === 401) {
          // Revoked or expired early: one fresh token, then it is HMRC's verdict.
          if (cached?.token === token) cached = undefined;
          token = await getToken(signal);
          res = await post(token, n, signal);
        }
        if (res.ok) return;
        throw new HmrcHttpError('notify', res.status, res.body, res.retryAfter);
      } catch (err) {
        throw classifyHmrcError(err, { now: now(), timeoutMs: opts.timeoutMs });
      }
    },
  };
}


/**
 * The one decision on what an HMRC failure means: connection trouble,
 * timeouts and 5xx are transient; 429 waits for Retry-After; 401/403 (after
 * the one refresh) and a refused token request are auth; any other 4xx is
 * permanent, with HMRC's answer in the message.
 */
export function classifyHmrcError(err: unknown, ctx: { now?: number; timeoutMs?: number } = {}): JobError {
  if (err instanceof JobError) return err;
  if (err instanceof HmrcHttpError) {
    const cause = { cause: err };
    if (err.status === 429) {
      return new RateLimitedError(err.message, parseRetryAfter(err.retryAfter, ctx.now ?? Date.now()), cause);
    }
    if (err.status >= 500) return new TransientError(err.message, cause);
    if (err.phase === 'token' && (err.status === 400 || err.status === 401 || err.status === 403)) {
      return new AuthError(err.message, { ...cause, nextStep: 'check HMRC_CLIENT_ID, HMRC_CLIENT_SECRET and HMRC_TOKEN_URL' });
    }
    if (err.status === 401 || err.status === 403) {
      return new AuthError(err.message, { ...cause, nextStep: 'check the HMRC application credentials and its subscription to the SDES API' });
    }
    return new PermanentError(err.message, { ...cause, nextStep: 'fix the request; retrying it unchanged cannot succeed' });
  }
  const e = err as { name?: string; message?: string; cause?: { code?: string; message?: string } } | undefined;
  if (e?.name === 'TimeoutError') {
    const limit = ctx.timeoutMs ? ` within ${ctx.timeoutMs} ms (HMRC_TIMEOUT_MS)` : ' in time';
    return new TransientError(`HMRC did not answer${limit}`, { cause: err });
  }
  if (e?.name === 'AbortError') return new TransientError('HMRC call aborted', { cause: err });
  const code = e?.cause?.code;
  if (code && NETWORK_ERROR_CODES.has(code)) {
    return new TransientError(`HMRC connection failed: ${code}${e?.cause?.message ? ` (${e.cause.message})` : ''}`, { cause: err });
  }
  // Anything else never reached a verdict from HMRC; retrying is the safe
  // side because the correlation id makes the notification idempotent.
  return new TransientError(`HMRC call failed: ${e?.message ?? String(err)}`, { cause: err });
}

/** Retry-After as delay-seconds or an HTTP-date, in ms from now; undefined if absent or unreadable. */
export function parseRetryAfter(value: string | null | undefined, now: number): number | undefined {
  if (!value) return undefined;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  const at = Date.parse(trimmed);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - now);
}

function withSlash(url: string): string {
  return url.endsWith('/') ? url : `${url}/`;
}

/** Waits for a shared promise, but lets this caller give up on its own signal. */
function untilAborted<T>(p: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return p;
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}
