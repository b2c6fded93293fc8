import { expect } from 'chai';
import type { FastifyInstance } from 'fastify';
import pino from 'pino';
import { createApiKey } from '../../src/http/api-keys.js';
import { buildServer } from '../../src/http/server.js';
import { insertMissingUploads } from '../../src/exporter/store.js';
import { runJobsInline } from '../../src/jobs/runtime/inline.js';
import { enqueueJob } from '../../src/jobs/store/enqueue.js';
import { listJobs } from '../../src/jobs/store/admin.js';
import { createLogger } from '../../src/log.js';
import { getAttachment, getDocumentByInvoice, upsertSupplierProvider } from '../../src/providers/store.js';
import { adminSession, type AdminSession } from '../helpers/admin.js';
import { useTestDb } from '../helpers/db.js';
import { definitionsWith, testWiring } from '../helpers/wiring.js';
import { invoiceBody, seedClient, seedSupplier } from '../invoices/support.js';
import { COMPANY, fakeClock, startProviderEnv, type ProviderEnv } from '../providers/support.js';

// Issue 13 item 9, over plain HTTP (inject) against the full server, real
// Postgres, S3 and the PAC stand-in: an invoice made synchronously that
// reached DGI_AUTHORIZED with its PDF is on the Invoices page with its
// provider status and a working PDF link; failed invoice requests are listed
// too; every job subject link answers 200 with that subject; times carry
// their zone; no page has inline script or style (they must run under a
// strict Content-Security-Policy).

const log = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });

