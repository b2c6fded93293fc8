import { expect } from 'chai';
import type { FastifyInstance } from 'fastify';
import pino from 'pino';
import { definitionsWith } from '../helpers/wiring.js';
import { pacWebhookRoutes } from '../../src/providers/webhooks.js';
import type { ProviderServices } from '../../src/providers/services.js';
import { buildServer } from '../../src/http/server.js';
import { runJobsInline } from '../../src/jobs/runtime/inline.js';
import { createLogger } from '../../src/log.js';
import { pollOnce } from '../../src/providers/poll.js';
import { getAttachment, getDocumentByInvoice } from '../../src/providers/store.js';
import { digestMatches, sha256Hex } from '../../src/lib/digest.js';
import { useTestDb } from '../helpers/db.js';
import { COMPANY, fakeClock, issueInvoices, PROVIDER_TABLES, startProviderEnv, WEBHOOK_SECRET, type ProviderEnv } from './support.js';

// POST /webhooks/pac/{companyId} through the real fastify server (inject),
// against documents submitted to the PAC stand-in; and the webhook racing the
// poller for the same document.

const log = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });

describe('PAC webhooks', function () {
  this.timeout(180_000);
  const t = useTestDb(import.meta.url);
  let env: ProviderEnv;
  let app: FastifyInstance;
  // The routes read it on each delivery: a test may swap the stand-in under a running server.
  let services: ProviderServices;
  let clockMs = Date.now();

  beforeEach(async () => {
    clockMs = Date.now();
    env = await startProviderEnv(t.get().url, { now: () => clockMs, pacAfterMs: 1_000, dgiAfterMs: 2_000 });
    await t.get().db.raw(`TRUNCATE ${PROVIDER_TABLES} RESTART IDENTITY CASCADE`);
    services = env.services({ PROVIDER_API_TIMEOUT_MS: '2000' });
    app = await buildServer({ db: t.get().db, config: env.config(), log: createLogger('silent'), plugins: [pacWebhookRoutes(() => services)] });
  });
  afterEach(async () => {
    await app.close();
    await env.close();
  });

  /** Issues and submits (no polling yet): documents REGISTERED at the PAC. */
  async function submitted(n: number): Promise<number[]> {
    const ids = await issueInvoices(t.get().db, n, 'pac');
    await runJobsInline(t.get().db, definitionsWith({ providers: services }).filter((d) => d.kind === 'provider-submit'), { until: 'idle', log });
    return ids;
  }

  function deliver(body: unknown, secret: string | null = WEBHOOK_SECRET, company = COMPANY) {
    return app.inject({ method: 'POST', url: `/webhooks/pac/${company}`, headers: secret ? { 'x-webhook-secret': secret } : {}, payload: body as object });
  }

  function statusBody(providerId: string, legalStatus: string, pdfUrl?: string | null) {
    return { event: 'document.status', document: { id: providerId, legalStatus, cufe: `CUFE-${providerId}`, pdfUrl: pdfUrl ?? null } };
  }

  it('compares the shared secret in constant time and answers 401 without it', async () => {
    const [id] = await submitted(1);
    const doc = (await getDocumentByInvoice(t.get().db, id!))!;
    expect((await deliver(statusBody(doc.provider_document_id!, 'PAC_AUTHORIZED'), null)).statusCode).to.equal(401);
    expect((await deliver(statusBody(doc.provider_document_id!, 'PAC_AUTHORIZED'), `${WEBHOOK_SECRET}x`)).statusCode).to.equal(401);
    expect((await getDocumentByInvoice(t.get().db, id!))!.legal_status, 'unchanged by a refused delivery').to.equal('REGISTERED');
    expect(digestMatches('a', sha256Hex('a'))).to.equal(true);
    expect(digestMatches('a', sha256Hex('ab'))).to.equal(false);
    expect(digestMatches('a', null)).to.equal(false);
  });

  it('answers 200 for an unknown document and changes nothing', async () => {
    await submitted(1);
    const res = await deliver(statusBody('no-such-doc', 'DGI_AUTHORIZED'));
    expect([res.statusCode, res.json().result]).to.deep.equal([200, 'unknown_document']);
    const other = await deliver(statusBody('1', 'DGI_AUTHORIZED'), WEBHOOK_SECRET, 'another-company');
    expect(other.json().result, 'a document of another company is unknown here').to.equal('unknown_document');
  });

  it('never moves legal_status backwards on duplicate or out-of-order deliveries', async () => {
    const [id] = await submitted(1);
    const doc = (await getDocumentByInvoice(t.get().db, id!))!;
    const pid = doc.provider_document_id!;
    clockMs += 5_000;
    const seq = ['PAC_AUTHORIZED', 'DGI_AUTHORIZED', 'PAC_AUTHORIZED', 'REGISTERED', 'DGI_AUTHORIZED', 'DGI_REJECTED'];
    const results = [];
    for (const s of seq) results.push((await deliver(statusBody(pid, s))).json().result);
    expect(results).to.deep.equal(['advanced', 'advanced', 'unchanged', 'unchanged', 'unchanged', 'unchanged']);
    const after = (await getDocumentByInvoice(t.get().db, id!))!;
    expect(after.legal_status).to.equal('DGI_AUTHORIZED');
    expect((await t.get().db('invoices').where({ id }).first()).legal_status).to.equal('DGI_AUTHORIZED');
  });

  it('files the PDF from a webhook, and a PDF failure answers 200 and leaves it to the poller', async () => {
    const [a, b] = await submitted(2);
    clockMs += 5_000;
    const da = (await getDocumentByInvoice(t.get().db, a!))!;
    const db_ = (await getDocumentByInvoice(t.get().db, b!))!;
    void da;
    const url = `${env.pac.url}/__files/${da.provider_document_id}.pdf`;
    // A bad URL: the download fails, the status still moves, the answer is 200.
    const res = await deliver(statusBody(db_.provider_document_id!, 'DGI_AUTHORIZED', `${url}?expires=1&sig=bad`));
    expect(res.statusCode).to.equal(200);
    expect((await getDocumentByInvoice(t.get().db, b!))!.legal_status).to.equal('DGI_AUTHORIZED');
    expect(await getAttachment(t.get().db, b!)).to.equal(null);
    env.pac.inject({ type: 'status', status: 500, match: 'pdf' });
    // The poller then fetches a fresh URL and files it.
    const outcome = await pollOnce(t.get().db, env.services(), { documentId: db_.id, generation: 0 }, { signal: new AbortController().signal, log, now: () => new Date(clockMs) });
    expect(outcome, 'first poll: the PDF download hits the injected 500').to.equal('again');
    expect(await pollOnce(t.get().db, env.services(), { documentId: db_.id, generation: 0 }, { signal: new AbortController().signal, log, now: () => new Date(clockMs) })).to.equal('finished');
    expect(await getAttachment(t.get().db, b!)).to.not.equal(null);
  });

  it('webhook and poller racing for the same document (100 runs): one PDF, final status right', async () => {
    const { db } = t.get();
    const ids = await submitted(100);
    clockMs += 5_000;
    const services = env.services({ PROVIDER_API_TIMEOUT_MS: '5000' });
    const fresh = () => ({ signal: new AbortController().signal, log, now: () => new Date(clockMs) });
    for (const id of ids) {
      const doc = (await getDocumentByInvoice(db, id))!;
      const pid = doc.provider_document_id!;
      // The PAC's own status answer carries a fresh PDF URL; the webhook gets one too.
      const status = await services.client('pac').status!({ companyId: COMPANY, token: services.token('pac', 'default'), providerDocumentId: pid });
      const [hook, poll] = await Promise.all([
        deliver(statusBody(pid, 'DGI_AUTHORIZED', status.pdfUrl)),
        pollOnce(db, services, { documentId: doc.id, generation: 0 }, fresh()),
      ]);
      expect(hook.statusCode).to.equal(200);
      expect(poll).to.equal('finished');
    }
    const { rows } = await db.raw(`SELECT invoice_id, count(*)::int AS n FROM provider_attachments GROUP BY invoice_id`);
    expect(rows.length, 'every invoice has its PDF').to.equal(100);
    expect(rows.every((r: { n: number }) => r.n === 1), 'one attachment row each').to.equal(true);
    const docs = await db('provider_documents').whereIn('invoice_id', ids);
    expect(docs.every((d) => d.legal_status === 'DGI_AUTHORIZED' && d.final_at)).to.equal(true);
    const keys = await db('provider_attachments').pluck('key');
    expect(new Set(keys).size).to.equal(100);
    const s3 = env.services().storage();
    for (const att of await db('provider_attachments').select()) {
      const doc = docs.find((d) => d.invoice_id === att.invoice_id)!;
      const bytes = await s3.getObjectBuffer(att.key);
      expect(bytes.equals(env.pac.pdfBytes(doc.provider_document_id)), `PDF of invoice ${att.invoice_id}`).to.equal(true);
    }
  });

  it('the PAC stand-in delivers its webhooks (duplicated, reordered) and the document still ends right', async () => {
    const { db } = t.get();
    await app.listen({ port: 0, host: '127.0.0.1' });
    const port = (app.server.address() as { port: number }).port;
    await env.close();
    env = await startProviderEnv(t.get().url, { pacAfterMs: 300, dgiAfterMs: 600, webhookUrl: `http://127.0.0.1:${port}/webhooks/pac` });
    services = env.services({ PROVIDER_API_TIMEOUT_MS: '2000' });
    env.pac.injectWebhook({ type: 'reorder' });
    env.pac.injectWebhook({ type: 'duplicate', times: 3 });
    const ids = await submitted(3);
    await new Promise((r) => setTimeout(r, 1500));
    const sent = env.pac.webhooksSent();
    expect(sent.length, 'webhooks went out').to.be.greaterThan(3);
    expect(sent.every((s) => s.httpStatus === 200), 'every delivery answered 200').to.equal(true);
    for (const id of ids) {
      const doc = (await getDocumentByInvoice(db, id))!;
      expect(doc.legal_status).to.equal('DGI_AUTHORIZED');
      expect(await getAttachment(db, id), `PDF of invoice ${id}`).to.not.equal(null);
    }
  });
});
