import { expect } from 'chai';
import type { FastifyInstance } from 'fastify';
import { adminPost, adminSession, type AdminSession } from '../helpers/admin.js';
import { useTestDb } from '../helpers/db.js';
import { invoiceBody, seedClient, seedSupplier } from '../invoices/support.js';
import { expectRefused, hostileServer, WEBHOOK_SECRET } from './support.js';

// Issue 12's 39 malformed requests that answered 500, one group per cause,
// each against the real server (every route plugin of the composition root)
// on a real database: now a 4xx naming the field, and nothing stored.

describe('http: hostile input (issue 12 regressions)', () => {
  const t = useTestDb(import.meta.url);
  let app: FastifyInstance;
  let auth: { authorization: string };
  let admin: AdminSession;
  let supplierId: number;
  let clientId: number;

  before(async () => {
    const { db } = t.get();
    ({ app, auth } = await hostileServer(db));
    admin = await adminSession(app, db);
    supplierId = (await seedSupplier(db)).id;
    clientId = (await seedClient(db)).id;
  });
  after(async () => {
    await app?.close();
  });

  const post = (url: string, payload: unknown, headers: Record<string, string> = {}) =>
    app.inject({ method: 'POST', url, headers: { ...auth, ...headers }, payload: payload as object });
  const get = (url: string) => app.inject({ method: 'GET', url, headers: auth });
  const adminGet = (url: string) => app.inject({ method: 'GET', url, headers: { cookie: admin.cookie } });
  const count = async (table: string) => Number((await t.get().db(table).count({ n: '*' }))[0]!.n);
  const item = (over: Record<string, unknown>) => ({ description: 'Brokerage', quantity: '1', unitPrice: '10', ...over });

  it('refuses U+0000 in party name, notes, description, invoice number, webhook company id and admin kind/subject/error filters', async () => {
    const before = { parties: await count('parties'), invoices: await count('invoices') };
    expectRefused(await post('/api/v1/parties', { role: 'client', name: 'Bolt\u0000Imports' }), 'name');
    expectRefused(await post('/api/v1/invoices/generate', invoiceBody(supplierId, clientId, { notes: 'paid\u0000' })), 'notes');
    expectRefused(await post('/api/v1/invoices/generate', invoiceBody(supplierId, clientId, { items: [item({ description: 'a\u0000b' })] })), 'items[0].description');
    expectRefused(await get('/api/v1/invoices/INV-%00001'), 'invoiceNumber');
    const hook = await app.inject({
      method: 'POST',
      url: '/webhooks/pac/acme%00corp',
      headers: { 'x-webhook-secret': WEBHOOK_SECRET },
      payload: { document: { id: 'doc-1', legalStatus: 'PAC_AUTHORIZED' } },
    });
    expectRefused(hook, 'companyId');
    for (const filter of ['kind', 'subject', 'error']) expectRefused(await adminGet(`/admin?${filter}=a%00b`), filter);
    expect({ parties: await count('parties'), invoices: await count('invoices') }).to.deep.equal(before);
  });

  it('refuses ids above 2147483647 on parties, afterId, supplierId (generate, invoice requests, reports) and admin upload/invoice actions', async () => {
    const before = { invoices: await count('invoices'), requests: await count('invoice_requests'), reports: await count('reports'), jobs: await count('jobs') };
    expectRefused(await get('/api/v1/parties/2147483648'), 'id');
    expectRefused(await get('/api/v1/parties?afterId=2147483648'), 'afterId');
    expectRefused(await post('/api/v1/invoices/generate', invoiceBody(2147483648, clientId)), 'supplierId');
    expectRefused(await post('/api/v1/invoice-requests', invoiceBody(2147483648, clientId)), 'supplierId');
    expectRefused(await get(`/api/v1/invoices/INV-000001?supplierId=2147483648`), 'supplierId');
    expectRefused(await post('/api/v1/reports', { type: 'invoices', params: { from: '2026-01-01', to: '2026-01-31', supplierId: 2147483648 } }), 'params.supplierId');
    expectRefused(await adminPost(app, admin, '/admin/uploads/2147483648/notify'), 'id');
    expectRefused(await adminPost(app, admin, '/admin/invoices/2147483648/repoll'), 'id');
    expectRefused(await adminPost(app, admin, '/admin/invoices/2147483648/attach-pdf'), 'id');
    // The largest id is an ordinary "no such thing", not a 500.
    expect((await get('/api/v1/parties/2147483647')).statusCode).to.equal(404);
    expect((await adminPost(app, admin, '/admin/invoices/2147483647/repoll')).statusCode).to.equal(303);
    expect({ invoices: await count('invoices'), requests: await count('invoice_requests'), reports: await count('reports'), jobs: await count('jobs') }).to.deep.equal(before);
  });

  it('refuses decimal strings that are not ASCII digits in quantity, discount, taxRate and party defaultTaxRate, before any arithmetic', async () => {
    const before = { parties: await count('parties'), invoices: await count('invoices') };
    const bad = ['abc', '', ' 1 ', '1,5', '١٢', '１２', '1e3', '-1', '0x10', 'Infinity'];
    for (const value of bad) {
      for (const field of ['quantity', 'discount', 'taxRate']) {
        const res = await post('/api/v1/invoices/generate', invoiceBody(supplierId, clientId, { items: [item({ [field]: value })] }));
        expectRefused(res, `items[0].${field}`);
        expect(res.json().message, `${field}=${JSON.stringify(value)}`).to.match(/ASCII digits|greater than 0/);
      }
      expectRefused(await post('/api/v1/parties', { role: 'supplier', name: 'Acme', defaultTaxRate: value }), 'defaultTaxRate');
    }
    expect({ parties: await count('parties'), invoices: await count('invoices') }).to.deep.equal(before);
  });

  it('refuses dates Postgres cannot hold: issueDate 0000-01-01 (sync and queued), admin from=2026-13-01 and to=9999-12-31', async () => {
    const before = { invoices: await count('invoices'), requests: await count('invoice_requests') };
    const sync = await post('/api/v1/invoices/generate', invoiceBody(supplierId, clientId, { issueDate: '0000-01-01' }));
    expectRefused(sync, 'issueDate');
    expect(sync.json().message).to.contain('1900-01-01 to 9999-12-30');
    expectRefused(await post('/api/v1/invoice-requests', invoiceBody(supplierId, clientId, { issueDate: '0000-01-01' })), 'issueDate');
    expectRefused(await adminGet('/admin?from=2026-13-01'), 'from');
    expectRefused(await adminGet('/admin?to=9999-12-31'), 'to');
    // The last accepted day still works, "to" included (to + 1 day = 9999-12-31).
    expect((await adminGet('/admin?from=1900-01-01&to=9999-12-30')).statusCode).to.equal(200);
    expect({ invoices: await count('invoices'), requests: await count('invoice_requests') }).to.deep.equal(before);
  });

  it('refuses an issueDate whose default due date (+30 days) would pass 9999-12-31, and takes the last day with a dueDate', async () => {
    expectRefused(await post('/api/v1/invoices/generate', invoiceBody(supplierId, clientId, { issueDate: '9999-12-30' })), 'issueDate');
    const ok = await post('/api/v1/invoices/generate', invoiceBody(supplierId, clientId, { issueDate: '9999-12-30', dueDate: '9999-12-30' }));
    expect(ok.statusCode, ok.body).to.equal(201);
  });

  it('redirects to /admin, never to a target with CR/LF, non-ASCII, //host or /\\host, from login next and action back', async () => {
    const targets = ['/admin\r\nSet-Cookie: x=1', '/admin\nLocation: https://evil.example', '/admin/é', '/admin/\u20ac', '//evil.example/admin', '/\\evil.example', '/admin\\..\\x', 'https://evil.example/admin'];
    for (const target of targets) {
      const login = await app.inject({ method: 'GET', url: `/admin/login?next=${encodeURIComponent(target)}` });
      expect(login.statusCode, target).to.equal(200);
      expect(login.body, target).to.contain('name="next" value="/admin"');
      const back = await adminPost(app, admin, '/admin/jobs/1/retry', { back: target });
      expect(back.statusCode, target).to.equal(303);
      expect(back.headers.location, target).to.match(/^\/admin\?done=/);
    }
    // A good target is kept.
    const kept = await adminPost(app, admin, '/admin/jobs/1/retry', { back: '/admin?kind=notify-hmrc' });
    expect(kept.headers.location).to.match(/^\/admin\?kind=notify-hmrc&done=/);
  });

  it('answers Fastify\'s own refusals in Herald\'s shape naming the field: bad URL, 414, bad JSON, prototype keys', async () => {
    const badUrl = await app.inject({ method: 'GET', url: '/api/v1/invoices/%E0%A4%A', headers: auth });
    expectRefused(badUrl, 'url');
    expect(badUrl.json().code).to.equal('BAD_URL');
    const long = await get(`/api/v1/invoices/${'9'.repeat(150)}`);
    expectRefused(long, 'url', 414);
    expect(long.json().code).to.equal('URI_TOO_LONG');
    const json = { 'content-type': 'application/json' };
    expectRefused(await post('/api/v1/invoices/generate', '{"supplierId": 1,', json), 'body');
    const proto = await post('/api/v1/invoices/generate', `{"supplierId":1,"__proto__":{"admin":true}}`, json);
    expectRefused(proto, 'body');
    expect(proto.json().message).to.contain('__proto__');
    expectRefused(await post('/api/v1/invoices/generate', `{"constructor":{"prototype":{"admin":true}}}`, json), 'body');
    expectRefused(await post('/api/v1/invoices/generate', `{"supplierId":1e309}`, json), 'supplierId');
    const csrf = await app.inject({ method: 'POST', url: '/admin/jobs/1/retry', headers: { cookie: admin.cookie }, payload: { _csrf: 'forged', back: '/admin' } });
    expectRefused(csrf, '_csrf', 403);
  });

  it('numbers a supplier started at 9007199254740991 once, then answers 409 "numbering exhausted" with nothing committed', async () => {
    const { db } = t.get();
    const created = await post('/api/v1/parties', { role: 'supplier', name: 'Last Numbers Ltd', invoiceStartNumber: 9007199254740991 });
    expect(created.statusCode, created.body).to.equal(201);
    const last = created.json().id as number;
    const first = await post('/api/v1/invoices/generate', invoiceBody(last, clientId));
    expect(first.statusCode, first.body).to.equal(201);
    expect(first.json()).to.include({ invoiceNumberInt: 9007199254740991, invoiceNumber: '9007199254740991' });
    for (let i = 0; i < 2; i++) {
      const again = await post('/api/v1/invoices/generate', invoiceBody(last, clientId));
      expectRefused(again, 'supplierId', 409);
      expect(again.json()).to.include({ code: 'NUMBERING_EXHAUSTED', supplierId: last });
      expect(again.json().message).to.contain(`numbering exhausted for supplier ${last}`);
    }
    expect(Number((await db('invoices').where({ supplier_party_id: last }).count({ n: '*' }))[0]!.n)).to.equal(1);
    expectRefused(await post('/api/v1/parties', { role: 'supplier', name: 'Too Far Ltd', invoiceStartNumber: 9007199254740992 }), 'invoiceStartNumber');
  });
});
