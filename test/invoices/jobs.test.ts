import { expect } from 'chai';
import pino from 'pino';
import { useTestDb } from '../helpers/db.js';
import { invoiceBody, seedClient, seedSupplier } from './support.js';
import { classifyInvoiceFailure, failRequestOfDeadJob, invoiceRequestJob } from '../../src/invoices/jobs.js';
import { submitInvoiceRequest } from '../../src/invoices/requests.js';
import { generateInvoiceRequest } from '../../src/invoices/schemas.js';
import { createSweeper } from '../../src/jobs/runtime/sweeper.js';
import { runJobsInline } from '../../src/jobs/runtime/inline.js';
import type { GenerateInvoiceRequest } from '../../src/invoices/schemas.js';

/** Words of SQL text that must never reach a client or the admin page. */
const SQL_WORDS = /\b(insert|select|update|jsonb|invoice_items|returning)\b/i;

describe('invoices.jobs', () => {
  const t = useTestDb(import.meta.url);

  it('fails the request when its job runs out of stalls (failed_permanent by the sweeper)', async () => {
    const db = t.get().db;
    const s = await seedSupplier(db);
    const c = await seedClient(db);
    const { request } = await submitInvoiceRequest(db, { caller: 'test', body: generateInvoiceRequest.parse(invoiceBody(s.id, c.id)) });
    const other = (await submitInvoiceRequest(db, { caller: 'test', body: generateInvoiceRequest.parse(invoiceBody(s.id, c.id)) })).request;
    // A worker claimed it and died, for the fifth time.
    await db('invoice_requests').where({ id: request.id }).update({ status: 'processing', started_at: db.fn.now() });
    await db('jobs')
      .where({ subject_id: request.id })
      .update({ status: 'processing', claim_token: '00000000-0000-4000-8000-000000000001', attempts: 1, stall_count: 5, started_at: db.fn.now(), heartbeat_at: db.fn.now() });

    const sweeper = createSweeper({ db, definitions: [invoiceRequestJob], log: pino({ level: 'silent' }), intervalMs: 60_000, onPermanentFailure: failRequestOfDeadJob });
    const counts = await sweeper.runOnce({ now: new Date(Date.now() + 10 * 60_000) });
    expect(counts.failedPermanent).to.equal(1);
    const failed = await db('invoice_requests').where({ id: request.id }).first();
    expect(failed.status).to.equal('failed');
    expect(failed.error_message).to.match(/^\[stalled\] gave up: stalled 6 times/);
    expect(await db('invoice_requests').where({ id: other.id }).first()).to.include({ status: 'pending' });
  });

  it('makes a second ring for a finished request a no-op (no second invoice)', async () => {
    const db = t.get().db;
    const s = await seedSupplier(db);
    const c = await seedClient(db);
    const { request } = await submitInvoiceRequest(db, { caller: 'test', body: generateInvoiceRequest.parse(invoiceBody(s.id, c.id)) });
    await runJobsInline(db, [invoiceRequestJob], { until: 'idle' });
    const job = await db('jobs').where({ subject_id: request.id }).first();
    // Run the handler again as a duplicate bell would.
    await invoiceRequestJob.run({ requestId: request.id }, { db, signal: new AbortController().signal, log: pino({ level: 'silent' }), job, now: () => new Date() });
    expect(await db('invoices').where({ request_id: request.id })).to.have.length(1);
    expect(Number((await db('parties').where({ id: s.id }).first()).last_invoice_number)).to.equal(1);
  });

  describe('errors that reach clients (issue 12)', () => {
    it('classifies values the database refuses (SQLSTATE 22xxx) as permanent, with the condition and no SQL', async () => {
      const { db } = t.get();
      const refused: [string, string, unknown[]][] = [
        ['22007', "SELECT 'yesterday-ish'::date", []],
        ['22008', "SELECT '0000-01-01'::date", []],
        ['22021', 'SELECT ?::text', ['a\u0000b']],
        ['22003', 'SELECT 2147483648::int4', []],
        ['22P02', "SELECT 'abc'::int", []],
      ];
      for (const [code, sql, bindings] of refused) {
        const err = await db.raw(sql, bindings as never[]).catch((e: unknown) => e);
        const failure = classifyInvoiceFailure(err);
        expect(failure.errorClass, code).to.equal('permanent');
        expect(failure.message, code).to.match(new RegExp(`^generating the invoice failed: the database refused a value: \\w+ \\(${code}\\)$`));
        expect(failure.message).to.not.match(SQL_WORDS);
      }
      // A statement cut short is worth another try.
      const cancelled = await db
        .transaction(async (trx) => {
          await trx.raw('SET LOCAL statement_timeout = 10');
          await trx.raw('SELECT pg_sleep(1)');
        })
        .catch((e: unknown) => e);
      expect(classifyInvoiceFailure(cancelled)).to.include({ errorClass: 'transient', message: 'generating the invoice failed: database error: query_canceled (57014)' });
      expect(classifyInvoiceFailure(new Error('socket hang up'))).to.include({ errorClass: 'transient', message: 'generating the invoice failed' });
    });

    it('fails a request stored before the boundary with issueDate 0000-01-01 at once, naming the field (never retried)', async () => {
      const { db } = t.get();
      const s = await seedSupplier(db);
      const c = await seedClient(db);
      const body = { ...invoiceBody(s.id, c.id), issueDate: '0000-01-01' } as unknown as GenerateInvoiceRequest;
      const { request } = await submitInvoiceRequest(db, { caller: 'old-version', body });
      await runJobsInline(db, [invoiceRequestJob], { until: 'idle' });
      const failed = await db('invoice_requests').where({ id: request.id }).first();
      expect(failed.status).to.equal('failed');
      expect(failed.error_message).to.match(/^issueDate: must be a date YYYY-MM-DD from 1900-01-01 to 9999-12-30/);
      expect(await db('jobs').where({ subject_id: request.id }).first()).to.include({ status: 'completed', attempts: 1 });
    });

    it('fails a request the database refuses (22003) permanently on its first attempt, with "[permanent]", the condition and no SQL', async () => {
      const { db } = t.get();
      const s = await seedSupplier(db);
      const c = await seedClient(db);
      // A column narrower than the API's contract (a schema drift): 999 passes validation and overflows numeric(5, 4).
      await db.raw('ALTER TABLE invoice_items ALTER COLUMN quantity TYPE numeric(5, 4)');
      try {
        const body = generateInvoiceRequest.parse(invoiceBody(s.id, c.id, { items: [{ description: 'Pallets', quantity: '999', unitPrice: '1' }] }));
        const { request } = await submitInvoiceRequest(db, { caller: 'drift', body });
        await runJobsInline(db, [invoiceRequestJob], { until: 'idle' });
        const failed = await db('invoice_requests').where({ id: request.id }).first();
        expect(failed.status).to.equal('failed');
        expect(failed.error_message).to.equal('[permanent] generating the invoice failed: the database refused a value: numeric_value_out_of_range (22003)');
        const job = await db('jobs').where({ subject_id: request.id }).first();
        expect(job).to.include({ status: 'failed_permanent', attempts: 1, error_class: 'permanent' });
        expect(job.last_error).to.contain('numeric_value_out_of_range (22003)').and.not.match(SQL_WORDS);
        const attempts = await db('job_attempts').where({ job_id: job.id });
        expect(attempts).to.have.length(1);
        expect(attempts[0].error).to.not.match(SQL_WORDS);
        expect(Number((await db('parties').where({ id: s.id }).first()).last_invoice_number), 'no number taken').to.equal(0);
      } finally {
        await db.raw('ALTER TABLE invoice_items ALTER COLUMN quantity TYPE numeric(18, 4)');
      }
    });
  });
});
