import { classifyProviderError, ProviderHttpError } from './classify.js';

/** GET a short-lived provider URL into memory, with a deadline and a size limit; errors leave classified. */
export async function callProviderBytes(url: string, timeoutMs: number, maxBytes: number, signal: AbortSignal | undefined): Promise<Buffer> {
  const deadline = AbortSignal.timeout(timeoutMs);
  try {
    const res = await fetch(url, { signal: signal ? AbortSignal.any([signal, deadline]) : deadline });
    if (!res.ok) throw new ProviderHttpError('PAC', res.status, (await res.text()).slice(0, 500), res.headers.get('retry-after'));
    const declared = Number(res.headers.get('content-length') ?? 0);
    if (declared > maxBytes) throw new ProviderHttpError('PAC', 502, `PDF of ${declared} bytes is over the ${maxBytes} byte limit`, null);
    const buf = Buffer.from(await res.arrayBuffer());
    if (buf.length > maxBytes) throw new ProviderHttpError('PAC', 502, `PDF of ${buf.length} bytes is over the ${maxBytes} byte limit`, null);
    return buf;
  } catch (err) {
    throw classifyProviderError(err, { provider: 'PAC', phase: 'pdf', timeoutMs }).error;
  }
}
