import { expect } from 'chai';
import { useTestDb } from '../helpers/db.js';
import { invoiceBody, seedClient, seedSupplier, startApi, type Api } from './support.js';

describe('invoices.routes', () => {
  const t = useTestDb(import.meta.url);
  let api: Api;
  let supplierId: number;
  let clientId: number;

  before(async () => {
    api = await startApi(t.get().db, { now: () => new Date('2026-11-05T10:00:00Z') });
    supplierId = (await seedSupplier(t.get().db)).id;
    clientId = (await seedClient(t.get().db)).id;
  });
  after(async () => {
    await api.app.close();
  });

  const post = (url: string, payload: unknown, headers: Record<string, string> = {}) =>
    api.app.inject({ method: 'POST', url, payload: payload as object, headers: { ...api.auth, ...headers } });
  const get = (url: string) => api.app.inject({ method: 'GET', url, headers: api.auth });

  describe('parties', () => {
    it('creates, gets and lists suppliers and clients', async () => {
      const created = await post('/api/v1/parties', { role: 'supplier', name: 'Zed Ltd', currency: 'EUR', invoicePrefix: 'Z/', invoiceDigits: 4, invoiceStartNumber: 500 });
      expect(created.statusCode).to.equal(201);
      const party = created.json();
      expect(party).to.include({ role: 'supplier', name: 'Zed Ltd', currency: 'EUR', invoicePrefix: 'Z/', invoiceDigits: 4, invoiceStartNumber: 500, lastInvoiceNumber: 0, defaultTaxRate: '0.00' });
      expect((await get(`/api/v1/parties/${party.id}`)).json()).to.deep.equal(party);
      const clients = (await get('/api/v1/parties?role=client')).json();
      expect(clients.items.map((p: { role: string }) => p.role)).to.deep.equal(['client']);
      const page = (await get('/api/v1/parties?limit=1')).json();
      expect(page.items).to.have.length(1);
      expect(page.nextAfterId).to.equal(page.items[0].id);
    });

    it('names the bad field and answers 404 for an unknown id', async () => {
      const bad = await post('/api/v1/parties', { role: 'vendor', name: 'X' });
      expect(bad.statusCode).to.equal(400);
      expect(bad.json()).to.include({ code: 'VALIDATION_FAILED', field: 'role' });
      const unknown = await post('/api/v1/parties', { role: 'client', name: 'X', colour: 'red' });
      expect(unknown.json()).to.include({ field: 'colour', message: 'colour: unknown field' });
      expect((await get('/api/v1/parties/999999')).statusCode).to.equal(404);
      expect((await get('/api/v1/parties/abc')).json()).to.include({ statusCode: 400, field: 'id' });
    });
  });

  describe('POST /api/v1/invoices/generate', () => {
    it('answers 201 with the InvoiceResponse, amounts exact and rounded half-up per line', async () => {
      const res = await post('/api/v1/invoices/generate', invoiceBody(supplierId, clientId, { notes: 'Thanks' }));
      expect(res.statusCode).to.equal(201);
      const inv = res.json();
      expect(inv).to.include({ invoiceNumber: 'INV-000001', invoiceNumberInt: 1, supplierId, clientId, issueDate: '2026-11-02', dueDate: '2026-12-02', currency: 'GBP', status: 'ISSUED', notes: 'Thanks', requestId: null });
      // line 1: 3 x 19.99 = 59.97, tax 20% = 11.994 -> 11.99
      // line 2: 2.5 x 10.005 = 25.0125 -> 25.01, - 1.00 = 24.01, tax 5% = 1.2005 -> 1.20 (half-up)
      expect(inv.items).to.deep.equal([
        { lineNumber: 1, description: 'Customs brokerage', quantity: '3', unitPrice: '19.99', discount: '0.00', taxRate: '20', subtotal: '59.97', tax: '11.99', total: '71.96' },
        { lineNumber: 2, description: 'Storage (pallet-days)', quantity: '2.5', unitPrice: '10.005', discount: '1.00', taxRate: '5', subtotal: '24.01', tax: '1.20', total: '25.21' },
      ]);
      expect(inv).to.include({ subtotal: '83.98', taxTotal: '13.19', total: '97.17' });
      expect(inv.supplier).to.deep.equal({ name: 'Acme Exports Ltd', taxId: 'GB123456789', vatId: null, address: '1 Dock Road, Felixstowe', email: null });
      expect(inv.client.vatId).to.equal('DE811907980');
    });

    it('defaults the issue date to today (injected clock)', async () => {
      const inv = (await post('/api/v1/invoices/generate', invoiceBody(supplierId, clientId, { issueDate: undefined }))).json();
      expect(inv).to.include({ issueDate: '2026-11-05', dueDate: '2026-12-05' });
    });

    it('answers 400 naming each kind of bad field, and stores nothing', async () => {
      const cases: [Record<string, unknown>, string][] = [
        [{ supplierId: 'x' }, 'supplierId'],
        [{ items: [] }, 'items'],
        [{ items: [{ description: 'a', quantity: 1.5, unitPrice: '1' }] }, 'items[0].quantity'],
        [{ items: [{ description: 'a', quantity: '0', unitPrice: '1' }] }, 'items[0].quantity'],
        [{ items: [{ description: 'a', quantity: '1', unitPrice: '1.00001' }] }, 'items[0].unitPrice'],
        [{ items: [{ description: 'a', quantity: '1', unitPrice: '1', taxRate: '100.5' }] }, 'items[0].taxRate'],
        [{ items: [{ description: 'a', quantity: '2', unitPrice: '1', discount: '2.01' }] }, 'items[0].discount'],
        [{ items: [{ description: '', quantity: '1', unitPrice: '1' }] }, 'items[0].description'],
        [{ items: [{ description: 'a', quantity: '1', unitPrice: '1', colour: 'red' }] }, 'items[0].colour'],
        [{ issueDate: '2026-02-30' }, 'issueDate'],
        [{ dueDate: '2026-01-01' }, 'dueDate'],
        [{ currency: 'eur' }, 'currency'],
      ];
      const before = await t.get().db('invoices').count({ n: '*' }).first();
      for (const [over, field] of cases) {
        const res = await post('/api/v1/invoices/generate', invoiceBody(supplierId, clientId, over));
        expect(res.statusCode, field).to.equal(400);
        expect(res.json(), field).to.include({ code: 'VALIDATION_FAILED', field });
        expect(res.json().message, field).to.match(new RegExp(`^${field.replace(/[[\]]/g, '\\$&')}: `));
      }
      expect(await t.get().db('invoices').count({ n: '*' }).first()).to.deep.equal(before);
    });

    it('answers 400 for a body that is not JSON', async () => {
      const res = await api.app.inject({ method: 'POST', url: '/api/v1/invoices/generate', payload: '{"supplierId":', headers: { ...api.auth, 'content-type': 'application/json' } });
      expect(res.statusCode).to.equal(400);
      expect(res.json().code).to.equal('INVALID_BODY');
    });

    it('answers 422 with the id for an unknown supplier or client and a party in the wrong role', async () => {
      const unknown = await post('/api/v1/invoices/generate', invoiceBody(987654, clientId));
      expect(unknown.statusCode).to.equal(422);
      expect(unknown.json()).to.include({ code: 'UNKNOWN_PARTY', field: 'supplierId', message: 'supplierId 987654: no such party' });
      const unknownClient = await post('/api/v1/invoices/generate', invoiceBody(supplierId, 987655));
      expect(unknownClient.json()).to.include({ code: 'UNKNOWN_PARTY', field: 'clientId' });
      const swapped = await post('/api/v1/invoices/generate', invoiceBody(clientId, supplierId));
      expect(swapped.statusCode).to.equal(422);
      expect(swapped.json().code).to.equal('WRONG_PARTY_ROLE');
    });
  });

  describe('GET /api/v1/invoices/{invoiceNumber}', () => {
    it('returns the same InvoiceResponse the generate call returned', async () => {
      const made = (await post('/api/v1/invoices/generate', invoiceBody(supplierId, clientId))).json();
      const res = await get(`/api/v1/invoices/${made.invoiceNumber}`);
      expect(res.statusCode).to.equal(200);
      expect(res.json()).to.deep.equal(made);
    });

    it('answers 409 listing the suppliers when a number is shared, and resolves it with supplierId', async () => {
      const other = await seedSupplier(t.get().db, { name: 'Other Ltd' });
      const made = (await post('/api/v1/invoices/generate', invoiceBody(other.id, clientId))).json();
      expect(made.invoiceNumber).to.equal('INV-000001');
      const ambiguous = await get('/api/v1/invoices/INV-000001');
      expect(ambiguous.statusCode).to.equal(409);
      expect(ambiguous.json()).to.include({ code: 'AMBIGUOUS_INVOICE_NUMBER', field: 'supplierId' });
      expect(ambiguous.json().supplierIds).to.deep.equal([supplierId, other.id]);
      const one = await get(`/api/v1/invoices/INV-000001?supplierId=${other.id}`);
      expect(one.json()).to.deep.equal(made);
    });

    it('answers 404 for an unknown number', async () => {
      const res = await get('/api/v1/invoices/NOPE-1');
      expect(res.statusCode).to.equal(404);
      expect(res.json()).to.include({ code: 'NOT_FOUND', field: 'invoiceNumber' });
    });
  });

  describe('the UI form', () => {
    const form = (fields: [string, string][], headers: Record<string, string> = {}) =>
      api.app.inject({
        method: 'POST',
        url: '/invoices/generate',
        payload: new URLSearchParams(fields).toString(),
        headers: { ...api.auth, 'content-type': 'application/x-www-form-urlencoded', ...headers },
      });

    it('takes a form post with repeated item fields and answers a small HTML page', async () => {
      const res = await form([
        ['supplierId', String(supplierId)],
        ['clientId', String(clientId)],
        ['issueDate', '2026-11-03'],
        ['description', 'Brokerage'], ['quantity', '1'], ['unitPrice', '100'], ['discount', ''], ['taxRate', ''],
        ['description', ''], ['quantity', ''], ['unitPrice', ''], ['discount', ''], ['taxRate', ''],
        ['description', 'Courier <fast>'], ['quantity', '2'], ['unitPrice', '5.5'], ['discount', ''], ['taxRate', '0'],
      ]);
      expect(res.statusCode).to.equal(201);
      expect(res.headers['content-type']).to.contain('text/html');
      const number = /id="invoice-number">([^<]+)</.exec(res.body)?.[1];
      expect(res.body).to.contain('GBP 131.00');
      const inv = (await get(`/api/v1/invoices/${number}?supplierId=${supplierId}`)).json();
      expect(inv.items.map((i: { description: string }) => i.description)).to.deep.equal(['Brokerage', 'Courier <fast>']);
      expect(inv.total).to.equal('131.00');
    });

    it('answers 400 as HTML naming the field', async () => {
      const res = await form([['supplierId', 'abc'], ['clientId', String(clientId)], ['description', 'x'], ['quantity', '1'], ['unitPrice', '1']]);
      expect(res.statusCode).to.equal(400);
      expect(res.headers['content-type']).to.contain('text/html');
      expect(res.body).to.contain('supplierId: must be a positive id');
    });

    it('refuses a cross-site post and asks a browser without credentials to log in', async () => {
      const cross = await form([['supplierId', String(supplierId)]], { origin: 'https://evil.example', 'sec-fetch-site': 'cross-site' });
      expect(cross.statusCode).to.equal(403);
      const anon = await api.app.inject({ method: 'GET', url: '/invoices/new' });
      expect(anon.statusCode).to.equal(401);
      expect(anon.headers['www-authenticate']).to.match(/^Basic /);
      const page = await api.app.inject({ method: 'GET', url: '/invoices/new', headers: api.auth });
      expect(page.body).to.contain('<form method="post" action="/invoices/generate">');
    });
  });

  it('documents the invoice routes in /openapi.json', async () => {
    const doc = (await api.app.inject({ method: 'GET', url: '/openapi.json' })).json();
    expect(Object.keys(doc.paths)).to.include.members([
      '/api/v1/invoices/generate',
      '/api/v1/invoices/{invoiceNumber}',
      '/api/v1/invoice-requests',
      '/api/v1/invoice-requests/{id}',
      '/api/v1/invoice-requests/{id}/invoice',
      '/api/v1/parties',
    ]);
    const body = doc.paths['/api/v1/invoices/generate'].post.requestBody.content['application/json'].schema;
    expect(body.required).to.include.members(['supplierId', 'clientId', 'items']);
  });
});
