import { expect } from 'chai';
import crypto from 'node:crypto';
import pino from 'pino';
import { definitionsWith } from '../helpers/wiring.js';
import { runJobsInline } from '../../src/jobs/runtime/inline.js';
import { listJobs } from '../../src/jobs/store/admin.js';
import { getAttachment, getDocumentByInvoice } from '../../src/providers/store.js';
import { startTcpProxy } from '../../src/sandbox/tcp-proxy.js';
import { useTestDb } from '../helpers/db.js';
import { seedClient, seedSupplier, invoiceBody } from '../invoices/support.js';
import { generateInvoice } from '../../src/invoices/generate.js';
import { fakeClock, issueInvoices, PROVIDER_TABLES, startProviderEnv, type FakeClock, type ProviderEnv } from './support.js';

// Submission retry queue and polling, run in-process (inline runner) against
// the real Postgres, the PAC / invoicing API stand-ins and S3. Time is a fake
// clock shared by the runner and the PAC stand-in, so a 2 h backoff or a
// 10-minute outage takes no real time.

const log = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });

describe('provider submission queue and poller (inline)', function () {
  this.timeout(120_000);
  const t = useTestDb(import.meta.url);
  let env: ProviderEnv;
  let clock: FakeClock;

  beforeEach(async () => {
    clock = fakeClock();
    env = await startProviderEnv(t.get().url, { now: () => clock.ms(), pacAfterMs: 3_000, dgiAfterMs: 8_000 });
    await t.get().db.raw(`TRUNCATE ${PROVIDER_TABLES} RESTART IDENTITY CASCADE`);
  });
  afterEach(async () => {
    await env.close();
  });

  async function run(extra: Record<string, string> = {}, maxRuns?: number) {
    return runJobsInline(t.get().db, definitionsWith({ providers: env.services({ PROVIDER_API_TIMEOUT_MS: '400', ...extra }) }), { until: 'idle', waitForRetriesMs: 6 * 3600_000, now: clock.now, sleep: clock.sleep, log, maxRuns });
  }

  async function job(kind: string, invoiceId: number) {
    const jobs = await listJobs(t.get().db, { kind });
    return jobs.find((j) => j.subject_id === String(invoiceId))!;
  }

  it('enqueues the submission in the transaction that issues the invoice, only for suppliers with a provider', async () => {
    const { db } = t.get();
    const [id] = await issueInvoices(db, 1, 'pac');
    const doc = (await getDocumentByInvoice(db, id!))!;
    expect(doc).to.include({ status: 'pending', provider_kind: 'pac', idempotency_key: `herald-inv-${id}-invoice` });
    expect((await job('provider-submit', id!)).status).to.equal('pending');

    const supplier = await seedSupplier(db, { name: 'No provider Ltd' });
    const client = await seedClient(db);
    const other = await generateInvoice(db, invoiceBody(supplier.id, client.id) as never);
    expect(await getDocumentByInvoice(db, other.id), 'no provider configured: nothing to submit').to.equal(null);

    // A rolled-back invoice leaves neither document nor job.
    const before = (await listJobs(db, { kind: 'provider-submit' })).length;
    await db.transaction(async (trx) => {
      await trx.raw(`INSERT INTO invoices (supplier_party_id, client_party_id, invoice_number, invoice_number_int, issue_date, due_date, currency,
        supplier_name, supplier_address, client_name, client_address, subtotal, tax_total, total)
        SELECT supplier_party_id, client_party_id, 'X-1', 999, issue_date, due_date, currency, supplier_name, supplier_address, client_name, client_address, 0, 0, 0 FROM invoices WHERE id = ?`, [id!]);
      throw new Error('roll back');
    }).catch(() => undefined);
    expect((await listJobs(db, { kind: 'provider-submit' })).length).to.equal(before);
  });

  it('submits each PAC invoice once, follows it to DGI_AUTHORIZED and files its PDF once with its checksum', async () => {
    const { db } = t.get();
    const ids = await issueInvoices(db, 3, 'pac');
    await run();
    expect(env.pac.documents().map((d) => d.externalId).sort()).to.deep.equal(ids.map((i) => `herald-inv-${i}-invoice`).sort());
    for (const id of ids) {
      const doc = (await getDocumentByInvoice(db, id))!;
      expect(doc).to.include({ status: 'submitted', legal_status: 'DGI_AUTHORIZED' });
      expect(doc.cufe).to.match(/^CUFE-/);
      expect(doc.final_at).to.be.instanceOf(Date);
      const pdf = (await getAttachment(db, id))!;
      const bytes = env.pac.pdfBytes(doc.provider_document_id!);
      expect(pdf.sha256).to.equal(crypto.createHash('sha256').update(bytes).digest('hex'));
      const stored = await env.services().storage().getObjectBuffer(pdf.key);
      expect(stored.equals(bytes), 'S3 holds the PAC PDF byte for byte').to.equal(true);
      const inv = await db('invoices').where({ id }).first();
      expect(inv.legal_status).to.equal('DGI_AUTHORIZED');
      expect((await job('provider-poll', id)).status).to.equal('completed');
    }
  });

  it('submits invoicing-API invoices once each, with the idempotency key as oid_unique and the token never in a URL', async () => {
    const { db } = t.get();
    const ids = await issueInvoices(db, 2, 'invoicing_api');
    // The first POST is answered after the client gave up: the retry must not create a second invoice.
    env.invoicing.inject({ type: 'latency', ms: 800, match: 'create' });
    await run();
    expect(env.invoicing.invoices().map((i) => i.oid).sort()).to.deep.equal(ids.map((i) => `herald-inv-${i}-invoice`).sort());
    expect(env.invoicing.requests().length).to.equal(3);
    expect(env.invoicing.requests().every((r) => !r.tokenInUrl)).to.equal(true);
    for (const id of ids) expect((await getDocumentByInvoice(db, id))!.status).to.equal('submitted');
    expect(await listJobs(db, { kind: 'provider-poll' }), 'no legal-status flow to follow').to.have.length(0);
  });

  // Every error class reaches the right state.
  const cases: { name: string; kind: 'pac' | 'invoicing_api'; fault?: Record<string, unknown>; extra?: Record<string, string>;
    job: string; errorClass: string; doc: string; errorKind: string; legal?: string | null }[] = [
    { name: '401 (auth): failed_permanent at once', kind: 'pac', fault: { type: 'status', status: 401, times: 5 }, job: 'failed_permanent', errorClass: 'auth', doc: 'failed', errorKind: 'auth' },
    { name: '422 (payload): failed_permanent', kind: 'pac', fault: { type: 'status', status: 422, times: 5 }, job: 'failed_permanent', errorClass: 'permanent', doc: 'failed', errorKind: 'validation' },
    { name: 'PAC 400: PAC_REJECTED, never resubmitted', kind: 'pac', fault: { type: 'status', status: 400, times: 5 }, job: 'failed_permanent', errorClass: 'permanent', doc: 'rejected', errorKind: 'rejected', legal: 'PAC_REJECTED' },
    { name: 'invoicing API 401', kind: 'invoicing_api', extra: { PROVIDER_INVOICING_TOKEN: 'wrong' }, job: 'failed_permanent', errorClass: 'auth', doc: 'failed', errorKind: 'auth' },
    { name: 'invoicing API 422', kind: 'invoicing_api', fault: { type: 'status', status: 422, body: { code: 'error', message: { buyer_name: ["can't be blank"] } } }, job: 'failed_permanent', errorClass: 'permanent', doc: 'failed', errorKind: 'validation' },
    { name: '5xx: retried', kind: 'pac', fault: { type: 'status', status: 503 }, job: 'failed', errorClass: 'transient', doc: 'pending', errorKind: 'server' },
    { name: '429: rate limited', kind: 'pac', fault: { type: 'status', status: 429, retryAfter: '120' }, job: 'failed', errorClass: 'rate_limited', doc: 'pending', errorKind: 'rate_limit' },
    { name: 'timeout: retried', kind: 'pac', fault: { type: 'hang' }, job: 'failed', errorClass: 'transient', doc: 'pending', errorKind: 'timeout' },
    { name: 'connection reset: retried', kind: 'pac', fault: { type: 'reset' }, job: 'failed', errorClass: 'transient', doc: 'pending', errorKind: 'connection' },
    { name: 'DNS failure: retried', kind: 'pac', extra: { PROVIDER_PAC_BASE_URL: 'http://herald-no-such-host.invalid' }, job: 'failed', errorClass: 'transient', doc: 'pending', errorKind: 'dns' },
  ];
  for (const c of cases) {
    it(`error class ${c.name}`, async () => {
      const { db } = t.get();
      const [id] = await issueInvoices(db, 1, c.kind);
      if (c.fault) (c.kind === 'pac' ? env.pac : env.invoicing).inject(c.fault as never);
      await run(c.extra, 1);
      const j = await job('provider-submit', id!);
      const doc = (await getDocumentByInvoice(db, id!))!;
      expect([j.status, j.error_class, doc.status, doc.error_kind]).to.deep.equal([c.job, c.errorClass, c.doc, c.errorKind]);
      expect(doc.last_error).to.be.a('string').and.not.equal('');
      expect(doc.next_step).to.be.a('string').and.not.equal('');
      if (c.legal !== undefined) expect(doc.legal_status).to.equal(c.legal);
      if (c.errorClass === 'rate_limited') {
        const wait = j.scheduled_at.getTime() - clock.ms();
        expect(wait, 'Retry-After (120 s) wins over the 5 min backoff').to.be.within(120_000, 133_000);
      }
      if (c.job === 'failed') {
        // Retried after its backoff: ends submitted, once.
        await run(c.extra?.PROVIDER_PAC_BASE_URL ? {} : c.extra);
        expect((await getDocumentByInvoice(db, id!))!.status).to.equal('submitted');
        expect(env.pac.documents()).to.have.length(1);
      } else {
        await run(c.extra);
        const posts = c.kind === 'pac' ? env.pac.requests().filter((r) => r.route === 'submit').length : env.invoicing.requests().length;
        expect(posts, 'a permanent failure is never sent again').to.equal(1);
      }
    });
  }

  it('error class TLS failure: transient, retried', async () => {
    const { db } = t.get();
    const [id] = await issueInvoices(db, 1, 'pac');
    // HTTPS to a plain-HTTP port: the handshake fails.
    await run({ PROVIDER_PAC_BASE_URL: env.pac.url.replace('http://', 'https://') }, 1);
    const j = await job('provider-submit', id!);
    const doc = (await getDocumentByInvoice(db, id!))!;
    expect([j.status, j.error_class, doc.status, doc.error_kind]).to.deep.equal(['failed', 'transient', 'pending', 'tls']);
  });

  it('looks a timed-out POST up by its idempotency key instead of posting it again', async () => {
    const { db } = t.get();
    const [id] = await issueInvoices(db, 1, 'pac');
    // Answered after the client's 400 ms timeout: the PAC created the document anyway.
    env.pac.inject({ type: 'latency', ms: 900, match: 'submit' });
    await run({}, 1);
    await new Promise((r) => setTimeout(r, 700));
    expect(env.pac.documents(), 'the PAC holds it').to.have.length(1);
    await run();
    expect(env.pac.documents(), 'still one document').to.have.length(1);
    expect(env.pac.requests().filter((r) => r.route === 'lookup')).to.have.length(1);
    const doc = (await getDocumentByInvoice(db, id!))!;
    expect(doc.provider_document_id).to.equal(env.pac.documents()[0]!.id);
    expect(doc.legal_status).to.equal('DGI_AUTHORIZED');
  });

  it('provider down 10 minutes then up: every invoice submitted once', async () => {
    const { db } = t.get();
    const target = new URL(env.pac.url);
    const proxy = await startTcpProxy({ target: { host: target.hostname, port: Number(target.port) } });
    try {
      const ids = await issueInvoices(db, 5, 'pac');
      await proxy.down();
      const downUntil = clock.ms() + 10 * 60_000;
      const sleep = clock.sleep;
      let wentUp = false;
      clock.sleep = async (ms) => {
        await sleep(ms);
        if (!wentUp && clock.ms() >= downUntil) {
          wentUp = true;
          await proxy.up();
        }
      };
      await runJobsInline(db, definitionsWith({ providers: env.services({ PROVIDER_API_TIMEOUT_MS: '400', PROVIDER_PAC_BASE_URL: proxy.url }) }), { until: 'idle', waitForRetriesMs: 6 * 3600_000, now: clock.now, sleep: clock.sleep, log });
      expect(wentUp).to.equal(true);
      const byKey = new Map<string, number>();
      for (const d of env.pac.documents()) byKey.set(d.externalId, (byKey.get(d.externalId) ?? 0) + 1);
      expect([...byKey.entries()].sort()).to.deep.equal(ids.map((i) => [`herald-inv-${i}-invoice`, 1]).sort());
      for (const id of ids) {
        const j = await job('provider-submit', id);
        expect(j.status).to.equal('completed');
        expect(j.attempts, 'failed while down, then succeeded').to.be.greaterThan(1);
        expect((await getDocumentByInvoice(db, id))!.legal_status).to.equal('DGI_AUTHORIZED');
      }
    } finally {
      await proxy.close();
    }
  });

  it('stops polling after PROVIDER_POLL_ATTEMPTS, marks the document for attention, and repolls from a fresh round', async () => {
    const { db } = t.get();
    await env.close();
    env = await startProviderEnv(t.get().url, { now: () => clock.ms(), pacAfterMs: 10 * 60_000, dgiAfterMs: 20 * 60_000 });
    const [id] = await issueInvoices(db, 1, 'pac');
    await run({ PROVIDER_POLL_ATTEMPTS: '6' });
    let doc = (await getDocumentByInvoice(db, id!))!;
    expect(doc.poll_attempts).to.equal(6);
    expect(doc.needs_attention_at).to.be.instanceOf(Date);
    expect(doc.legal_status).to.equal('REGISTERED');
    expect(env.pac.requests().filter((r) => r.route === 'status')).to.have.length(6);
    clock.advance(30 * 60_000);
    const { restartPolling } = await import('../../src/providers/store.js');
    const { schedulePolling } = await import('../../src/providers/submit.js');
    await db.transaction(async (trx) => {
      const moved = (await restartPolling(trx, doc.id))!;
      await schedulePolling(trx, env.services(), moved, clock.now());
    });
    await run({ PROVIDER_POLL_ATTEMPTS: '6' });
    doc = (await getDocumentByInvoice(db, id!))!;
    expect(doc).to.include({ legal_status: 'DGI_AUTHORIZED', poll_generation: 1, needs_attention_at: null });
    expect(await getAttachment(db, id!)).to.not.equal(null);
  });
});
