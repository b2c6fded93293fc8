import { expect } from 'chai';
import { useTestDb } from '../helpers/db.js';
import { seedClient, seedSupplier } from './support.js';
import { formatInvoiceNumber, INVOICE_NUMBER_MAX, nextInvoiceNumberInt, numbersLeft } from '../../src/invoices/numbering.js';
import { generateInvoice } from '../../src/invoices/generate.js';
import { NumberingExhausted } from '../../src/invoices/errors.js';
import { invoiceRequestJob } from '../../src/invoices/jobs.js';
import { submitInvoiceRequest } from '../../src/invoices/requests.js';
import { runJobsInline } from '../../src/jobs/runtime/inline.js';
import { isUniqueViolation, pgCode, PG_CHECK_VIOLATION } from '../../src/db/errors.js';
import type { GenerateInvoiceRequest } from '../../src/invoices/schemas.js';

describe('invoices.numbering', () => {
  const t = useTestDb(import.meta.url);
  const body = (supplierId: number, clientId: number): GenerateInvoiceRequest => ({
    supplierId,
    clientId,
    items: [{ description: 'Service', quantity: '1', unitPrice: '10' }],
  });
  const numbers = async (supplierId: number) =>
    (await t.get().db('invoices').where({ supplier_party_id: supplierId }).orderBy('invoice_number_int').select('invoice_number', 'invoice_number_int')).map(
      (r) => [r.invoice_number, Number(r.invoice_number_int)],
    );

  it('pads to the digits, never truncates, and starts at the start number', () => {
    expect(formatInvoiceNumber('INV-', 6, 42)).to.equal('INV-000042');
    expect(formatInvoiceNumber('', 3, 12345)).to.equal('12345');
    expect(nextInvoiceNumberInt({ last_invoice_number: 0, invoice_start_number: 1000 })).to.equal(1000);
    expect(nextInvoiceNumberInt({ last_invoice_number: 1000, invoice_start_number: 1000 })).to.equal(1001);
  });

  it('numbers each supplier on its own: prefix, digits and start number', async () => {
    const a = await seedSupplier(t.get().db, { invoice_prefix: 'A/', invoice_digits: 4, invoice_start_number: 77 });
    const b = await seedSupplier(t.get().db, { invoice_prefix: '', invoice_digits: 2 });
    const c = await seedClient(t.get().db);
    for (let i = 0; i < 3; i++) {
      await generateInvoice(t.get().db, body(a.id, c.id));
      await generateInvoice(t.get().db, body(b.id, c.id));
    }
    expect(await numbers(a.id)).to.deep.equal([['A/0077', 77], ['A/0078', 78], ['A/0079', 79]]);
    expect(await numbers(b.id)).to.deep.equal([['01', 1], ['02', 2], ['03', 3]]);
    const supplier = await t.get().db('parties').where({ id: a.id }).first();
    expect(Number(supplier.last_invoice_number)).to.equal(79);
  });

  it('gives 300 concurrent calls on 20 connections numbers 1..300, no gap, no duplicate', async () => {
    const s = await seedSupplier(t.get().db);
    const c = await seedClient(t.get().db);
    const made = await Promise.all(Array.from({ length: 300 }, () => generateInvoice(t.get().db, body(s.id, c.id))));
    const ints = (await numbers(s.id)).map(([, n]) => n);
    expect(ints).to.deep.equal(Array.from({ length: 300 }, (_, i) => i + 1));
    expect(new Set(made.map((m) => m.invoiceNumber)).size).to.equal(300);
  });

  it('gives the number back when the transaction rolls back (an item breaks a CHECK)', async () => {
    const s = await seedSupplier(t.get().db);
    const c = await seedClient(t.get().db);
    await generateInvoice(t.get().db, body(s.id, c.id));
    // 10^14 is past numeric(18,4): the item insert fails after the number was taken.
    const tooBig = { ...body(s.id, c.id), items: [{ description: 'x', quantity: '1', unitPrice: '100000000000000' }] };
    let failed = false;
    await generateInvoice(t.get().db, tooBig).catch(() => (failed = true));
    expect(failed).to.equal(true);
    await generateInvoice(t.get().db, body(s.id, c.id));
    expect((await numbers(s.id)).map(([, n]) => n)).to.deep.equal([1, 2]);
  });

  it('has ux_invoices_supplier_number refuse a duplicate number written around the lock', async () => {
    const s = await seedSupplier(t.get().db);
    const c = await seedClient(t.get().db);
    await generateInvoice(t.get().db, body(s.id, c.id));
    const row = await t.get().db('invoices').where({ supplier_party_id: s.id }).first();
    const { id, created_at, ...copy } = row;
    void id;
    void created_at;
    let err: unknown;
    await t.get().db('invoices').insert({ ...copy, invoice_number_int: 99 }).catch((e: unknown) => (err = e));
    expect(isUniqueViolation(err, 'ux_invoices_supplier_number')).to.equal(true);
  });

  describe('at the top of the range (2^53 - 1)', () => {
    const MAX = Number.MAX_SAFE_INTEGER;
    const lastNumber = async (supplierId: number) => Number((await t.get().db('parties').where({ id: supplierId }).first()).last_invoice_number);

    it('counts the numbers left and stops at INVOICE_NUMBER_MAX', () => {
      expect(INVOICE_NUMBER_MAX).to.equal(MAX);
      expect(numbersLeft({ invoice_start_number: 1, last_invoice_number: 0 })).to.equal(MAX);
      expect(numbersLeft({ invoice_start_number: MAX, last_invoice_number: 0 })).to.equal(1);
      expect(numbersLeft({ invoice_start_number: 1, last_invoice_number: MAX - 1 })).to.equal(1);
      expect(numbersLeft({ invoice_start_number: 1, last_invoice_number: MAX })).to.equal(0);
    });

    it('issues the last number, then refuses every later one with NumberingExhausted before writing anything', async () => {
      const { db } = t.get();
      const s = await seedSupplier(db, { invoice_start_number: MAX - 1, invoice_digits: 16 });
      const c = await seedClient(db);
      await generateInvoice(db, body(s.id, c.id));
      await generateInvoice(db, body(s.id, c.id));
      for (let i = 0; i < 3; i++) {
        const err = await generateInvoice(db, body(s.id, c.id)).catch((e: unknown) => e);
        expect(err).to.be.instanceOf(NumberingExhausted);
        expect((err as NumberingExhausted).message).to.contain(`numbering exhausted for supplier ${s.id}`);
      }
      expect(await numbers(s.id)).to.deep.equal([[`INV-${MAX - 1}`, MAX - 1], [`INV-${MAX}`, MAX]]);
      expect(await lastNumber(s.id)).to.equal(MAX);
    });

    it('takes only the batch companions that still have a number; the others fail as exhausted, none is lost or duplicated', async () => {
      const { db } = t.get();
      const s = await seedSupplier(db, { invoice_start_number: MAX - 2 });
      const c = await seedClient(db);
      const requests = [];
      for (let i = 0; i < 6; i++) requests.push((await submitInvoiceRequest(db, { caller: 'numbering-test', body: body(s.id, c.id) })).request.id);
      await runJobsInline(db, [invoiceRequestJob], { until: 'idle' });
      const rows = await db('invoice_requests').whereIn('id', requests).select('status', 'error_message');
      expect(rows.filter((r) => r.status === 'completed')).to.have.length(3);
      const failed = rows.filter((r) => r.status === 'failed');
      expect(failed).to.have.length(3);
      for (const r of failed) expect(r.error_message).to.contain(`numbering exhausted for supplier ${s.id}`);
      expect((await numbers(s.id)).map(([, n]) => n)).to.deep.equal([MAX - 2, MAX - 1, MAX]);
      const jobs = await db('jobs').whereIn('subject_id', requests).select('status');
      expect(jobs.map((j) => j.status), 'an exhausted supplier is an outcome, not a job to retry').to.deep.equal(Array(6).fill('completed'));
    });

    it('has the database refuse numbers past 2^53 - 1 written around the code (migration 0012)', async () => {
      const { db } = t.get();
      const s = await seedSupplier(db);
      for (const change of [{ invoice_start_number: '9007199254740992' }, { last_invoice_number: '9007199254740992' }]) {
        const err = await db('parties').where({ id: s.id }).update(change).catch((e: unknown) => e);
        expect(pgCode(err), JSON.stringify(change)).to.equal(PG_CHECK_VIOLATION);
      }
    });
  });
});
