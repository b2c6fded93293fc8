import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { expect } from 'chai';
import type { FastifyInstance } from 'fastify';
import pino from 'pino';
import { buildServer } from '../../src/http/server.js';
import { runJobsInline } from '../../src/jobs/runtime/inline.js';
import { createLogger } from '../../src/log.js';
import { attachPdf } from '../../src/providers/pdf.js';
import { PdfRefused } from '../../src/providers/pdf-fetch.js';
import { pollOnce } from '../../src/providers/poll.js';
import type { ProviderServices } from '../../src/providers/services.js';
import { getAttachment, getDocumentByInvoice, type ProviderDocument } from '../../src/providers/store.js';
import { pacWebhookRoutes } from '../../src/providers/webhooks.js';
import { useTestDb } from '../helpers/db.js';
import { definitionsWith } from '../helpers/wiring.js';
import { COMPANY, issueInvoices, PROVIDER_TABLES, startProviderEnv, WEBHOOK_SECRET, type ProviderEnv } from './support.js';

// Where the authority's PDF may come from (docs/decisions/0013): only the PAC
// base URL's origin or PROVIDER_PDF_ORIGINS, redirects only within them, a
// streamed size limit, %PDF- magic. A refusal is logged with its reason and
// the document stays in its polling round. Against the PAC stand-in (its PDF
// faults) and a second real HTTP server on loopback: another origin.

const PDF = Buffer.from('%PDF-1.4\n% elsewhere\n%%EOF\n', 'latin1');

interface Elsewhere {
  url: string;
  hits: string[];
  close(): Promise<void>;
}

/** A real HTTP server on another loopback port (so another origin) that serves a valid PDF to anyone. */
async function elsewhere(): Promise<Elsewhere> {
  const hits: string[] = [];
  const server = http.createServer((req, res) => {
    hits.push(req.url ?? '');
    res.writeHead(200, { 'content-type': 'application/pdf' }).end(PDF);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    hits,
    close: () => new Promise((r) => server.close(() => r())),
  };
}

/** A logger whose warnings the test reads. */
function capturingLog() {
  const lines: Record<string, unknown>[] = [];
  const log = pino({ level: 'warn' }, { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) });
  return { log, lines };
}

