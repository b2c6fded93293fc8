import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { expect } from 'chai';
import type { FastifyInstance } from 'fastify';
import { useTestDb } from '../helpers/db.js';
import { invoiceBody, seedClient, seedSupplier } from '../invoices/support.js';
import { hostileServer } from './support.js';

// Issue 13 item 10: /openapi.json passes redocly's recommended rules with no
// error and no warning (redocly.yaml, decision 0016); every operation is
// named and summarised, every answer described with an example; and the
// Location headers the document promises are the ones real requests get,
// each leading to what the POST made.

const run = promisify(execFile);
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const REDOCLY = path.join(ROOT, 'node_modules/.bin/redocly');
const QUIET = { ...process.env, REDOCLY_TELEMETRY: 'off', REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true' };

interface Operation {
  operationId?: string;
  summary?: string;
  responses: Record<string, { description: string; headers?: Record<string, unknown>; content?: Record<string, { example?: unknown; examples?: Record<string, unknown>; schema?: { example?: unknown } }> }>;
}

interface LintReport {
  totals: { errors: number; warnings: number };
  problems: Array<{ ruleId: string; message: string; location: Array<{ pointer: string }> }>;
}

async function lint(file: string): Promise<LintReport> {
  // redocly exits 1 on errors; the JSON report is on stdout either way.
  const out = await run(REDOCLY, ['lint', file, '--config', path.join(ROOT, 'redocly.yaml'), '--format=json'], { cwd: ROOT, env: QUIET }).catch(
    (err: { stdout?: string }) => ({ stdout: err.stdout ?? '' }),
  );
  return JSON.parse(out.stdout) as LintReport;
}

describe('http.openapi', function () {
  this.timeout(60_000);
  const t = useTestDb(import.meta.url);
  let app: FastifyInstance;
  let auth: { authorization: string };
  let doc: { paths: Record<string, Record<string, Operation>> };
  let dir: string;

  before(async () => {
    ({ app, auth } = await hostileServer(t.get().db));
    doc = (await app.inject({ method: 'GET', url: '/openapi.json' })).json();
    dir = await mkdtemp(path.join(os.tmpdir(), 'herald-openapi-'));
  });
  after(async () => {
    await app.close();
    await rm(dir, { recursive: true, force: true });
  });

  const operations = () => Object.entries(doc.paths).flatMap(([p, ops]) => Object.entries(ops).map(([method, op]) => ({ at: `${method.toUpperCase()} ${p}`, op })));

  it('passes redocly lint (recommended rules) with 0 errors and 0 warnings', async () => {
    const file = path.join(dir, 'openapi.json');
    await writeFile(file, JSON.stringify(doc));
    const report = await lint(file);
    const problems = report.problems.map((p) => `${p.ruleId} at ${p.location[0]?.pointer}: ${p.message}`);
    expect(problems).to.deep.equal([]);
    expect(report.totals).to.include({ errors: 0, warnings: 0 });
  });

  it('the lint can fail: an example that breaks its schema is a warning', async () => {
    const broken = structuredClone(doc);
    broken.paths['/api/v1/parties']!.post!.responses['201']!.content!['application/json']!.example = { id: 'seven' };
    const file = path.join(dir, 'broken.json');
    await writeFile(file, JSON.stringify(broken));
    const report = await lint(file);
    expect(report.problems.map((p) => p.ruleId)).to.include('no-invalid-media-type-examples');
  });

  it('npm run openapi writes the document the server serves (built without listening or a database)', async () => {
    const file = path.join(dir, 'written.json');
    await run(process.execPath, ['--import', 'tsx', path.join(ROOT, 'scripts/openapi.ts'), file], { cwd: ROOT });
    expect(JSON.parse(await readFile(file, 'utf8'))).to.deep.equal(doc);
  });

  it('names and summarises every operation and gives every answer a description and an example', () => {
    const ops = operations();
    expect(ops.length).to.be.at.least(12);
    const ids = ops.map(({ op }) => op.operationId);
    expect(new Set(ids).size, 'operationIds are unique').to.equal(ops.length);
    for (const { at, op } of ops) {
      expect(op.operationId, at).to.match(/^[a-z][A-Za-z]+$/);
      expect(op.summary, at).to.be.a('string').and.not.equal('');
      expect(Object.keys(op.responses).some((s) => s.startsWith('2')), `${at} has a 2xx`).to.equal(true);
      expect(Object.keys(op.responses).some((s) => s.startsWith('4')), `${at} has a 4xx`).to.equal(true);
      for (const [status, res] of Object.entries(op.responses)) {
        expect(res.description, `${at} ${status}`).to.not.equal('Default Response');
        for (const [type, media] of Object.entries(res.content ?? {})) {
          expect(media.example ?? media.examples ?? media.schema?.example, `${at} ${status} ${type} example`).to.not.equal(undefined);
        }
        if (status.startsWith('4')) {
          const examples = Object.values(res.content?.['application/json']?.examples ?? {}) as Array<{ value: { statusCode: number } }>;
          expect(examples.length, `${at} ${status} error examples`).to.be.at.least(1);
          for (const e of examples) expect(e.value.statusCode, `${at} ${status} example status`).to.equal(Number(status));
        }
      }
    }
  });

  it('declares Location on every 201 (and on the 202 of reports and the 200 of an idempotent replay)', () => {
    const created = operations().flatMap(({ at, op }) => Object.entries(op.responses).filter(([s]) => s === '201').map(() => at));
    expect(created).to.have.members(['POST /api/v1/parties', 'POST /api/v1/invoices/generate', 'POST /api/v1/invoice-requests']);
    for (const { at, op } of operations()) {
      if (op.responses['201']) expect(op.responses['201'].headers, at).to.have.property('Location');
    }
    expect(doc.paths['/api/v1/reports']!.post!.responses['202']!.headers).to.have.property('Location');
    expect(doc.paths['/api/v1/invoice-requests']!.post!.responses['200']!.headers).to.have.property('Location');
  });

  it('answers each POST with the Location it declares, and GET at that Location returns what the POST made', async () => {
    const db = t.get().db;
    const follow = async (location: string | undefined) => {
      expect(location, 'Location header').to.be.a('string').and.match(/^\/api\/v1\//);
      const res = await app.inject({ method: 'GET', url: location!, headers: auth });
      expect(res.statusCode, `GET ${location}: ${res.body.slice(0, 200)}`).to.equal(200);
      return res.json();
    };

    const party = await app.inject({ method: 'POST', url: '/api/v1/parties', headers: auth, payload: { role: 'client', name: 'Location GmbH' } });
    expect(party.statusCode).to.equal(201);
    expect(await follow(party.headers.location as string)).to.deep.equal(party.json());

    const supplier = await seedSupplier(db, { invoice_prefix: 'L/1-' });
    const client = await seedClient(db);
    const invoice = await app.inject({ method: 'POST', url: '/api/v1/invoices/generate', headers: auth, payload: invoiceBody(supplier.id, client.id) });
    expect(invoice.statusCode).to.equal(201);
    expect(invoice.json().invoiceNumber, 'a number that needs encoding in a URL').to.contain('/');
    expect(await follow(invoice.headers.location as string)).to.deep.equal(invoice.json());

    const headers = { ...auth, 'idempotency-key': 'location-test-1' };
    const queued = await app.inject({ method: 'POST', url: '/api/v1/invoice-requests', headers, payload: invoiceBody(supplier.id, client.id) });
    expect(queued.statusCode).to.equal(201);
    expect((await follow(queued.headers.location as string)).requestId).to.equal(queued.json().requestId);
    const replay = await app.inject({ method: 'POST', url: '/api/v1/invoice-requests', headers, payload: invoiceBody(supplier.id, client.id) });
    expect(replay.statusCode).to.equal(200);
    expect(replay.headers.location).to.equal(queued.headers.location);

    const report = await app.inject({ method: 'POST', url: '/api/v1/reports', headers: auth, payload: { type: 'invoices', params: { from: '2026-01-01', to: '2026-12-31' } } });
    expect(report.statusCode).to.equal(202);
    expect((await follow(report.headers.location as string)).id).to.equal(report.json().id);
  });
});
