import { request } from 'undici';
import { AuthError, JobError, PermanentError, RateLimitedError, TransientError } from '../jobs/contract/errors.js';

// The one decision on what a provider failure means. Each failure gets a
// kind (stored in provider_documents.error_kind, with the message and a next
// step) and a job error class (what src/jobs does with the row):
//
//   kind        class         when
//   timeout     transient     no answer within PROVIDER_API_TIMEOUT_MS
//   connection  transient     refused / reset / closed mid-answer
//   dns         transient     host name did not resolve
//   tls         transient     certificate or handshake failure
//   auth        auth          401 / 403: failed_permanent at once
//   validation  permanent     422 (invoicing API: any other 4xx too)
//   rejected    permanent     PAC: any other 4xx on submission = PAC_REJECTED
//   rate_limit  rate_limited  429; Retry-After wins over backoff
//   server      transient     5xx, or a 2xx body that is not what the API promises
//
// The table with next steps is in README.md; keep them in step.

export type ErrorKind = 'timeout' | 'connection' | 'dns' | 'tls' | 'auth' | 'validation' | 'rejected' | 'rate_limit' | 'server';
export type ProviderName = 'PAC' | 'invoicing API';

export const NEXT_STEPS: Record<ErrorKind, string> = {
  timeout: 'none: retried after backoff (the document is looked up by its idempotency key first); if it persists, raise PROVIDER_API_TIMEOUT_MS or ask the provider',
  connection: "none: retried after backoff; if it persists, check the provider's status page and the network path",
  dns: 'check the provider base URL setting (PROVIDER_*_BASE_URL) and DNS; retried after backoff',
  tls: "check the provider's certificate and any TLS-intercepting proxy; retried after backoff",
  auth: "fix the supplier's credentials (credentials_ref, PROVIDER_*_TOKEN or PROVIDER_CREDENTIALS), then herald pac resubmit INVOICE",
  validation: 'fix the invoice or supplier data the provider names, then issue a corrected invoice; retrying unchanged cannot succeed',
  rejected: 'the PAC rejected the document (PAC_REJECTED, never resubmitted): correct the data and issue a new invoice',
  rate_limit: 'none: retried when the provider said (Retry-After); if frequent, lower JOBS_CONCURRENCY',
  server: 'none: retried after backoff; if it persists, contact the provider',
};

/** A non-2xx answer, kept whole until classifyProviderError decides. */
export class ProviderHttpError extends Error {
  constructor(
    readonly provider: ProviderName,
    readonly status: number,
    readonly body: string,
    readonly retryAfter: string | null,
  ) {
    super(`${provider} answered HTTP ${status}: ${body.slice(0, 500) || '(empty body)'}`);
    this.name = 'ProviderHttpError';
  }
}

/** A JobError that also says which kind of provider failure it was. */
export interface Classified {
  kind: ErrorKind;
  error: JobError;
}

const DNS_CODES = new Set(['ENOTFOUND', 'EAI_AGAIN', 'EAI_NONAME', 'EAI_FAIL']);
const CONNECTION_CODES = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH',
  'UND_ERR_SOCKET', 'UND_ERR_CLOSED', 'UND_ERR_CONNECT_TIMEOUT',
]);
const TIMEOUT_CODES = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT']);