describe('providers: PDF download policy', function () {
  this.timeout(180_000);
  const t = useTestDb(import.meta.url);
  let env: ProviderEnv;
  let other: Elsewhere;
  let services: ProviderServices;
  let clockMs = Date.now();
  const ctx = (log: pino.Logger) => ({ signal: new AbortController().signal, log, now: () => new Date(clockMs) });

  beforeEach(async () => {
    clockMs = Date.now();
    env = await startProviderEnv(t.get().url, { now: () => clockMs, pacAfterMs: 1_000, dgiAfterMs: 2_000 });
    other = await elsewhere();
    await t.get().db.raw(`TRUNCATE ${PROVIDER_TABLES} RESTART IDENTITY CASCADE`);
    services = env.services({ PROVIDER_API_TIMEOUT_MS: '5000' });
  });
  afterEach(async () => {
    await other.close();
    await env.close();
  });

  /** Invoices submitted to the PAC and, by the clock, DGI_AUTHORIZED there. */
  async function authorized(n: number): Promise<ProviderDocument[]> {
    const ids = await issueInvoices(t.get().db, n, 'pac');
    await runJobsInline(t.get().db, definitionsWith({ providers: services }).filter((d) => d.kind === 'provider-submit'), { until: 'idle', log: createLogger('silent') });
    clockMs += 5_000;
    return Promise.all(ids.map(async (id) => (await getDocumentByInvoice(t.get().db, id))!));
  }

  async function freshUrl(doc: ProviderDocument): Promise<string> {
    const s = await services.client('pac').status!({ companyId: COMPANY, token: services.token('pac', 'default'), providerDocumentId: doc.provider_document_id! });
    return s.pdfUrl!;
  }

  async function refusal(p: Promise<unknown>): Promise<PdfRefused> {
    const err = await p.then(() => null, (e: unknown) => e);
    expect(err, 'refused').to.be.instanceOf(PdfRefused);
    return err as PdfRefused;
  }

  it('the poller refuses a PDF URL on another origin (other port, other scheme, file:), logs why, and files the PAC\'s own URL at the next poll', async () => {
    const [doc] = await authorized(1);
    const { log, lines } = capturingLog();
    const pacPort = new URL(env.pac.url).port;
    for (const url of [`${other.url}/x.pdf`, `https://127.0.0.1:${pacPort}/__files/1.pdf`, 'file:///etc/passwd']) {
      env.pac.injectPdf({ type: 'url', url });
      expect(await pollOnce(t.get().db, services, { documentId: doc!.id, generation: 0 }, ctx(log)), url).to.equal('again');
      expect(await getAttachment(t.get().db, doc!.invoice_id), url).to.equal(null);
    }
    expect(other.hits, 'nothing was asked of the other origin').to.deep.equal([]);
    const warned = lines.filter((l) => l.refused === 'origin');
    expect(warned.map((l) => l.url)).to.deep.equal([`${other.url}/x.pdf`, `https://127.0.0.1:${pacPort}/__files/1.pdf`, 'file:///etc/passwd']);
    expect(String(warned[0]!.err)).to.include('PROVIDER_PDF_ORIGINS');
    const after = (await getDocumentByInvoice(t.get().db, doc!.invoice_id))!;
    expect([after.status, after.needs_attention_at], 'still in its polling round').to.deep.equal(['submitted', null]);

    expect(await pollOnce(t.get().db, services, { documentId: doc!.id, generation: 0 }, ctx(log))).to.equal('finished');
    const att = (await getAttachment(t.get().db, doc!.invoice_id))!;
    expect((await services.storage().getObjectBuffer(att.key)).equals(env.pac.pdfBytes(doc!.provider_document_id!))).to.equal(true);
  });

  it('a webhook whose pdfUrl points at loopback elsewhere moves the status, fetches nothing, logs the refusal; the poller files the PDF', async () => {
    const [doc] = await authorized(1);
    const { log, lines } = capturingLog();
    const app: FastifyInstance = await buildServer({ db: t.get().db, config: env.config(), log: createLogger('silent'), plugins: [pacWebhookRoutes(() => services)] });
    try {
      const res = await app.inject({
        method: 'POST',
        url: `/webhooks/pac/${COMPANY}`,
        headers: { 'x-webhook-secret': WEBHOOK_SECRET },
        payload: { document: { id: doc!.provider_document_id, legalStatus: 'DGI_AUTHORIZED', pdfUrl: `${other.url}/steal?token=secret` } },
      });
      expect([res.statusCode, res.json().result]).to.deep.equal([200, 'advanced']);
    } finally {
      await app.close();
    }
    expect(other.hits).to.deep.equal([]);
    expect(await getAttachment(t.get().db, doc!.invoice_id)).to.equal(null);
    expect((await getDocumentByInvoice(t.get().db, doc!.invoice_id))!.legal_status).to.equal('DGI_AUTHORIZED');
    expect(await pollOnce(t.get().db, services, { documentId: doc!.id, generation: 0 }, ctx(log))).to.equal('finished');
    expect(await getAttachment(t.get().db, doc!.invoice_id)).to.not.equal(null);
    expect(lines.filter((l) => l.refused), 'the poll itself refused nothing').to.deep.equal([]);
  });

  it('logs the webhook refusal with its reason and the URL without its query', async () => {
    const [doc] = await authorized(1);
    const { handlePacWebhook } = await import('../../src/providers/webhooks.js');
    const { log, lines } = capturingLog();
    const result = await handlePacWebhook(t.get().db, services, COMPANY, { document: { id: doc!.provider_document_id!, legalStatus: 'DGI_AUTHORIZED', pdfUrl: `${other.url}/steal?token=secret` } }, log);
    expect(result).to.equal('advanced');
    expect(lines).to.have.length(1);
    expect(lines[0]).to.deep.include({ refused: 'origin', url: `${other.url}/steal`, companyId: COMPANY, invoiceId: doc!.invoice_id });
    expect(JSON.stringify(lines[0])).to.not.include('secret');
  });

  it('follows a redirect within the PAC origin, refuses one to another origin', async () => {
    const [a, b] = await authorized(2);
    // Same origin (relative Location): followed.
    const good = new URL(await freshUrl(a!));
    env.pac.injectPdf({ type: 'redirect', location: `${good.pathname}${good.search}` });
    const filed = await attachPdf(t.get().db, services, a!, `${env.pac.url}/__files/${a!.provider_document_id}.pdf?${good.searchParams}`, 'poll');
    expect(filed.created).to.equal(true);

    env.pac.injectPdf({ type: 'redirect', location: `${other.url}/x.pdf`, status: 307 });
    const err = await refusal(attachPdf(t.get().db, services, b!, await freshUrl(b!), 'poll'));
    expect(err.reason).to.equal('redirect');
    expect(other.hits).to.deep.equal([]);
    expect(await getAttachment(t.get().db, b!.invoice_id)).to.equal(null);

    // A loop within the origin ends after a few hops.
    const loop = await freshUrl(b!);
    env.pac.injectPdf({ type: 'redirect', location: new URL(loop).pathname + new URL(loop).search, times: 10 });
    expect((await refusal(attachPdf(t.get().db, services, b!, loop, 'poll'))).reason).to.equal('too_many_redirects');
  });

  it('fetches from an origin named in PROVIDER_PDF_ORIGINS', async () => {
    const [doc] = await authorized(1);
    const allowed = env.services({ PROVIDER_PDF_ORIGINS: `https://cdn.example, ${other.url}/` });
    const filed = await attachPdf(t.get().db, allowed, doc!, `${other.url}/files/x.pdf`, 'poll');
    expect(filed.attachment.size_bytes).to.equal(PDF.length);
    expect(other.hits).to.deep.equal(['/files/x.pdf']);
  });

  it('cuts an oversize body at the limit without reading the rest, and refuses a body that is not a PDF', async () => {
    const [doc] = await authorized(1);
    const small = env.services({ PROVIDER_PDF_MAX_BYTES: '100000' });
    const total = 64 * 1024 * 1024;
    env.pac.injectPdf({ type: 'body', body: `%PDF-1.4\n${'x'.repeat(65_536 - 9)}`, repeat: total / 65_536 });
    expect((await refusal(attachPdf(t.get().db, small, doc!, await freshUrl(doc!), 'poll'))).reason).to.equal('size');
    await new Promise((r) => setTimeout(r, 200)); // the stand-in sees the connection close
    expect(env.pac.pdfBytesWritten(), 'the stand-in could write only what socket buffers hold').to.be.below(total / 4);

    env.pac.injectPdf({ type: 'body', body: '<html><body>Please log in</body></html>' });
    expect((await refusal(attachPdf(t.get().db, services, doc!, await freshUrl(doc!), 'poll'))).reason).to.equal('not_pdf');
    env.pac.injectPdf({ type: 'body', body: '%PD' });
    expect((await refusal(attachPdf(t.get().db, services, doc!, await freshUrl(doc!), 'poll'))).reason).to.equal('not_pdf');
    expect(await getAttachment(t.get().db, doc!.invoice_id)).to.equal(null);

    // And a good one is filed.
    expect((await attachPdf(t.get().db, services, doc!, await freshUrl(doc!), 'poll')).created).to.equal(true);
  });

  it('refuses PROVIDER_PDF_ORIGINS entries that are not origins', () => {
    expect(() => env.config({ PROVIDER_PDF_ORIGINS: 'https://cdn.example/files' })).to.throw(/PROVIDER_PDF_ORIGINS: "https:\/\/cdn.example\/files" is not an origin/);
    expect(() => env.config({ PROVIDER_PDF_ORIGINS: 'ftp://cdn.example' })).to.throw(/is not an origin/);
    expect(env.config({ PROVIDER_PDF_ORIGINS: ' https://a.example , https://b.example:8443 ' }).PROVIDER_PDF_ORIGINS).to.deep.equal(['https://a.example', 'https://b.example:8443']);
  });
});
