import { execFile } from 'node:child_process';
import crypto from 'node:crypto';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { expect } from 'chai';
import pino from 'pino';
import { testWiring } from '../helpers/wiring.js';
import type { Wiring } from '../../src/cli/wiring.js';
import { createSweeper } from '../../src/jobs/runtime/sweeper.js';
import { generateInvoice } from '../../src/invoices/generate.js';
import { runJobsInline } from '../../src/jobs/runtime/inline.js';
import { listJobs } from '../../src/jobs/store/admin.js';
import { getDocumentByInvoice } from '../../src/providers/store.js';
import { useTestDb } from '../helpers/db.js';
import { invoiceBody, seedClient, seedSupplier } from '../invoices/support.js';
import { issueInvoices, PROVIDER_TABLES, startProviderEnv, type ProviderEnv } from './support.js';

// `herald pac ...` as an operator runs it: real child processes on the test
// database, talking to the PAC stand-in and S3 that live in this process.
// The children must be spawned asynchronously: a spawnSync would block this
// event loop, and with it the stand-ins the child is calling.

const run = promisify(execFile);
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const log = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });

describe('providers.commands (herald pac)', function () {
  this.timeout(120_000);
  const t = useTestDb(import.meta.url);
  let env: ProviderEnv;
  let wiring: Wiring;
  // The PAC stand-in's clock: documents stay REGISTERED until a test moves it past dgiAfterMs.
  let clockMs = Date.now();

  beforeEach(async () => {
    clockMs = Date.now();
    env = await startProviderEnv(t.get().url, { now: () => clockMs, pacAfterMs: 60_000, dgiAfterMs: 120_000 });
    await t.get().db.raw(`TRUNCATE ${PROVIDER_TABLES} RESTART IDENTITY CASCADE`);
    wiring = testWiring({ providers: env.services() });
  });
  afterEach(async () => {
    await env.close();
  });

  async function herald(...args: string[]): Promise<{ code: number; out: string; err: string }> {
    const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !['HERALD_CRASH_AT', 'HERALD_CRASH_AFTER'].includes(k)));
    try {
      const { stdout, stderr } = await run(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'pac', ...args], {
        cwd: ROOT, env: { ...base, ...env.env }, timeout: 60_000,
      });
      return { code: 0, out: stdout, err: stderr };
    } catch (e) {
      const x = e as { code?: number; stdout?: string; stderr?: string };
      return { code: typeof x.code === 'number' ? x.code : -1, out: x.stdout ?? '', err: x.stderr ?? '' };
    }
  }

  /** Runs only the submissions (polls stay queued), so each document sits at a known state. */
  async function submitAll(maxRuns?: number): Promise<void> {
    await runJobsInline(t.get().db, wiring.jobs.definitions.filter((d) => d.kind === 'provider-submit'), { until: 'idle', log, maxRuns });
  }

  async function submitted(): Promise<number> {
    const [id] = await issueInvoices(t.get().db, 1, 'pac');
    await submitAll();
    expect((await getDocumentByInvoice(t.get().db, id!))!.status).to.equal('submitted');
    return id!;
  }

  const noInvoice = (ref: string) => `herald: INVOICE: no invoice ${ref} (give an invoice number such as ACME-000042, or an invoice id)\n`;
  const noDocument = (id: number) => `herald: INVOICE: invoice ${id} has no provider document (is its supplier configured with herald pac set-provider?)\n`;

  describe('pac status', () => {
    it('prints the document row with --json, a summary without, and refuses an unknown invoice by name', async () => {
      const { db } = t.get();
      const id = await submitted();
      const row = (await getDocumentByInvoice(db, id))!;

      const json = await herald('status', String(id), '--json');
      expect(json.code, json.err).to.equal(0);
      // The whole row, dates as JSON renders them, plus the (absent) PDF.
      expect(JSON.parse(json.out)).to.deep.equal(JSON.parse(JSON.stringify({ ...row, pdf: null })));
      expect(JSON.parse(json.out)).to.include({ invoice_id: id, status: 'submitted', legal_status: 'REGISTERED', provider_document_id: row.provider_document_id });

      const text = await herald('status', String(id));
      expect(text.out).to.equal(`invoice ${id}: submitted, legal status REGISTERED\nprovider document ${row.provider_document_id}\nno PDF filed\n`);

      const unknown = await herald('status', '9999', '--json');
      expect([unknown.code, unknown.out, unknown.err]).to.deep.equal([1, '', noInvoice('9999')]);
      // An invoice of a supplier with no provider configured exists but has no document.
      const plain = await generateInvoice(db, invoiceBody((await seedSupplier(db, { name: 'No provider' })).id, (await seedClient(db)).id) as never);
      const none = await herald('status', String(plain.id));
      expect([none.code, none.err]).to.deep.equal([1, noDocument(plain.id)]);
      const bad = await herald('status', 'abc');
      expect(bad.code).to.equal(1);
      expect(bad.err).to.equal(noInvoice('abc'));
    });
  });

  describe('pac repoll', () => {
    it('starts a new polling round: generation up, attempts reset, attention cleared, a due poll job for the new round', async () => {
      const { db } = t.get();
      const id = await submitted();
      const doc = (await getDocumentByInvoice(db, id))!;
      expect(doc.poll_generation).to.equal(0);
      // Where an exhausted round leaves a document (see markNeedsAttention).
      await db.raw(`UPDATE provider_documents SET poll_attempts = 60, needs_attention_at = now(), error_kind = 'poll_exhausted' WHERE id = ?`, [doc.id]);

      const before = Date.now();
      const res = await herald('repoll', String(id), '--json');
      expect(res.code, res.err).to.equal(0);
      expect(JSON.parse(res.out)).to.include({ invoice_id: id, poll_generation: 1, poll_attempts: 0, needs_attention_at: null });
      const after = (await getDocumentByInvoice(db, id))!;
      expect(after).to.include({ poll_generation: 1, poll_attempts: 0, needs_attention_at: null, status: 'submitted' });

      const polls = await listJobs(db, { kind: 'provider-poll', subjectId: id });
      expect(polls.map((j) => j.dedupe_key).sort()).to.deep.equal([`provider-poll:${doc.id}:0`, `provider-poll:${doc.id}:1`]);
      const fresh = polls.find((j) => j.dedupe_key === `provider-poll:${doc.id}:1`)!;
      expect(fresh.payload).to.deep.equal({ documentId: doc.id, generation: 1 });
      expect(fresh.status).to.equal('pending');
      expect(fresh.scheduled_at.getTime(), 'due at once, not one interval later').to.be.at.most(Date.now() + 1000).and.at.least(before - 60_000);

      const text = await herald('repoll', String(id));
      expect(text.out).to.equal(`invoice ${id}: polling restarted (round 2)\n`);
      expect((await getDocumentByInvoice(db, id))!.poll_generation).to.equal(2);
    });

    it('refuses an unknown invoice and one not yet submitted, changing nothing', async () => {
      const { db } = t.get();
      const [pending] = await issueInvoices(db, 1, 'pac');
      const unknown = await herald('repoll', '9999');
      expect([unknown.code, unknown.err]).to.deep.equal([1, noInvoice('9999')]);
      const notYet = await herald('repoll', String(pending));
      expect([notYet.code, notYet.out]).to.deep.equal([1, '']);
      expect(notYet.err).to.equal(`herald: INVOICE: invoice ${pending} is pending, not submitted: nothing to poll\n`);
      expect((await getDocumentByInvoice(db, pending!))!.poll_generation).to.equal(0);
      expect(await listJobs(db, { kind: 'provider-poll' })).to.have.length(0);
    });
  });

  describe('pac attach-pdf', () => {
    it('files the PAC PDF with its checksum in S3, keeps one row when run twice, and refuses while the PAC offers none', async () => {
      const { db } = t.get();
      const id = await submitted();
      const doc = (await getDocumentByInvoice(db, id))!;

      const early = await herald('attach-pdf', String(id));
      expect(early.code).to.equal(1);
      expect(early.err).to.equal(`herald: INVOICE: the PAC offers no PDF for invoice ${id} (legal status REGISTERED)\n`);
      expect(await db('provider_attachments').select()).to.deep.equal([]);

      clockMs += 121_000; // DGI_AUTHORIZED at the PAC: a PDF URL is offered
      const bytes = env.pac.pdfBytes(doc.provider_document_id!);
      const sha256 = crypto.createHash('sha256').update(bytes).digest('hex');
      const first = await herald('attach-pdf', String(id), '--json');
      expect(first.code, first.err).to.equal(0);
      const att = JSON.parse(first.out);
      expect(att).to.include({ invoice_id: id, document_id: doc.id, kind: 'pdf', sha256, size_bytes: bytes.length, source: 'manual', key: `providers/pdf/${id}/invoice.pdf` });
      const stored = await env.services().storage().getObjectBuffer(att.key);
      expect(stored.equals(bytes), 'S3 holds the PAC PDF byte for byte').to.equal(true);

      const second = await herald('attach-pdf', String(id));
      expect(second.code, second.err).to.equal(0);
      expect(second.out).to.equal(`invoice ${id}: PDF stored at ${att.key}, sha256 ${sha256}\n`);
      const rows = await db('provider_attachments').where({ invoice_id: id });
      expect(rows.map((r) => [r.id, r.sha256, r.source])).to.deep.equal([[att.id, sha256, 'manual']]);
      expect(env.pac.requests().filter((r) => r.route === 'pdf' && r.status === 200), 'downloaded afresh each time').to.have.length(2);

      const shown = await herald('status', String(id));
      expect(shown.out).to.contain(`PDF ${att.key} sha256 ${sha256}\n`);
      const unknown = await herald('attach-pdf', '9999');
      expect([unknown.code, unknown.err]).to.deep.equal([1, noInvoice('9999')]);
    });
  });

  describe('pac resubmit', () => {
    it('moves a failed submission back to pending with a new submit job that a worker then completes', async () => {
      const { db } = t.get();
      const [id] = await issueInvoices(db, 1, 'pac');
      env.pac.inject({ type: 'status', status: 401, match: 'submit', times: 1 });
      await submitAll(1);
      const failed = (await getDocumentByInvoice(db, id!))!;
      expect([failed.status, failed.error_kind]).to.deep.equal(['failed', 'auth']);
      const jobsBefore = await listJobs(db, { kind: 'provider-submit', subjectId: id! });
      expect(jobsBefore.map((j) => j.status)).to.deep.equal(['failed_permanent']);

      const res = await herald('resubmit', String(id), '--json');
      expect(res.code, res.err).to.equal(0);
      expect(JSON.parse(res.out)).to.include({ invoice_id: id, status: 'pending', idempotency_key: failed.idempotency_key });
      expect((await getDocumentByInvoice(db, id!))!.status).to.equal('pending');
      const jobs = await listJobs(db, { kind: 'provider-submit', subjectId: id! });
      expect(jobs.map((j) => j.status)).to.deep.equal(['pending', 'failed_permanent']);
      expect(jobs[0]!.payload).to.deep.equal({ documentId: failed.id });

      // The queued job is a real one: the next run submits the document, once.
      await submitAll();
      expect((await getDocumentByInvoice(db, id!))!.status).to.equal('submitted');
      expect(env.pac.documents().map((d) => d.externalId)).to.deep.equal([failed.idempotency_key]);
    });

    it('can resubmit a submission whose job died of stalls: the sweeper gives up and the document becomes failed', async () => {
      const { db } = t.get();
      const [id] = await issueInvoices(db, 1, 'pac');
      const doc = (await getDocumentByInvoice(db, id!))!;
      // A worker claimed the submission and died, for the sixth time.
      await db('jobs').where({ kind: 'provider-submit', subject_id: String(id) })
        .update({ status: 'processing', claim_token: crypto.randomUUID(), attempts: 1, stall_count: 5, started_at: db.fn.now(), heartbeat_at: db.fn.now() });
      const sweeper = createSweeper({ db, definitions: wiring.jobs.definitions, log, intervalMs: 60_000, onPermanentFailure: wiring.jobs.onPermanentFailure });
      expect((await sweeper.runOnce({ now: new Date(Date.now() + 3600_000) })).failedPermanent).to.equal(1);
      const failed = (await getDocumentByInvoice(db, id!))!;
      expect(failed).to.include({ status: 'failed', error_kind: 'stalled' });
      expect(failed.last_error).to.match(/^submission gave up: stalled 6 times/);
      const res = await herald('resubmit', String(id));
      expect(res.code, res.err).to.equal(0);
      await submitAll();
      expect((await getDocumentByInvoice(db, id!))!.status).to.equal('submitted');
      expect(env.pac.documents().map((d) => d.externalId)).to.deep.equal([doc.idempotency_key]);
    });

    it('refuses a document that is not failed, and an unknown invoice, queueing nothing', async () => {
      const { db } = t.get();
      const id = await submitted();
      const before = await listJobs(db, { kind: 'provider-submit' });
      const res = await herald('resubmit', String(id));
      expect([res.code, res.out]).to.deep.equal([1, '']);
      expect(res.err).to.equal(`herald: INVOICE: invoice ${id} is submitted; only a failed submission can be resubmitted\n`);
      expect((await getDocumentByInvoice(db, id))!.status).to.equal('submitted');
      const unknown = await herald('resubmit', '9999');
      expect([unknown.code, unknown.err]).to.deep.equal([1, noInvoice('9999')]);
      expect(await listJobs(db, { kind: 'provider-submit' })).to.deep.equal(before);
    });
  });

  describe('pac set-provider', () => {
    it('stores the settings (printed with --json), replaces them on a second run, and new invoices use them', async () => {
      const { db } = t.get();
      const supplier = await seedSupplier(db);
      const res = await herald('set-provider', String(supplier.id), '--kind', 'pac', '--company-id', 'acme-pa', '--json');
      expect(res.code, res.err).to.equal(0);
      const settings = { supplier_party_id: supplier.id, provider_kind: 'pac', company_id: 'acme-pa', credentials_ref: 'default' };
      expect(JSON.parse(res.out)).to.deep.equal(settings);
      const stored = () => db('supplier_providers').select('supplier_party_id', 'provider_kind', 'company_id', 'credentials_ref');
      expect(await stored()).to.deep.equal([settings]);

      const again = await herald('set-provider', String(supplier.id), '--kind', 'invoicing_api', '--company-id', 'acme-eu', '--credentials-ref', 'eu');
      expect(again.code, again.err).to.equal(0);
      expect(again.out).to.equal(`supplier ${supplier.id} submits to invoicing_api as company acme-eu\n`);
      expect(await stored()).to.deep.equal([{ ...settings, provider_kind: 'invoicing_api', company_id: 'acme-eu', credentials_ref: 'eu' }]);

      const client = await seedClient(db);
      const inv = await generateInvoice(db, invoiceBody(supplier.id, client.id) as never);
      expect(await getDocumentByInvoice(db, inv.id)).to.include({ provider_kind: 'invoicing_api', company_id: 'acme-eu', credentials_ref: 'eu', status: 'pending' });
    });

    it('answers a bad value with one line naming the option or argument, storing nothing', async () => {
      const { db } = t.get();
      const supplier = await seedSupplier(db);
      const client = await seedClient(db);
      const kind = await herald('set-provider', String(supplier.id), '--kind', 'soap', '--company-id', 'x');
      expect([kind.code, kind.out, kind.err]).to.deep.equal([1, '', 'herald: --kind: must be pac or invoicing_api, got "soap"\n']);
      const notSupplier = await herald('set-provider', String(client.id), '--kind', 'pac', '--company-id', 'x');
      expect([notSupplier.code, notSupplier.err]).to.deep.equal([1, `herald: SUPPLIER: ${client.id} is not a supplier\n`]);
      const badId = await herald('set-provider', 'zero', '--kind', 'pac', '--company-id', 'x');
      expect(badId.err).to.equal('herald: SUPPLIER: must be a positive whole number, got "zero"\n');
      const tooBig = await herald('set-provider', '99999999999', '--kind', 'pac', '--company-id', 'x');
      expect([tooBig.code, tooBig.err]).to.deep.equal([1, 'herald: SUPPLIER: must be a whole number from 1 to 2147483647, got "99999999999"\n']);
      const blank = await herald('set-provider', String(supplier.id), '--kind', 'pac', '--company-id', '   ');
      expect([blank.code, blank.err]).to.deep.equal([1, 'herald: --company-id: must not be empty\n']);
      const noRef = await herald('set-provider', String(supplier.id), '--kind', 'pac', '--company-id', 'x', '--credentials-ref=');
      expect([noRef.code, noRef.err]).to.deep.equal([1, 'herald: --credentials-ref: must not be empty\n']);
      const missing = await herald('set-provider', String(supplier.id), '--kind', 'pac');
      expect(missing.code).to.not.equal(0);
      expect(missing.err.split('\n')[0]).to.contain("required option '--company-id <id>' not specified");
      expect(await db('supplier_providers').select()).to.deep.equal([]);
    });
  });

  it('has --help for each subcommand, naming its argument and options', async () => {
    const wants: Record<string, string[]> = {
      'set-provider': ['<supplier>', '--kind <kind>', '--company-id <id>', '--credentials-ref <ref>', '--json'],
      status: ['<invoice>', '--json'],
      'attach-pdf': ['<invoice>', '--json'],
      repoll: ['<invoice>', '--json'],
      resubmit: ['<invoice>', '--json'],
    };
    const results = await Promise.all(Object.keys(wants).map(async (cmd) => [cmd, await herald(cmd, '--help')] as const));
    for (const [cmd, res] of results) {
      expect(res.code, `${cmd}: ${res.err}`).to.equal(0);
      expect(res.out, cmd).to.contain(`Usage: herald pac ${cmd}`);
      for (const want of wants[cmd]!) expect(res.out, `${cmd} --help`).to.contain(want);
    }
  });
});
