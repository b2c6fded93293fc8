import crypto from 'node:crypto';
import Fastify, { type FastifyReply, type FastifyRequest } from 'fastify';
import { z } from 'zod';
import { CountedQueue, FaultQueue, faultActionSchema, playHttpFault, type Fault } from './faults.js';

// A stand-in for an Alanube-style PAC (Panama): a real HTTP server on
// loopback. Documents move REGISTERED -> PAC_AUTHORIZED -> DGI_AUTHORIZED (or
// DGI_REJECTED) on a schedule computed from their age (no timer per
// document, so 10,000 in flight cost nothing), each move is sent as a webhook
// to webhookUrl, and faults are injected on the wire (latency, 5xx, 429 +
// Retry-After, hangs, drops, 401) and on webhooks (lost, duplicated,
// delivered out of order). PDF URLs expire like the real ones.
// Admin endpoints live under /__sandbox/ and are neither faulted nor recorded.

export type PacRoute = 'submit' | 'lookup' | 'status' | 'pdf';
export type PacFaultMatch = PacRoute | 'any';
export const pacFaultSchema = z.intersection(
  faultActionSchema,
  z.object({ match: z.enum(['submit', 'lookup', 'status', 'pdf', 'any']).optional(), times: z.number().int().min(1).optional() }),
);
export type PacFault = Fault<PacFaultMatch>;
/**
 * What the PAC does wrong with PDFs (Herald's download checks): hands out
 * `url` instead of its own PDF URL (in status answers and webhooks),
 * redirects the download to `location`, or serves `body` (repeated `repeat`
 * times, streamed in 64 KB writes) instead of the PDF.
 */
export type PdfFault = ({ type: 'url'; url: string } | { type: 'redirect'; location: string; status?: 301 | 302 | 303 | 307 | 308 } | { type: 'body'; body: string; repeat?: number }) & { times?: number };

/** What happens to the next webhook deliveries: lost, sent twice, or held back and sent after the next one. */
export type WebhookFault = { type: 'lose' | 'duplicate' | 'reorder'; times?: number };

type Legal = 'REGISTERED' | 'PAC_AUTHORIZED' | 'DGI_AUTHORIZED' | 'PAC_REJECTED' | 'DGI_REJECTED';

export interface PacSandboxOptions {
  port?: number;
  host?: string;
  token: string;
  /** Where status changes are POSTed ({webhookUrl}/{idCompany}); unset: no webhooks. */
  webhookUrl?: string;
  webhookSecret?: string;
  /** Age at which a document becomes PAC_AUTHORIZED / final (default 1 s / 2 s). */
  pacAfterMs?: number;
  dgiAfterMs?: number;
  /** Final status for a document (default DGI_AUTHORIZED). */
  finalStatus?: (externalId: string) => Legal;
  /** How long a PDF URL works (default 60 s). */
  pdfTtlMs?: number;
  /** Keep a record of every request (default true; the benchmark turns it off). */
  record?: boolean;
  /** Called for every status GET (benchmark lateness). */
  onStatus?: (documentId: string, at: number) => void;
  now?: () => number;
}

export interface PacDocument {
  id: string;
  companyId: string;
  externalId: string;
  number: string;
  createdAt: number;
  /** Last status sent as a webhook. */
  notified: Legal | null;
}

export interface PacRequestRecord {
  at: number;
  route: PacRoute | 'unknown';
  method: string;
  path: string;
  status: number | null;
  fault: string | null;
}

export interface PacSandbox {
  url: string;
  token: string;
  requests(): PacRequestRecord[];
  /** Every document ever created, in order (two POSTs with one externalId make two: a duplicate submission). */
  documents(): PacDocument[];
  statusOf(id: string): Legal | undefined;
  inject(fault: PacFault): void;
  injectWebhook(fault: WebhookFault): void;
  injectPdf(fault: PdfFault): void;
  /** Bytes of PDF bodies written by 'body' faults before the client hung up or the body ended (size-limit tests). */
  pdfBytesWritten(): number;
  /** Sends a webhook now, with any status (out-of-order and duplicate tests). */
  sendWebhook(id: string, status: Legal): Promise<number>;
  webhooksSent(): { id: string; status: Legal; httpStatus: number | null }[];
  /** Makes every document's status follow now (tests with a fake clock). */
  tick(): Promise<void>;
  pdfBytes(id: string): Buffer;
  /** Creates a document as if POSTed (benchmark set-up without 10,000 requests). */
  seed(companyId: string, externalId: string): string;
  reset(): void;
  close(): Promise<void>;
}

