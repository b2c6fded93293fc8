import { expect } from 'chai';
import pino from 'pino';
import { useTestDb } from '../helpers/db.js';
import { invoiceBody, seedClient, seedSupplier } from './setup.js';
import { failRequestOfDeadJob, invoiceRequestJob } from '../../src/invoices/jobs.js';
import { submitInvoiceRequest } from '../../src/invoices/requests.js';
import { generateInvoiceRequest } from '../../src/invoices/schemas.js';
import { createSweeper } from '../../src/jobs/runtime/sweeper.js';
import { runJobsInline } from '../../src/jobs/runtime/inline.js';

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
});
