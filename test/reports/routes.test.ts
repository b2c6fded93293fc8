import crypto from 'node:crypto';
import { expect } from 'chai';
import type { FastifyInstance } from 'fastify';
import { useTestDb } from '../helpers/db.js';
import type { Config } from '../../src/config.js';
import { createApiKey } from '../../src/http/api-keys.js';
import { buildServer } from '../../src/http/server.js';
import { runJobsInline } from '../../src/jobs/runtime/inline.js';
import { reportJobs } from '../../src/reports/jobs.js';
import { reportRoutes } from '../../src/reports/routes.js';
import type { ReportServices } from '../../src/reports/services.js';
import { createReportServices } from '../../src/reports/services.js';
import { failReport } from '../../src/reports/store.js';
import { createS3Storage, s3OptionsFromConfig, type S3Storage } from '../../src/storage/s3.js';
import { quietLog, reportConfig, seedUpload, startS3, type S3Sandbox } from './support.js';

// The HTTP surface through fastify's inject(), with a real API key, the real
// database and the local S3 server behind the download.

describe('reports.routes', () => {
  const t = useTestDb(import.meta.url);
  let s3: S3Sandbox;
  let config: Config;
  let storage: S3Storage;
  let services: ReportServices;
  let app: FastifyInstance;
  let auth: { authorization: string };
  let otherAuth: { authorization: string };
  let keyId: number;

  before(async () => {
    const { db } = t.get();
    s3 = await startS3();
    config = reportConfig(s3.server);
    storage = createS3Storage(s3OptionsFromConfig(config));
    services = createReportServices(config, { storage });
    app = await buildServer({ db, config, log: quietLog, plugins: [reportRoutes(() => services)] });
    const key = await createApiKey(db, `reports-${crypto.randomUUID()}`);
    const other = await createApiKey(db, `reports-other-${crypto.randomUUID()}`);
    auth = { authorization: `Bearer ${key.key}` };
    otherAuth = { authorization: `Bearer ${other.key}` };
    keyId = key.id;
    await seedUpload(db, { counter: 1, uploadedAt: '2026-03-01T10:00:00Z', workbaskets: ['Spring duties'], firstTaricId: 1 });
  });
  after(async () => {
    await app.close();
    storage.close();
    await s3.close();
  });
  beforeEach(async () => t.get().db.raw('TRUNCATE reports, jobs CASCADE'));

  const body = (over: Record<string, unknown> = {}) => ({ type: 'uploads', params: { from: '2026-03-01', to: '2026-03-31' }, ...over });
  const post = (payload: unknown, headers = auth) => app.inject({ method: 'POST', url: '/api/v1/reports', payload: payload as object, headers });
  const get = (url: string, headers = auth) => app.inject({ method: 'GET', url, headers });
  const runJobs = () => runJobsInline(t.get().db, reportJobs(config, () => services), { until: 'idle', log: quietLog });

  it('answers 202 with the RUNNING record, its generation and timeout committed with it', async () => {
    const res = await post(body());
    expect(res.statusCode).to.equal(202);
    expect(res.headers['report-reused']).to.equal(undefined);
    const r = res.json();
    expect(r).to.include({ type: 'uploads', status: 'RUNNING', creator: `apikey:${keyId}`, finishedAt: null, errorMessage: null, downloadUrl: null, fileName: null });
    expect(r.params).to.deep.equal({ from: '2026-03-01', to: '2026-03-31' });
    expect(new Date(r.deadlineAt).getTime() - new Date(r.createdAt).getTime()).to.equal(config.REPORTS_UPLOADS_TIMEOUT_MS);
    const jobs = await t.get().db('jobs').where({ subject_type: 'report', subject_id: r.id }).orderBy('id');
    expect(jobs.map((j) => j.kind)).to.deep.equal(['report-generate', 'report-timeout']);
    expect((await get(`/api/v1/reports/${r.id}`)).json()).to.deep.equal(r);
  });

  it('gives the same key asking the same thing the same record (Report-Reused), and another key its own', async () => {
    const first = (await post(body())).json();
    const again = await post({ params: { to: '2026-03-31', from: '2026-03-01' }, type: 'uploads' });
    expect(again.statusCode).to.equal(202);
    expect(again.headers['report-reused']).to.equal('true');
    expect(again.json()).to.deep.equal(first);
    const other = (await post(body(), otherAuth)).json();
    expect(other.id).to.not.equal(first.id);
  });

  it('answers 400 naming the field for a bad type or bad params', async () => {
    const cases: [unknown, string, RegExp][] = [
      [body({ type: 'payroll' }), 'type', /must be one of uploads, invoices/],
      [{ params: {} }, 'type', /./],
      [body({ params: { from: '2026-03-01' } }), 'params.to', /is required/],
      [body({ params: { from: '2026-03-01', to: '2026-02-01' } }), 'params.to', /must not be before from/],
      [body({ params: { from: '2026-03-01', to: '2026-03-02', format: 'xlsx' } }), 'params.format', /unknown parameter/],
      [body({ params: [] }), 'params', /object of parameters/],
      [body({ extra: 1 }), 'extra', /unknown field/],
      [body({ type: 'invoices', params: { from: '2026-03-01', to: '2026-03-02', supplierId: 424242 } }), 'params.supplierId', /no supplier with id 424242/],
    ];
    for (const [payload, field, message] of cases) {
      const res = await post(payload);
      expect(res.statusCode, JSON.stringify(payload)).to.equal(400);
      expect(res.json(), JSON.stringify(payload)).to.include({ code: 'VALIDATION_FAILED', field });
      expect(res.json().message).to.match(new RegExp(`^${field.replace('.', '\\.')}: `)).and.to.match(message);
    }
    expect(await t.get().db('reports').count<{ n: number }[]>({ n: '*' })).to.deep.equal([{ n: 0 }]);
  });

  it('answers 409 with the status until SUCCESS, then streams the CSV as an attachment', async () => {
    const r = (await post(body())).json();
    const early = await get(`/api/v1/reports/${r.id}/download`);
    expect(early.statusCode).to.equal(409);
    expect(early.json()).to.include({ code: 'REPORT_NOT_READY', status: 'RUNNING' });

    await runJobs();
    const done = (await get(`/api/v1/reports/${r.id}`)).json();
    expect(done).to.include({ status: 'SUCCESS', rowCount: 1, downloadUrl: `/api/v1/reports/${r.id}/download`, errorMessage: null });
    const file = await get(done.downloadUrl);
    expect(file.statusCode).to.equal(200);
    expect(file.headers['content-type']).to.equal('text/csv; charset=utf-8');
    expect(file.headers['content-disposition']).to.equal(`attachment; filename="${done.fileName}"`);
    expect(Number(file.headers['content-length'])).to.equal(done.fileSize);
    const stored = await storage.getObjectBuffer(`reports/uploads/${r.id}.csv`);
    expect(file.rawPayload.equals(stored)).to.equal(true);
    expect(file.body).to.match(/^\uFEFFupload_id,envelope_id,/);
  });

  it('streams the whole file over a real socket', async () => {
    const r = (await post(body())).json();
    await runJobs();
    const address = await app.listen({ port: 0, host: '127.0.0.1' });
    const res = await fetch(`${address}/api/v1/reports/${r.id}/download`, { headers: auth });
    expect(res.status).to.equal(200);
    const bytes = Buffer.from(await res.arrayBuffer());
    expect(bytes.equals(await storage.getObjectBuffer(`reports/uploads/${r.id}.csv`))).to.equal(true);
  });

  it('answers 409 with FAIL and the reason for a failed report', async () => {
    const r = (await post(body())).json();
    await failReport(t.get().db, r.id, 'timed out after 900 s');
    const res = await get(`/api/v1/reports/${r.id}/download`);
    expect(res.statusCode).to.equal(409);
    expect(res.json()).to.include({ code: 'REPORT_NOT_READY', status: 'FAIL', errorMessage: 'timed out after 900 s' });
  });

  it('answers 404 when a SUCCESS report\'s file is gone from storage', async () => {
    const r = (await post(body())).json();
    await runJobs();
    await storage.deleteObject(`reports/uploads/${r.id}.csv`);
    const res = await get(`/api/v1/reports/${r.id}/download`);
    expect(res.statusCode).to.equal(404);
    expect(res.json().message).to.match(/no longer in storage/);
  });

  it('answers 503 while storage is unavailable', async () => {
    const r = (await post(body())).json();
    await runJobs();
    s3.server.inject({ type: 'status', status: 503, code: 'SlowDown', match: 'HEAD', times: 5 });
    const res = await get(`/api/v1/reports/${r.id}/download`);
    s3.server.reset();
    expect(res.statusCode).to.equal(503);
    expect(res.json()).to.include({ code: 'UNAVAILABLE' });
  });

  it('answers 404 for an unknown report, 400 for an id that is not a UUID, 401 without a key', async () => {
    const unknown = crypto.randomUUID();
    expect((await get(`/api/v1/reports/${unknown}`)).json()).to.include({ statusCode: 404, field: 'id' });
    expect((await get(`/api/v1/reports/${unknown}/download`)).statusCode).to.equal(404);
    const bad = await get('/api/v1/reports/42');
    expect(bad.statusCode).to.equal(400);
    expect(bad.json().field).to.equal('id');
    expect((await app.inject({ method: 'GET', url: `/api/v1/reports/${unknown}` })).statusCode).to.equal(401);
    expect((await app.inject({ method: 'POST', url: '/api/v1/reports', payload: body() })).statusCode).to.equal(401);
  });

  it('documents the routes in the OpenAPI document', async () => {
    const doc = (await app.inject({ method: 'GET', url: '/openapi.json' })).json();
    expect(Object.keys(doc.paths)).to.include.members(['/api/v1/reports', '/api/v1/reports/{id}', '/api/v1/reports/{id}/download']);
    expect(doc.paths['/api/v1/reports'].post.requestBody.content['application/json'].schema.properties.type.enum).to.deep.equal(['uploads', 'invoices']);
  });
});
