import { request } from 'undici';
import { TransientError } from '../jobs/contract/errors.js';
import { classifyProviderError, ProviderHttpError } from './classify.js';

// GET of a PDF URL that arrived from outside (a webhook body, a status
// answer). Whoever can send a webhook chooses the URL, so it is fetched only
// from an allowed origin (scheme, host and port: the PAC base URL's, or one
// named in PROVIDER_PDF_ORIGINS), redirects are followed by hand and only to
// an allowed origin, the body is read as a stream and the connection cut as
// soon as it passes the size limit, and it must start with %PDF-.
// docs/decisions/0013-pdf-origins-and-webhook-secrets.md.

/** Redirects followed within allowed origins (a CDN hop or two; a loop ends here). */
const MAX_PDF_REDIRECTS = 3;
const REDIRECT_CODES = new Set([301, 302, 303, 307, 308]);
const PDF_MAGIC = '%PDF-';

export type PdfRefusalReason = 'origin' | 'redirect' | 'too_many_redirects' | 'size' | 'not_pdf';

/**
 * A URL or body Herald will not file as the authority's PDF. Transient: the
 * document stays in its polling round, and the next status answer brings a
 * fresh URL from the PAC itself.
 */
export class PdfRefused extends TransientError {
  constructor(
    readonly reason: PdfRefusalReason,
    message: string,
  ) {
    super(message, {
      nextStep:
        reason === 'origin' || reason === 'redirect'
          ? 'if the PAC really serves PDFs from that origin, add it to PROVIDER_PDF_ORIGINS; the poller keeps asking the PAC for the PDF'
          : 'none: the poller asks the PAC for a fresh URL; herald pac attach-pdf INVOICE tries at once',
    });
    this.name = 'PdfRefused';
  }
}

export interface PdfFetchPolicy {
  /** Origins (URL.origin form) a PDF may come from. */
  origins: ReadonlySet<string>;
  maxBytes: number;
  timeoutMs: number;
}

/** The PAC base URL's origin plus the configured ones, normalised by URL (default ports dropped, lower case). */
export function allowedPdfOrigins(pacBaseUrl: string | undefined, extra: readonly string[]): Set<string> {
  const set = new Set<string>();
  for (const u of [pacBaseUrl, ...extra]) {
    if (!u) continue;
    const origin = new URL(u).origin;
    if (origin !== 'null') set.add(origin);
  }
  return set;
}

/** The URL without its query (signatures, tokens) for logs and messages. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}${u.pathname}`;
  } catch {
    return '(not a URL)';
  }
}

function checkOrigin(url: string, policy: PdfFetchPolicy, reason: 'origin' | 'redirect'): URL {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new PdfRefused(reason, `PDF URL refused: not an absolute URL`);
  }
  // URL.origin is 'null' for every scheme but http(s) (file:, data:, ...): never in the set.
  if (!policy.origins.has(u.origin)) {
    const what = reason === 'redirect' ? 'redirect to' : 'PDF URL on';
    throw new PdfRefused(reason, `${what} ${u.protocol === 'http:' || u.protocol === 'https:' ? u.origin : `a ${u.protocol} URL`} refused: not the PAC's origin nor in PROVIDER_PDF_ORIGINS`);
  }
  return u;
}

/** GETs the PDF under the policy; refusals are PdfRefused, transport and HTTP errors leave classified. */
export async function fetchPdf(url: string, policy: PdfFetchPolicy, signal: AbortSignal | undefined): Promise<Buffer> {
  let current = checkOrigin(url, policy, 'origin');
  const deadline = AbortSignal.timeout(policy.timeoutMs);
  const abort = new AbortController();
  const combined = AbortSignal.any([abort.signal, deadline, ...(signal ? [signal] : [])]);
  try {
    for (let hop = 0; ; hop++) {
      // undici's request follows no redirect unless told to: each hop is checked here.
      const res = await request(current, { method: 'GET', signal: combined, headers: { accept: 'application/pdf' } });
      if (REDIRECT_CODES.has(res.statusCode)) {
        await res.body.dump();
        const location = res.headers.location;
        const target = Array.isArray(location) ? location[0] : location;
        if (!target) throw new ProviderHttpError('PAC', 502, `redirect ${res.statusCode} without a Location`, null);
        if (hop >= MAX_PDF_REDIRECTS) throw new PdfRefused('too_many_redirects', `PDF URL refused: more than ${MAX_PDF_REDIRECTS} redirects`);
        const next = URL.parse(target, current);
        if (!next) throw new PdfRefused('redirect', 'PDF redirect refused: its Location is not a URL');
        current = checkOrigin(next.href, policy, 'redirect');
        continue;
      }
      if (res.statusCode < 200 || res.statusCode >= 300) {
        const text = await headOf(res.body);
        const retryAfter = res.headers['retry-after'];
        throw new ProviderHttpError('PAC', res.statusCode, text.slice(0, 500), (Array.isArray(retryAfter) ? retryAfter[0] : retryAfter) ?? null);
      }
      return await readPdfBody(res.body, Number(res.headers['content-length'] ?? 0), policy.maxBytes, () => abort.abort());
    }
  } catch (err) {
    if (err instanceof PdfRefused) throw err;
    throw classifyProviderError(err, { provider: 'PAC', phase: 'pdf', timeoutMs: policy.timeoutMs }).error;
  }
}

/** The first bytes of an error answer, for the message; the rest is not read. */
async function headOf(body: AsyncIterable<Buffer> & { destroy(): void }): Promise<string> {
  const chunks: Buffer[] = [];
  let n = 0;
  try {
    for await (const chunk of body) {
      chunks.push(chunk);
      n += chunk.length;
      if (n >= 2048) break;
    }
  } catch {
    // the status says enough
  }
  body.destroy();
  return Buffer.concat(chunks).toString('utf8');
}

/** Reads at most maxBytes; past it (or a body that does not open with %PDF-) the connection is cut, nothing more is read. */
async function readPdfBody(body: AsyncIterable<Buffer> & { destroy(): void }, declared: number, maxBytes: number, cut: () => void): Promise<Buffer> {
  const refuse = (e: PdfRefused): never => {
    cut();
    body.destroy();
    throw e;
  };
  if (declared > maxBytes) refuse(new PdfRefused('size', `PDF refused: ${declared} bytes declared, over the ${maxBytes} byte limit (PROVIDER_PDF_MAX_BYTES)`));
  const chunks: Buffer[] = [];
  let total = 0;
  let checked = false;
  for await (const chunk of body) {
    total += chunk.length;
    if (total > maxBytes) refuse(new PdfRefused('size', `PDF refused: more than ${maxBytes} bytes (PROVIDER_PDF_MAX_BYTES)`));
    chunks.push(chunk);
    if (!checked && total >= PDF_MAGIC.length) {
      checked = true;
      const head = Buffer.concat(chunks).subarray(0, PDF_MAGIC.length).toString('latin1');
      if (head !== PDF_MAGIC) refuse(new PdfRefused('not_pdf', `PDF refused: the body does not start with ${PDF_MAGIC}`));
    }
  }
  if (!checked) throw new PdfRefused('not_pdf', `PDF refused: ${total} bytes, not a PDF`);
  return Buffer.concat(chunks);
}