const ORDER: Legal[] = ['REGISTERED', 'PAC_AUTHORIZED'];

export async function startPacSandbox(opts: PacSandboxOptions): Promise<PacSandbox> {
  const now = opts.now ?? Date.now;
  const pacAfter = opts.pacAfterMs ?? 1000;
  const dgiAfter = opts.dgiAfterMs ?? 2000;
  const ttl = opts.pdfTtlMs ?? 60_000;
  const recordAll = opts.record ?? true;
  const signKey = crypto.randomBytes(16);
  const faults = new FaultQueue<PacFaultMatch>((want = 'any', got) => want === 'any' || want === got);
  // Webhook faults apply to the next deliveries in order; a PDF fault to the next step of its type.
  const webhookFaults = new CountedQueue<WebhookFault, void>(() => true);
  const pdfFaults = new CountedQueue<PdfFault, PdfFault['type'][]>((f, types) => types.includes(f.type));
  let pdfWritten = 0;
  let records: PacRequestRecord[] = [];
  let docs = new Map<string, PacDocument>();
  let sent: { id: string; status: Legal; httpStatus: number | null }[] = [];
  let held: (() => Promise<void>) | null = null;
  let nextId = 1;
  const closing = new AbortController();

  const app = Fastify({ logger: false, forceCloseConnections: true, bodyLimit: 1_048_576 });

  function statusAt(d: PacDocument, at: number): Legal {
    const age = at - d.createdAt;
    if (age >= dgiAfter) return (opts.finalStatus ?? (() => 'DGI_AUTHORIZED'))(d.externalId);
    return age >= pacAfter ? 'PAC_AUTHORIZED' : 'REGISTERED';
  }

  function pdfUrl(d: PacDocument): string {
    const f = pdfFaults.take(['url']);
    if (f?.type === 'url') return f.url;
    const expires = now() + ttl;
    const sig = crypto.createHmac('sha256', signKey).update(`${d.id}:${expires}`).digest('hex');
    return `${address}/__files/${d.id}.pdf?expires=${expires}&sig=${sig}`;
  }

  function pdfBytes(id: string): Buffer {
    return Buffer.from(`%PDF-1.4\n% Herald PAC sandbox\n1 0 obj << /Title (CUFE-${id}) >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n`, 'latin1');
  }

  function present(d: PacDocument, withPdf: boolean) {
    const legalStatus = statusAt(d, now());
    const authorized = legalStatus === 'PAC_AUTHORIZED' || legalStatus === 'DGI_AUTHORIZED';
    return { id: d.id, legalStatus, cufe: authorized ? `CUFE-${d.id}` : null, pdfUrl: withPdf && authorized ? pdfUrl(d) : null };
  }

  function record(req: FastifyRequest, route: PacRequestRecord['route']): PacRequestRecord {
    const rec: PacRequestRecord = { at: now(), route, method: req.method, path: req.url.split('?')[0]!, status: null, fault: null };
    if (recordAll) records.push(rec);
    return rec;
  }

  async function applyFault(route: PacRoute, rec: PacRequestRecord, req: FastifyRequest, reply: FastifyReply): Promise<boolean> {
    const fault = faults.take(route);
    if (!fault) return false;
    return playHttpFault(fault, rec, req, reply, { closing: closing.signal, body: (status) => ({ error: { code: status, message: `sandbox fault ${status}` } }) });
  }

  function authorized(req: FastifyRequest): boolean {
    const m = /^bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '');
    return !!m && m[1] === opts.token;
  }

  function answer(reply: FastifyReply, rec: PacRequestRecord, status: number, body: unknown) {
    rec.status = status;
    return reply.code(status).send(body);
  }

  app.post('/pan/v1/invoices', async (req, reply) => {
    const rec = record(req, 'submit');
    if (await applyFault('submit', rec, req, reply)) return reply;
    if (!authorized(req)) return answer(reply, rec, 401, { error: { code: 401, message: 'invalid token' } });
    const b = (req.body ?? {}) as { idCompany?: string; externalId?: string; number?: string };
    for (const f of ['idCompany', 'externalId', 'number'] as const) {
      if (!b[f]) return answer(reply, rec, 400, { error: { code: 400, message: `${f} is required` } });
    }
    const d: PacDocument = { id: String(nextId++), companyId: b.idCompany!, externalId: b.externalId!, number: b.number!, createdAt: now(), notified: null };
    docs.set(d.id, d);
    return answer(reply, rec, 201, { document: present(d, false) });
  });

  app.get('/pan/v1/invoices', async (req, reply) => {
    const rec = record(req, 'lookup');
    if (await applyFault('lookup', rec, req, reply)) return reply;
    if (!authorized(req)) return answer(reply, rec, 401, { error: { code: 401, message: 'invalid token' } });
    const q = req.query as { idCompany?: string; externalId?: string };
    const found = [...docs.values()].filter((d) => d.companyId === q.idCompany && d.externalId === q.externalId);
    return answer(reply, rec, 200, { documents: found.map((d) => present(d, false)) });
  });

  app.get('/pan/v1/invoices/:id', async (req, reply) => {
    const rec = record(req, 'status');
    const { id } = req.params as { id: string };
    opts.onStatus?.(id, now());
    if (await applyFault('status', rec, req, reply)) return reply;
    if (!authorized(req)) return answer(reply, rec, 401, { error: { code: 401, message: 'invalid token' } });
    const q = req.query as { idCompany?: string; documents?: string };
    const d = docs.get(id);
    if (!d || d.companyId !== q.idCompany) return answer(reply, rec, 404, { error: { code: 404, message: `no document ${id}` } });
    return answer(reply, rec, 200, { document: present(d, q.documents === 'pdf') });
  });

  app.get('/__files/:file', async (req, reply) => {
    const rec = record(req, 'pdf');
    if (await applyFault('pdf', rec, req, reply)) return reply;
    const id = (req.params as { file: string }).file.replace(/\.pdf$/, '');
    const q = req.query as { expires?: string; sig?: string };
    const want = crypto.createHmac('sha256', signKey).update(`${id}:${q.expires}`).digest('hex');
    if (q.sig !== want || !docs.has(id)) return answer(reply, rec, 404, 'not found');
    if (Number(q.expires) < now()) return answer(reply, rec, 403, 'URL expired');
    const f = pdfFaults.take(['redirect', 'body']);
    if (f?.type === 'redirect') return answer(reply.header('location', f.location), rec, f.status ?? 302, '');
    if (f?.type === 'body') {
      rec.status = 200;
      reply.hijack();
      const res = reply.raw;
      res.writeHead(200, { 'content-type': 'application/pdf' });
      const chunk = Buffer.from(f.body.repeat(Math.max(1, Math.ceil(65_536 / Math.max(1, f.body.length)))).slice(0, 65_536), 'latin1');
      const total = Buffer.byteLength(f.body, 'latin1') * (f.repeat ?? 1);
      // Written as the client reads (backpressure), so the count shows how much the client took before it cut the connection.
      for (let sent = 0; sent < total && !res.destroyed; ) {
        const part = chunk.subarray(0, Math.min(chunk.length, total - sent));
        sent += part.length;
        pdfWritten += part.length;
        if (!res.write(part)) {
          await new Promise<void>((resolve) => {
            const done = () => {
              res.off('drain', done);
              res.off('close', done);
              resolve();
            };
            res.on('drain', done);
            res.on('close', done);
          });
        }
      }
      if (!res.destroyed) res.end();
      return reply;
    }
    rec.status = 200;
    return reply.code(200).type('application/pdf').send(pdfBytes(id));
  });

  app.post('/__sandbox/faults', async (req, reply) => {
    const list = Array.isArray(req.body) ? req.body : [req.body];
    for (const f of list) faults.push(pacFaultSchema.parse(f) as PacFault);
    return reply.code(204).send();
  });
  app.get('/__sandbox/requests', async () => ({ requests: records, documents: [...docs.values()], webhooks: sent }));

  async function deliver(d: PacDocument, status: Legal): Promise<number | null> {
    if (!opts.webhookUrl) return null;
    const body = JSON.stringify({ event: 'document.status', document: present(d, true), sentStatus: status });
    const payload = JSON.parse(body) as { document: { legalStatus: Legal } };
    payload.document.legalStatus = status;
    let httpStatus: number | null = null;
    try {
      const res = await fetch(`${opts.webhookUrl.replace(/\/$/, '')}/${encodeURIComponent(d.companyId)}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-webhook-secret': opts.webhookSecret ?? '' },
        body: JSON.stringify(payload),
        signal: AbortSignal.timeout(10_000),
      });
      httpStatus = res.status;
      await res.arrayBuffer();
    } catch {
      httpStatus = null;
    }
    sent.push({ id: d.id, status, httpStatus });
    return httpStatus;
  }

  let ticking = false;
  /** Sends a webhook for every document whose status moved since its last one. */
  async function tick(): Promise<void> {
    if (!opts.webhookUrl || ticking) return;
    ticking = true;
    try {
      const at = now();
      for (const d of docs.values()) {
        const s = statusAt(d, at);
        if (s === d.notified) continue;
        // A document that skipped a step (slow tick) still gets each step once, in order.
        const chain: Legal[] = [...ORDER, statusAt(d, d.createdAt + dgiAfter)];
        const steps = chain.slice(d.notified ? chain.indexOf(d.notified) + 1 : 0, chain.indexOf(s) + 1);
        d.notified = s;
        for (const step of steps) {
          const f = webhookFaults.take();
          if (f?.type === 'lose') continue;
          if (f?.type === 'reorder') {
            const prev = held;
            held = async () => void (await deliver(d, step));
            if (prev) await prev();
            continue;
          }
          await deliver(d, step);
          if (f?.type === 'duplicate') await deliver(d, step);
          if (held) {
            const h = held;
            held = null;
            await h();
          }
        }
      }
    } finally {
      ticking = false;
    }
  }

  const timer = opts.webhookUrl ? setInterval(() => void tick(), 50) : undefined;
  timer?.unref();

  const address = await app.listen({ port: opts.port ?? 0, host: opts.host ?? '127.0.0.1' });
  return {
    url: address,
    token: opts.token,
    requests: () => records.slice(),
    documents: () => [...docs.values()].map((d) => ({ ...d })),
    statusOf: (id) => {
      const d = docs.get(id);
      return d ? statusAt(d, now()) : undefined;
    },
    inject: (f) => faults.push(pacFaultSchema.parse(f) as PacFault),
    injectWebhook: (f) => webhookFaults.push(f),
    injectPdf: (f) => pdfFaults.push(f),
    pdfBytesWritten: () => pdfWritten,
    async sendWebhook(id, status) {
      const d = docs.get(id);
      if (!d) throw new Error(`no document ${id}`);
      return (await deliver(d, status)) ?? 0;
    },
    webhooksSent: () => sent.slice(),
    tick,
    pdfBytes,
    seed(companyId, externalId) {
      const d: PacDocument = { id: String(nextId++), companyId, externalId, number: externalId, createdAt: now(), notified: null };
      docs.set(d.id, d);
      return d.id;
    },
    reset() {
      faults.clear();
      webhookFaults.clear();
      pdfFaults.clear();
      pdfWritten = 0;
      records = [];
      docs = new Map();
      sent = [];
      held = null;
    },
    async close() {
      if (timer) clearInterval(timer);
      closing.abort();
      await app.close();
    },
  };
}