function isTlsCode(code: string): boolean {
  return (
    code.startsWith('ERR_TLS_') || code.startsWith('ERR_SSL_') || code.startsWith('CERT_') ||
    ['UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'SELF_SIGNED_CERT_IN_CHAIN', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'ERR_SSL_WRONG_VERSION_NUMBER'].includes(code)
  );
}

export function classifyProviderError(
  err: unknown,
  ctx: { provider: ProviderName; phase: 'submit' | 'lookup' | 'status' | 'pdf'; now?: number; timeoutMs?: number },
): Classified {
  const make = (kind: ErrorKind, message: string, extra: { retryAfterMs?: number | undefined } = {}): Classified => {
    const details = { cause: err, nextStep: NEXT_STEPS[kind] };
    switch (kind) {
      case 'auth':
        return { kind, error: new AuthError(message, details) };
      case 'validation':
      case 'rejected':
        return { kind, error: new PermanentError(message, details) };
      case 'rate_limit':
        return { kind, error: new RateLimitedError(message, extra.retryAfterMs, details) };
      default:
        return { kind, error: new TransientError(message, details) };
    }
  };
  if (err instanceof ProviderHttpError) {
    const s = err.status;
    if (s === 429) return make('rate_limit', err.message, { retryAfterMs: parseRetryAfter(err.retryAfter, ctx.now ?? Date.now()) });
    if (s === 401 || s === 403) return make('auth', err.message);
    if (s >= 500 || s === 408) return make('server', err.message);
    if (s === 422) return make('validation', err.message);
    // A PAC's verdict on a submitted document; elsewhere a 4xx means our request is wrong.
    if (ctx.provider === 'PAC' && ctx.phase === 'submit') return make('rejected', err.message);
    return make('validation', err.message);
  }
  if (err instanceof JobError) return { kind: 'server', error: err };
  const e = err as { name?: string; message?: string; code?: string; cause?: { code?: string; message?: string } } | undefined;
  const code = e?.cause?.code ?? e?.code;
  if (e?.name === 'TimeoutError' || (code && TIMEOUT_CODES.has(code))) {
    const limit = ctx.timeoutMs ? ` within ${ctx.timeoutMs} ms (PROVIDER_API_TIMEOUT_MS)` : ' in time';
    return make('timeout', `${ctx.provider} did not answer${limit}`);
  }
  if (e?.name === 'AbortError') return make('timeout', `${ctx.provider} call aborted`);
  const detail = `${code}${e?.cause?.message ? ` (${e.cause.message})` : ''}`;
  if (code && DNS_CODES.has(code)) return make('dns', `${ctx.provider} host name did not resolve: ${detail}`);
  if (code && isTlsCode(code)) return make('tls', `${ctx.provider} TLS failure: ${detail}`);
  if (code && CONNECTION_CODES.has(code)) return make('connection', `${ctx.provider} connection failed: ${detail}`);
  // No verdict from the provider: retrying is safe because the idempotency key makes the call repeatable.
  return make('connection', `${ctx.provider} call failed: ${e?.message ?? String(err)}`);
}

/** Retry-After as delay-seconds or an HTTP-date, in ms from now; undefined if absent or unreadable. */
export function parseRetryAfter(value: string | null | undefined, now: number): number | undefined {
  if (!value) return undefined;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  const at = Date.parse(trimmed);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

export interface HttpAnswer {
  status: number;
  ok: boolean;
  body: string;
  retryAfter: string | null;
}

export interface ProviderRequest {
  method: 'GET' | 'POST';
  headers: Record<string, string>;
  body?: string;
}

/**
 * One HTTP call with a deadline covering the body too; never logs its
 * headers (they carry tokens). undici's request rather than fetch: the
 * poller makes thousands of these a second, and fetch's WHATWG objects
 * (Request, Response, Headers, web streams) cost several times the CPU and
 * garbage per call (npm run bench:poller).
 */
export async function callProvider(url: string, init: ProviderRequest, timeoutMs: number, signal: AbortSignal | undefined): Promise<HttpAnswer> {
  const deadline = AbortSignal.timeout(timeoutMs);
  const res = await request(url, { ...init, signal: signal ? AbortSignal.any([signal, deadline]) : deadline });
  const body = await res.body.text();
  const retryAfter = res.headers['retry-after'];
  return {
    status: res.statusCode,
    ok: res.statusCode >= 200 && res.statusCode < 300,
    body,
    retryAfter: (Array.isArray(retryAfter) ? retryAfter[0] : retryAfter) ?? null,
  };
}

export function parseJsonBody(provider: ProviderName, text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new TransientError(`${provider} answered 2xx without JSON`, { cause: err, nextStep: NEXT_STEPS.server });
  }
}
