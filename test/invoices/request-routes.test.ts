import { expect } from 'chai';
import { useTestDb } from '../helpers/db.js';
import { invoiceBody, seedClient, seedSupplier, startApi, type Api } from './support.js';
import { runJobsInline } from '../../src/jobs/runtime/inline.js';
import { invoiceRequestJob } from '../../src/invoices/jobs.js';

describe('invoices.requestRoutes', () => {
  const t = useTestDb(import.meta.url);
  let api: Api;
  let supplierId: number;
  let clientId: number;

  before(async () => {
    api = await startApi(t.get().db);
    supplierId = (await seedSupplier(t.get().db)).id;
    clientId = (await seedClient(t.get().db)).id;
  });
  after(async () => {
    await api.app.close();
  });

  const submit = (payload: unknown, headers: Record<string, string> = {}) =>
    api.app.inject({ method: 'POST', url: '/api/v1/invoice-requests', payload: payload as object, headers: { ...api.auth, ...headers } });
  const get = (url: string) => api.app.inject({ method: 'GET', url, headers: api.auth });
  const runQueue = () => runJobsInline(t.get().db, [invoiceRequestJob], { until: 'idle' });

  it('queues a request (201) with its job row, both in one transaction', async () => {
    const res = await submit(invoiceBody(supplierId, clientId));
    expect(res.statusCode).to.equal(201);
    const body = res.json();
    expect(body).to.deep.equal({ requestId: body.requestId, status: 'PENDING', message: 'invoice generation request queued' });
    const jobs = await t.get().db('jobs').where({ subject_type: 'invoice_request', subject_id: body.requestId });
    expect(jobs).to.have.length(1);
    expect(jobs[0]).to.include({ kind: 'invoice-request', status: 'pending' });
    expect(jobs[0].payload).to.deep.equal({ requestId: body.requestId });
    const status = (await get(`/api/v1/invoice-requests/${body.requestId}`)).json();
    expect(status).to.include({ requestId: body.requestId, status: 'PENDING', invoiceId: null, invoiceNumber: null, errorMessage: null, completedAt: null });
  });

  it('gives a request stored by another INSERT (an older release during an upgrade, psql) its one job, which runs', async () => {
    // The previous release's submit statement: the request alone, its job left to the trigger.
    const { rows } = await t.get().db.raw(
      `INSERT INTO invoice_requests (id, caller, payload, supplier_party_id, client_party_id)
       SELECT gen_random_uuid(), 'apikey:older-release', ?::jsonb, ?, ? FROM generate_series(1, 3) RETURNING id`,
      [JSON.stringify(invoiceBody(supplierId, clientId)), supplierId, clientId],
    );
    const ids = rows.map((r: { id: string }) => r.id);
    const jobs = await t.get().db('jobs').where({ kind: 'invoice-request', subject_type: 'invoice_request' }).whereIn('subject_id', ids);
    expect(jobs.map((j) => j.subject_id).sort()).to.deep.equal([...ids].sort());
    await runQueue();
    for (const id of ids) expect((await get(`/api/v1/invoice-requests/${id}`)).json(), id).to.include({ status: 'COMPLETED' });
  });

  it('answers 409 with the status before completion, then the full invoice once a worker ran it', async () => {
    const { requestId } = (await submit(invoiceBody(supplierId, clientId))).json();
    const early = await get(`/api/v1/invoice-requests/${requestId}/invoice`);
    expect(early.statusCode).to.equal(409);
    expect(early.json()).to.include({ code: 'INVOICE_NOT_READY', status: 'PENDING' });

    const summary = await runQueue();
    expect(summary.outcomes.completed).to.be.greaterThan(0);

    const status = (await get(`/api/v1/invoice-requests/${requestId}`)).json();
    expect(status.status).to.equal('COMPLETED');
    expect(status.invoiceNumber).to.match(/^INV-\d{6}$/);
    expect(status.completedAt).to.be.a('string');
    const invoice = await get(`/api/v1/invoice-requests/${requestId}/invoice`);
    expect(invoice.statusCode).to.equal(200);
    expect(invoice.json()).to.include({ id: status.invoiceId, requestId, invoiceNumber: status.invoiceNumber });
    const byNumber = (await get(`/api/v1/invoices/${status.invoiceNumber}`)).json();
    expect(invoice.json()).to.deep.equal(byNumber);
  });

  it('answers 404 for an unknown id and 400 for one that is not a UUID', async () => {
    const unknown = await get('/api/v1/invoice-requests/6f1c1d64-4a35-4c1c-9a43-3b4c1d2e9f00');
    expect(unknown.statusCode).to.equal(404);
    expect((await get('/api/v1/invoice-requests/6f1c1d64-4a35-4c1c-9a43-3b4c1d2e9f00/invoice')).statusCode).to.equal(404);
    const malformed = await get('/api/v1/invoice-requests/42');
    expect(malformed.statusCode).to.equal(400);
    expect(malformed.json().field).to.equal('id');
  });

  it('validates the body like the sync route and refuses unknown parties with 422 naming the id', async () => {
    const bad = await submit(invoiceBody(supplierId, clientId, { items: [{ description: 'x', quantity: '-1', unitPrice: '1' }] }));
    expect(bad.statusCode).to.equal(400);
    expect(bad.json().field).to.equal('items[0].quantity');
    const unknown = await submit(invoiceBody(424242, clientId));
    expect(unknown.statusCode).to.equal(422);
    expect(unknown.json()).to.include({ code: 'UNKNOWN_PARTY', field: 'supplierId', message: 'supplierId 424242: no such party' });
    const unknownClient = await submit(invoiceBody(supplierId, 434343));
    expect(unknownClient.json()).to.include({ code: 'UNKNOWN_PARTY', field: 'clientId' });
    expect(await t.get().db('invoice_requests').where({ supplier_party_id: 424242 }).first()).to.equal(undefined);
  });

  describe('concurrent submissions (shared INSERT statements)', () => {
    it('stores forty concurrent requests in fewer statements, one job each, and refuses only the two naming unknown parties', async () => {
      const bodies = Array.from({ length: 40 }, (_, i) =>
        i === 17 ? invoiceBody(525252, clientId) : i === 29 ? invoiceBody(supplierId, 535353) : invoiceBody(supplierId, clientId, { notes: `n${i}` }),
      );
      const answers = await Promise.all(bodies.map((b) => submit(b)));
      expect(answers[17]!.statusCode).to.equal(422);
      expect(answers[17]!.json()).to.include({ field: 'supplierId' });
      expect(answers[29]!.statusCode).to.equal(422);
      expect(answers[29]!.json()).to.include({ field: 'clientId' });
      const ok = answers.filter((a) => a.statusCode === 201).map((a) => a.json().requestId as string);
      expect(ok).to.have.length(38);
      const rows = await t.get().db('invoice_requests').whereIn('id', ok).select('id', 'payload', 'created_at', 'body_hash');
      expect(rows).to.have.length(38);
      // Each answer names the row holding that caller's own body.
      const notes = new Map(rows.map((r) => [r.id, r.payload.notes]));
      answers.forEach((a, i) => {
        if (a.statusCode === 201) expect(notes.get(a.json().requestId)).to.equal(`n${i}`);
      });
      // Rows of one statement share its transaction's timestamp. A batch that holds a refused
      // request is retried request by request, so batching is counted on a burst without one.
      const burst = await Promise.all(Array.from({ length: 20 }, (_, i) => submit(invoiceBody(supplierId, clientId, { notes: `b${i}` }))));
      const burstRows = await t.get().db('invoice_requests').whereIn('id', burst.map((a) => a.json().requestId as string)).select('created_at');
      expect(burstRows).to.have.length(20);
      expect(new Set(burstRows.map((r) => r.created_at.getTime())).size).to.be.below(20);
      expect(rows.every((r) => r.body_hash === null)).to.equal(true);
      const jobs = await t.get().db('jobs').where({ kind: 'invoice-request' }).whereIn('subject_id', ok).select('subject_id');
      expect(jobs.map((j) => j.subject_id).sort()).to.deep.equal([...ok].sort());
    });

    it('gives concurrent calls with one key but two bodies one request: the other body gets 422', async () => {
      const headers = { 'idempotency-key': 'burst-two-bodies' };
      const answers = await Promise.all(
        Array.from({ length: 10 }, (_, i) => submit(invoiceBody(supplierId, clientId, { notes: i % 2 ? 'odd' : 'even' }), headers)),
      );
      const stored = await t.get().db('invoice_requests').where({ idempotency_key: 'burst-two-bodies' });
      expect(stored).to.have.length(1);
      const winner = stored[0].payload.notes as string;
      answers.forEach((a, i) => {
        const mine = i % 2 ? 'odd' : 'even';
        if (mine === winner) expect(a.statusCode, `call ${i}`).to.be.oneOf([200, 201]);
        else expect(a.json(), `call ${i}`).to.include({ statusCode: 422, code: 'IDEMPOTENCY_KEY_REUSED', requestId: stored[0].id });
      });
      expect(answers.filter((a) => a.statusCode === 201)).to.have.length(1);
      expect(await t.get().db('jobs').where({ subject_id: stored[0].id })).to.have.length(1);
    });
  });

  describe('Idempotency-Key', () => {
    it('returns the first request for a repeated key (201, then 200 with the same body), never a second request', async () => {
      const headers = { 'idempotency-key': 'order-7781' };
      const first = await submit(invoiceBody(supplierId, clientId), headers);
      expect(first.statusCode).to.equal(201);
      // Member order differs: the key is about the content, not the bytes.
      const { items, ...rest } = invoiceBody(supplierId, clientId);
      const again = await submit({ items, ...rest }, headers);
      expect(again.statusCode).to.equal(200);
      expect(again.headers['idempotent-replayed']).to.equal('true');
      expect(again.json()).to.deep.equal(first.json());
      const rows = await t.get().db('invoice_requests').where({ idempotency_key: 'order-7781' });
      expect(rows).to.have.length(1);
      expect(await t.get().db('jobs').where({ subject_id: first.json().requestId })).to.have.length(1);
    });

    it('gives twenty concurrent calls with one key one request and one job', async () => {
      const headers = { 'idempotency-key': 'burst-1' };
      const answers = await Promise.all(Array.from({ length: 20 }, () => submit(invoiceBody(supplierId, clientId), headers)));
      const ids = new Set(answers.map((a) => a.json().requestId));
      expect(ids.size).to.equal(1);
      expect(answers.filter((a) => a.statusCode === 201)).to.have.length(1);
      expect(answers.filter((a) => a.statusCode === 200)).to.have.length(19);
      expect(await t.get().db('jobs').where({ subject_id: [...ids][0] })).to.have.length(1);
    });

    it('answers 422 for the same key with a different body', async () => {
      const headers = { 'idempotency-key': 'order-9000' };
      const first = await submit(invoiceBody(supplierId, clientId), headers);
      const other = await submit(invoiceBody(supplierId, clientId, { notes: 'changed' }), headers);
      expect(other.statusCode).to.equal(422);
      expect(other.json()).to.include({ code: 'IDEMPOTENCY_KEY_REUSED', field: 'idempotency-key', requestId: first.json().requestId });
    });

    it('keeps keys apart per API key', async () => {
      const otherApi = await startApi(t.get().db);
      try {
        const headers = { 'idempotency-key': 'shared-name' };
        const mine = await submit(invoiceBody(supplierId, clientId), headers);
        const theirs = await otherApi.app.inject({
          method: 'POST', url: '/api/v1/invoice-requests', payload: invoiceBody(supplierId, clientId), headers: { ...otherApi.auth, ...headers },
        });
        expect(theirs.statusCode).to.equal(201);
        expect(theirs.json().requestId).to.not.equal(mine.json().requestId);
      } finally {
        await otherApi.app.close();
      }
    });

    it('names the header when the key is malformed', async () => {
      const res = await submit(invoiceBody(supplierId, clientId), { 'idempotency-key': 'x'.repeat(201) });
      expect(res.statusCode).to.equal(400);
      expect(res.json().field).to.equal('idempotency-key');
    });
  });

  it('fails a request whose supplier is really a client at once, with the message, using one attempt', async () => {
    const { requestId } = (await submit(invoiceBody(clientId, clientId))).json();
    await runQueue();
    const status = (await get(`/api/v1/invoice-requests/${requestId}`)).json();
    expect(status).to.include({ status: 'FAILED', invoiceId: null, errorMessage: `supplierId ${clientId}: party is a client, not a supplier` });
    const job = await t.get().db('jobs').where({ subject_id: requestId }).first();
    expect(job).to.include({ status: 'completed', attempts: 1 });
    const res = await get(`/api/v1/invoice-requests/${requestId}/invoice`);
    expect(res.statusCode).to.equal(409);
    expect(res.json()).to.include({ status: 'FAILED' });
  });
});
