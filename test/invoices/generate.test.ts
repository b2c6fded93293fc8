import crypto from 'node:crypto';
import { expect } from 'chai';
import { useTestDb } from '../helpers/db.js';
import { seedClient, seedSupplier } from './support.js';
import { generateInvoice } from '../../src/invoices/generate.js';
import { InvoiceInputError } from '../../src/invoices/errors.js';
import { loadInvoiceResponse } from '../../src/invoices/present.js';
import type { GenerateInvoiceRequest } from '../../src/invoices/schemas.js';

describe('invoices.generateInvoice', () => {
  const t = useTestDb(import.meta.url);
  const body = (supplierId: number, clientId: number, over: Partial<GenerateInvoiceRequest> = {}): GenerateInvoiceRequest => ({
    supplierId,
    clientId,
    items: [{ description: 'Service', quantity: '2', unitPrice: '10.50' }],
    ...over,
  });

  async function requestRow(supplierId: number, clientId: number): Promise<string> {
    const [row] = await t.get().db('invoice_requests')
      .insert({ caller: 'test', body_hash: 'x', payload: '{}', supplier_party_id: supplierId, client_party_id: clientId, status: 'processing' })
      .returning('id');
    return row.id;
  }

  it('copies the party details as they were, so later edits do not change the invoice', async () => {
    const s = await seedSupplier(t.get().db, { email: 'billing@acme.test' });
    const c = await seedClient(t.get().db);
    const made = await generateInvoice(t.get().db, body(s.id, c.id), { now: () => new Date('2026-03-31T23:30:00Z') });
    await t.get().db('parties').where({ id: c.id }).update({ name: 'Renamed AG', address: 'elsewhere' });
    const inv = (await loadInvoiceResponse(t.get().db, made.id))!;
    expect(inv.client).to.include({ name: 'Bolt Imports GmbH', address: 'Hafenstr. 2, Hamburg' });
    expect(inv.supplier.email).to.equal('billing@acme.test');
    expect(inv).to.include({ issueDate: '2026-03-31', dueDate: '2026-04-30', currency: 'GBP', subtotal: '21.00', taxTotal: '4.20', total: '25.20' });
  });

  it('uses the currency given over the supplier default', async () => {
    const s = await seedSupplier(t.get().db);
    const c = await seedClient(t.get().db);
    const made = await generateInvoice(t.get().db, body(s.id, c.id, { currency: 'USD' }));
    expect((await loadInvoiceResponse(t.get().db, made.id))!.currency).to.equal('USD');
  });

  it('refuses unknown and wrong-role parties with a permanent error naming the field, taking no number', async () => {
    const s = await seedSupplier(t.get().db);
    const c = await seedClient(t.get().db);
    const cases: [GenerateInvoiceRequest, string, string][] = [
      [body(999_999, c.id), 'UNKNOWN_SUPPLIER', 'supplierId'],
      [body(s.id, 999_999), 'UNKNOWN_CLIENT', 'clientId'],
      [body(c.id, c.id), 'NOT_A_SUPPLIER', 'supplierId'],
      [body(s.id, s.id), 'NOT_A_CLIENT', 'clientId'],
      [body(s.id, c.id, { issueDate: '2026-05-01', dueDate: '2026-04-01' }), 'INVALID_FIELD', 'dueDate'],
    ];
    for (const [input, code, field] of cases) {
      const err = await generateInvoice(t.get().db, input).then(() => null, (e: unknown) => e);
      expect(err, code).to.be.instanceOf(InvoiceInputError);
      expect(err, code).to.include({ code, field });
    }
    const supplier = await t.get().db('parties').where({ id: s.id }).first();
    expect(Number(supplier.last_invoice_number)).to.equal(0);
  });

  it('returns the existing invoice for a request that already has one, without taking a number', async () => {
    const s = await seedSupplier(t.get().db);
    const c = await seedClient(t.get().db);
    const requestId = await requestRow(s.id, c.id);
    const first = await generateInvoice(t.get().db, body(s.id, c.id), { requestId });
    const again = await generateInvoice(t.get().db, body(s.id, c.id), { requestId });
    expect(first.created).to.equal(true);
    expect(again).to.deep.equal({ id: first.id, invoiceNumber: first.invoiceNumber, created: false, companions: 0 });
    const next = await generateInvoice(t.get().db, body(s.id, c.id));
    expect(next.invoiceNumber).to.equal('INV-000002');
    expect(await t.get().db('invoices').where({ request_id: requestId })).to.have.length(1);
  });

  it('lets two concurrent calls for one request make one invoice', async () => {
    const s = await seedSupplier(t.get().db);
    const c = await seedClient(t.get().db);
    const requestId = await requestRow(s.id, c.id);
    const both = await Promise.all([generateInvoice(t.get().db, body(s.id, c.id), { requestId }), generateInvoice(t.get().db, body(s.id, c.id), { requestId })]);
    expect(both[0].id).to.equal(both[1].id);
    expect(both.map((b) => b.created).sort()).to.deep.equal([false, true]);
    const supplier = await t.get().db('parties').where({ id: s.id }).first();
    expect(Number(supplier.last_invoice_number)).to.equal(1);
    void crypto;
  });

  describe('batch numbering (companions)', () => {
    async function submitted(supplierId: number, clientId: number, payload: unknown = body(supplierId, clientId)): Promise<string> {
      const [row] = await t.get().db('invoice_requests')
        .insert({ caller: 'test', body_hash: crypto.randomUUID(), payload: JSON.stringify(payload), supplier_party_id: supplierId, client_party_id: clientId })
        .returning('id');
      return row.id;
    }

    it('numbers the newest pending requests of the same supplier in the same transaction and completes them', async () => {
      const s = await seedSupplier(t.get().db);
      const other = await seedSupplier(t.get().db, { name: 'Other' });
      const c = await seedClient(t.get().db);
      const own = await submitted(s.id, c.id);
      const pending = [await submitted(s.id, c.id), await submitted(s.id, c.id), await submitted(s.id, c.id)];
      const untouched = await submitted(other.id, c.id);
      await t.get().db('invoice_requests').where({ id: own }).update({ status: 'processing' });

      const made = await generateInvoice(t.get().db, body(s.id, c.id), { requestId: own, companions: 2 });
      expect(made).to.include({ invoiceNumber: 'INV-000001', created: true, companions: 2 });
      const rows = await t.get().db('invoice_requests').select('id', 'status', 'invoice_id');
      const byId = new Map(rows.map((r) => [r.id, r]));
      // The own request is completed by its caller (the job), not here.
      expect(byId.get(own)).to.include({ status: 'processing', invoice_id: null });
      const numbers = await t.get().db('invoices').whereIn('request_id', pending).orderBy('invoice_number_int').select('request_id', 'invoice_number', 'id');
      expect(numbers.map((n) => [n.request_id, n.invoice_number])).to.deep.equal([[pending[1], 'INV-000002'], [pending[2], 'INV-000003']]);
      for (const n of numbers) expect(byId.get(n.request_id)).to.include({ status: 'completed', invoice_id: n.id });
      expect(byId.get(pending[0]!)).to.include({ status: 'pending' });
      expect(byId.get(untouched)).to.include({ status: 'pending' });
      expect(Number((await t.get().db('parties').where({ id: s.id }).first()).last_invoice_number)).to.equal(3);
    });

    it('fails a companion that cannot become an invoice, and numbers the rest without a gap', async () => {
      const s = await seedSupplier(t.get().db);
      const c = await seedClient(t.get().db);
      const own = await submitted(s.id, c.id);
      const bad = await submitted(s.id, s.id, body(s.id, s.id));
      const good = await submitted(s.id, c.id);
      await generateInvoice(t.get().db, body(s.id, c.id), { requestId: own, companions: 10 });
      expect(await t.get().db('invoice_requests').where({ id: bad }).first()).to.include({
        status: 'failed',
        error_message: `clientId ${s.id}: party is a supplier, not a client`,
      });
      const inv = await t.get().db('invoices').where({ request_id: good }).first();
      expect(inv.invoice_number).to.equal('INV-000002');
    });
  });
});
