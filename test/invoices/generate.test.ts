import crypto from 'node:crypto';
import { expect } from 'chai';
import { useTestDb } from '../helpers/db.js';
import { seedClient, seedSupplier } from './setup.js';
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
    expect(again).to.deep.equal({ id: first.id, invoiceNumber: first.invoiceNumber, created: false });
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
});