describe('admin invoices page and job subject links', function () {
  this.timeout(120_000);
  const t = useTestDb(import.meta.url);
  let env: ProviderEnv;
  let app: FastifyInstance;
  let admin: AdminSession;
  let auth: { authorization: string };
  const seeded = { syncInvoice: 0, syncNumber: '', asyncInvoice: 0, failedRequest: '', doneRequest: '', reportId: '', uploadId: 0 };

  const get = (url: string) => app.inject({ method: 'GET', url, headers: { cookie: admin.cookie } });

  before(async () => {
    const { db, url } = t.get();
    const clock = fakeClock();
    env = await startProviderEnv(url, { now: () => clock.ms(), pacAfterMs: 1_000, dgiAfterMs: 2_000 });
    const config = env.config({ ADMIN_SESSION_SECRET: 'admin-session-secret-for-tests-0123456789' });
    app = await buildServer({ db, config, log: createLogger('silent'), processMetrics: false, plugins: testWiring({ providers: env.services() }).routes });
    admin = await adminSession(app, db);
    auth = { authorization: `Bearer ${(await createApiKey(db, 'admin-invoices-test')).key}` };

    const supplier = await seedSupplier(db, { name: 'Sync & <Sons> S.A.' });
    const client = await seedClient(db);
    await upsertSupplierProvider(db, { supplier_party_id: supplier.id, provider_kind: 'pac', company_id: COMPANY, credentials_ref: 'default' });
    const sync = await app.inject({ method: 'POST', url: '/api/v1/invoices/generate', headers: auth, payload: invoiceBody(supplier.id, client.id) });
    expect(sync.statusCode, sync.body).to.equal(201);
    seeded.syncInvoice = sync.json().id;
    seeded.syncNumber = sync.json().invoiceNumber;
    const queue = (clientId: number) => app.inject({ method: 'POST', url: '/api/v1/invoice-requests', headers: auth, payload: invoiceBody(supplier.id, clientId) });
    seeded.doneRequest = (await queue(client.id)).json().requestId;
    // The supplier as client: accepted (the party exists), refused by the worker: FAILED.
    seeded.failedRequest = (await queue(supplier.id)).json().requestId;

    await runJobsInline(db, definitionsWith({ providers: env.services() }), { until: 'idle', waitForRetriesMs: 6 * 3600_000, now: clock.now, sleep: clock.sleep, log });
    expect(await getDocumentByInvoice(db, seeded.syncInvoice)).to.include({ status: 'submitted', legal_status: 'DGI_AUTHORIZED' });
    expect(await getAttachment(db, seeded.syncInvoice), 'its PDF is filed').to.not.equal(null);
    seeded.asyncInvoice = (await db('invoice_requests').where({ id: seeded.doneRequest }).first()).invoice_id;

    // A report (left RUNNING: its job is not run here), an upload with a notification job, and a job whose subject is another job (a failure mail's).
    seeded.reportId = (await app.inject({ method: 'POST', url: '/api/v1/reports', headers: auth, payload: { type: 'invoices', params: { from: '2026-01-01', to: '2026-12-31' } } })).json().id;

    await db.raw(`INSERT INTO envelopes (envelope_id, year, counter, size_bytes, md5) VALUES ('260001', 26, 1, 10, 'bWQ1')`);
    const [upload] = await insertMissingUploads(db, { bucket: 'b', prefix: 'p/' });
    seeded.uploadId = upload!.id;
    await enqueueJob(db, 'notify-hmrc', { uploadId: upload!.id }, { subjectType: 'upload', subjectId: upload!.id });
    const failed = (await listJobs(db, { kind: 'invoice-request' }))[0]!;
    await enqueueJob(db, 'send-failure-mail', { failureMailId: 1 }, { subjectType: 'job', subjectId: failed.id });
  });
  after(async () => {
    await app?.close();
    await env?.close();
  });

  it('lists the synchronously made invoice with supplier, DGI_AUTHORIZED, a working PDF link and actions', async () => {
    const page = await get('/admin/invoices');
    expect(page.statusCode).to.equal(200);
    const row = new RegExp(`<tr data-invoice-id="${seeded.syncInvoice}">(.*?)</tr>`).exec(page.body)?.[1];
    expect(row, 'the sync invoice has a row').to.be.a('string');
    expect(row).to.include(seeded.syncNumber).and.include('Sync &#38; &#60;Sons&#62; S.A.').and.include('<td>sync</td>');
    expect(row).to.include('st-submitted').and.include('DGI_AUTHORIZED').and.include('Repoll');
    expect(row, 'a filed PDF needs no attach button').to.not.include('Attach PDF');
    const pdfHref = /<a href="([^"]+\/pdf)">PDF<\/a>/.exec(row!)?.[1];
    expect(pdfHref).to.equal(`/admin/invoices/${seeded.syncInvoice}/pdf`);
    const pdf = await get(pdfHref!);
    expect(pdf.statusCode).to.equal(200);
    expect(pdf.headers['content-type']).to.equal('application/pdf');
    const doc = (await getDocumentByInvoice(t.get().db, seeded.syncInvoice))!;
    expect(pdf.rawPayload.equals(env.pac.pdfBytes(doc.provider_document_id!)), 'the PAC PDF, byte for byte').to.equal(true);

    const asyncRow = new RegExp(`<tr data-invoice-id="${seeded.asyncInvoice}">(.*?)</tr>`).exec(page.body)?.[1];
    expect(asyncRow, 'the invoice made by a request is listed too, linked to its request').to.include(`request=${seeded.doneRequest}`);
    expect(page.body, 'two invoices fit one page: no older page').to.not.include('older ›');
    const older = await get(`/admin/invoices?before=${seeded.asyncInvoice}`);
    expect(older.body).to.include(`data-invoice-id="${seeded.syncInvoice}"`).and.not.include(`data-invoice-id="${seeded.asyncInvoice}"`);
    expect(older.body).to.include('‹ newest');
  });

  it('lists invoice requests in their own section, the failed one with its reason', async () => {
    const page = await get('/admin/invoices');
    const section = page.body.slice(page.body.indexOf('<table id="invoice-requests"'));
    const failed = new RegExp(`<tr data-request-id="${seeded.failedRequest}">(.*?)</tr>`).exec(section)?.[1];
    expect(failed).to.include('st-failed').and.include('not a client');
    expect(section).to.include(`<tr data-request-id="${seeded.doneRequest}">`);
    expect((await get('/admin/invoices/2147483647')).statusCode, 'an unknown invoice is a 404 page').to.equal(404);
  });

  it('links every job subject to a page that answers 200 and shows that subject', async () => {
    const page = await get('/admin?order=asc');
    const table = page.body.slice(page.body.indexOf('<table id="jobs"'));
    const links = [...table.matchAll(/<td><a href="([^"]+)">([a-z_]+) ([^<]+)<\/a><\/td>/g)].map((m) => ({ href: m[1]!.replaceAll('&#38;', '&'), type: m[2]!, id: m[3]! }));
    const types = new Set(links.map((l) => l.type));
    expect([...types].sort()).to.deep.equal(['invoice', 'invoice_request', 'job', 'report', 'upload']);
    // What each subject's page must show to be that subject's page.
    const shows: Record<string, (id: string) => string> = {
      invoice: (id) => `data-invoice-id="${id}"`,
      invoice_request: (id) => `data-request-id="${id}"`,
      report: (id) => `data-report-id="${id}"`,
      upload: (id) => `id="upload-${id}"`,
      job: (id) => `data-job-id="${id}"`,
    };
    for (const l of links) {
      const res = await get(l.href);
      expect(res.statusCode, `${l.type} ${l.id} -> ${l.href}`).to.equal(200);
      expect(res.body, `${l.href} shows ${l.type} ${l.id}`).to.include(shows[l.type]!(l.id));
    }
    expect(links.some((l) => l.type === 'invoice' && l.id === String(seeded.syncInvoice)), 'the sync invoice has jobs (submit, poll)').to.equal(true);
  });

  it('shows times in UTC with their zone, and carries no inline script or style on any page', async () => {
    const urls = ['/admin', '/admin/taric', '/admin/invoices', `/admin/invoices/${seeded.syncInvoice}`, `/admin/invoices?request=${seeded.failedRequest}`,
      '/admin/reports', `/admin/reports/${seeded.reportId}`, `/admin/taric?upload=${seeded.uploadId}`, '/admin/login'];
    for (const url of urls) {
      const res = await get(url);
      expect(res.statusCode, url).to.equal(200);
      expect(res.body, `${url}: no time without its zone`).to.not.match(/\d{4}-\d\d-\d\d[ T]\d\d:\d\d(:\d\d)?(?![0-9:.]*Z)/);
      expect(res.body, `${url}: no inline style`).to.not.match(/<style|style="/i);
      expect(res.body, `${url}: scripts only from files`).to.not.match(/<script(?![^>]*\ssrc=)/i);
      expect(res.body, `${url}: no inline handlers`).to.not.match(/\son[a-z]+="/i);
    }
    const invoices = (await get('/admin/invoices')).body;
    expect(invoices).to.match(/<td>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ<\/td>/);
    const css = await app.inject({ method: 'GET', url: /href="(\/admin\/assets\/admin\.css[^"]*)"/.exec(invoices)![1]! });
    expect(css.statusCode).to.equal(200);
    expect(css.headers['content-type']).to.match(/^text\/css/);
    expect(css.body).to.include('.scroll{overflow:auto');
  });
});
