import { expect } from 'chai';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import fc from 'fast-check';
import { listJobs } from '../../src/jobs/store/admin.js';
import { adminSession, type AdminSession } from '../helpers/admin.js';
import { useTestDb } from '../helpers/db.js';
import { invoiceBody, seedClient, seedSupplier } from '../invoices/support.js';
import {
  build, CATEGORIES, CATEGORY_NAMES, flatTargets, formatName, schemaTargets,
  type ExtraKey, type Loc, type Mutation, type Op, type Target,
} from './generative-cases.js';
import { hostileServer, WEBHOOK_SECRET } from './support.js';

// Generative test over the OpenAPI document and the admin and form routes
// (issue 12): every field of every route gets every category of hostile value
// (wrong types, 0/-1/2^31/2^53/1e309/-0, NUL, lone surrogates, 100 KB
// strings, 10,000 levels of nesting, Arabic-Indic and full-width digits,
// extra and prototype keys, missing fields), then random combinations, all
// against the real server on a real database. No answer may be >= 500, and
// every 4xx must name the field (a `field` member, or the message / error page).
//
// Seeded: a failure prints the seed and the fast-check path that reproduce it.
// HERALD_FUZZ_RUNS=n multiplies the random phase (default 1).

const SEED = 20261112;
const SCALE = Math.max(1, Number(process.env.HERALD_FUZZ_RUNS ?? 1) || 1);
const MIN_REQUESTS = 2000;

const ITEM_FIELDS = ['description', 'quantity', 'unitPrice', 'discount', 'taxRate'];
const INVOICE_RELATED: Record<string, string[]> = {
  issueDate: ['dueDate'],
  'items[0].quantity': ['items[0].discount'],
  'items[0].unitPrice': ['items[0].discount'],
};

describe('http: generative hostile input (OpenAPI + admin routes)', function () {
  this.timeout(600_000);
  const t = useTestDb(import.meta.url);
  let app: FastifyInstance;
  let auth: Record<string, string>;
  let admin: AdminSession;
  let ops: Op[] = [];
  const counts = { sent: 0, '2xx': 0, '3xx': 0, '4xx': 0, '5xx': 0 };

  before(async () => {
    const { db } = t.get();
    ({ app, auth } = await hostileServer(db));
    admin = await adminSession(app, db);
    const leaving = await adminSession(app, db);
    const supplier = await seedSupplier(db);
    const client = await seedClient(db);
    const made = await app.inject({ method: 'POST', url: '/api/v1/invoices/generate', headers: auth, payload: invoiceBody(supplier.id, client.id) });
    const queued = await app.inject({ method: 'POST', url: '/api/v1/invoice-requests', headers: auth, payload: invoiceBody(supplier.id, client.id) });
    const report = await app.inject({ method: 'POST', url: '/api/v1/reports', headers: auth, payload: { type: 'uploads', params: { from: '2026-01-01', to: '2026-01-31' } } });
    const seeded = {
      invoiceNumber: made.json().invoiceNumber as string, invoiceId: String(made.json().id), requestId: queued.json().requestId as string,
      reportId: report.json().id as string, jobId: String((await listJobs(db, { kind: 'invoice-request' }))[0]!.id),
    };
    const doc = (await app.inject({ method: 'GET', url: '/openapi.json' })).json();
    ops = [...apiOps(doc, supplier.id, client.id, seeded), ...adminOps(admin, leaving, supplier.id, client.id, seeded)];
  });
  after(async () => {
    await app?.close();
    process.stdout.write(
      `      generative: sent ${counts.sent}, 2xx ${counts['2xx']}, 3xx ${counts['3xx']}, 4xx ${counts['4xx']}, 5xx ${counts['5xx']} ` +
        `(${ops.length} routes, ${ops.reduce((n, o) => n + o.targets.length, 0)} fields, seed ${SEED}, HERALD_FUZZ_RUNS=${SCALE})\n`,
    );
  });

  async function inject(op: Op, mutations: Mutation[]): Promise<LightMyRequestResponse> {
    const res = await app.inject(build(op, mutations, op.auth ?? auth));
    counts.sent++;
    const cls = `${Math.floor(res.statusCode / 100)}xx` as keyof typeof counts;
    counts[cls] = (counts[cls] ?? 0) + 1;
    return res;
  }

  /** Sends op with the mutations; returns what is wrong with the answer, or null. */
  async function send(op: Op, mutations: Mutation[]): Promise<string | null> {
    const res = await inject(op, mutations);
    const problem = judge(op, mutations, res);
    if (!problem) return null;
    const what = mutations.map((m) => `${m.target.name} <- ${m.category} ${JSON.stringify(m.value)?.slice(0, 80)}`).join('; ');
    return `${op.id} [${what}]: ${problem} ${res.statusCode} ${res.body.slice(0, 300)}`;
  }

  it('documents every route it fuzzes, and each baseline request is accepted', async () => {
    expect(ops.filter((o) => !o.auth && !o.form).length, 'operations in /openapi.json').to.be.at.least(12);
    for (const op of ops) {
      const res = await inject(op, []);
      expect(op.baseline, `${op.id}: ${res.statusCode} ${res.body.slice(0, 300)}`).to.include(res.statusCode);
    }
  });

  it('answers every category of hostile value in every field of every route with < 500, naming the field', async () => {
    const problems: string[] = [];
    let n = 0;
    for (const op of ops) {
      for (const target of op.targets) {
        for (const category of CATEGORY_NAMES) {
          const [value] = fc.sample(CATEGORIES[category]!, { seed: SEED + n++, numRuns: 1 });
          const problem = await send(op, [{ target: targetFor(op, target, category), category, value }]);
          if (problem) problems.push(problem);
        }
      }
    }
    expect(problems, problems.slice(0, 15).join('\n')).to.deep.equal([]);
  });

  it('answers random combinations (1 to 3 fields at once) with < 500, naming a field', async () => {
    const runs = Math.max(250, MIN_REQUESTS - counts.sent) * SCALE;
    const mutation = (op: Op) =>
      fc.tuple(fc.constantFrom(...op.targets), fc.constantFrom(...CATEGORY_NAMES)).chain(([target, category]) =>
        CATEGORIES[category]!.map((value): Mutation => ({ target: targetFor(op, target, category), category, value })),
      );
    const request = fc.constantFrom(...ops).chain((op) => fc.array(mutation(op), { minLength: 1, maxLength: 3 }).map((ms) => ({ op, ms })));
    await fc.assert(
      fc.asyncProperty(request, async ({ op, ms }) => {
        const problem = await send(op, ms);
        if (problem) throw new Error(problem);
      }),
      { seed: SEED, numRuns: runs },
    );
    expect(counts.sent).to.be.at.least(MIN_REQUESTS);
  });
});

/** Extra keys go into the object holding a field; other categories replace the field. */
function targetFor(op: Op, target: Target, category: string): Target {
  if (category !== 'extraKeys' || target.loc !== 'body' || target.object) return target;
  const parent = target.path.slice(0, -1);
  return op.targets.find((t) => t.loc === 'body' && t.object && formatName(t.path) === formatName(parent)) ?? target;
}

/** What is wrong with an answer to a mutated request, or null. */
function judge(op: Op, mutations: Mutation[], res: LightMyRequestResponse): string | null {
  if (res.statusCode >= 500) return 'answered >= 500:';
  // The baseline's own answer (409 for a report still RUNNING) is not a refusal of the mutation.
  if (res.statusCode < 400 || op.unnamed?.includes(res.statusCode) || op.baseline.includes(res.statusCode)) return null;
  const names = new Set<string>();
  for (const m of mutations) {
    const add = (n: string) => names.add(n.toLowerCase());
    add(m.target.name);
    for (const r of op.related?.[m.target.name] ?? []) add(r);
    // A whole body replaced (by {}, [], 0, ...) may rightly be refused for any field it now lacks.
    if (m.target.loc === 'body' && m.target.path.length === 0 && m.category !== 'extraKeys') op.targets.forEach((t) => add(t.name));
    if (m.target.loc === 'params') add('url');
    if (m.category === 'extraKeys') {
      const key = (m.value as ExtraKey).extraKey;
      add(m.target.path.length === 0 || m.target.loc !== 'body' ? key : `${m.target.name}.${key}`);
      if (key === '__proto__' || key === 'constructor') add('body');
    }
  }
  const named = (field: string) => [...names].some((n) => field === n || field.startsWith(`${n}.`) || field.startsWith(`${n}[`));
  if (String(res.headers['content-type']).startsWith('text/html')) {
    const text = res.body.toLowerCase();
    return [...names].some((n) => text.includes(`${n}:`)) ? null : `HTML ${res.statusCode} names none of ${[...names].join(', ')}:`;
  }
  const body = res.json() as { field?: string; message?: string };
  if (typeof body.field === 'string') return named(body.field.toLowerCase()) ? null : `field "${body.field}" is none of ${[...names].join(', ')}:`;
  const message = String(body.message ?? '').toLowerCase();
  return [...names].some((n) => message.includes(n)) ? null : `no field, and the message names none of ${[...names].join(', ')}:`;
}

interface OpenApiOp {
  parameters?: { in: 'path' | 'query' | 'header'; name: string }[];
  requestBody?: { content: Record<string, { schema: Record<string, unknown> }> };
}

const LOCS: Record<string, Loc> = { path: 'params', query: 'query', header: 'headers' };

/** The API operations of /openapi.json, each with a request that works (the baseline) and its fields. */
function apiOps(
  doc: { paths: Record<string, Record<string, OpenApiOp>> },
  supplierId: number,
  clientId: number,
  seeded: { invoiceNumber: string; requestId: string; reportId: string },
): Op[] {
  const invoice = invoiceBody(supplierId, clientId);
  const baselines: Record<string, Partial<Op>> = {
    'POST /api/v1/parties': { body: { role: 'supplier', name: 'Fuzz Supplier', invoiceStartNumber: 1 }, baseline: [201] },
    'GET /api/v1/parties': { query: { limit: '5' }, baseline: [200] },
    'GET /api/v1/parties/{id}': { params: { id: String(supplierId) }, baseline: [200] },
    'POST /api/v1/invoices/generate': { body: invoice, baseline: [201], related: INVOICE_RELATED },
    'GET /api/v1/invoices/{invoiceNumber}': {
      params: { invoiceNumber: seeded.invoiceNumber },
      query: { supplierId: String(supplierId) },
      baseline: [200],
      // Another supplier's id: that supplier has no such invoice (404 on the number, naming the supplier).
      related: { supplierId: ['invoiceNumber'] },
    },
    'POST /api/v1/invoice-requests': { body: invoice, baseline: [201], related: INVOICE_RELATED },
    'GET /api/v1/invoice-requests/{id}': { params: { id: seeded.requestId }, baseline: [200] },
    'GET /api/v1/invoice-requests/{id}/invoice': { params: { id: seeded.requestId }, baseline: [409] },
    'POST /api/v1/reports': {
      body: { type: 'invoices', params: { from: '2026-01-01', to: '2026-12-31', supplierId } },
      baseline: [202],
      related: { type: ['params.supplierId', 'params'], 'params.from': ['params.to'] },
    },
    'GET /api/v1/reports/{id}': { params: { id: seeded.reportId }, baseline: [200] },
    'GET /api/v1/reports/{id}/download': { params: { id: seeded.reportId }, baseline: [409] },
    'POST /webhooks/pac/{companyId}': {
      params: { companyId: 'fuzz-co' },
      headers: { 'x-webhook-secret': WEBHOOK_SECRET },
      body: { document: { id: 'doc-1', legalStatus: 'REGISTERED' } },
      baseline: [200],
    },
  };
  const out: Op[] = [];
  for (const [url, methods] of Object.entries(doc.paths)) {
    for (const [method, spec] of Object.entries(methods)) {
      const id = `${method.toUpperCase()} ${url}`;
      const base = baselines[id];
      if (!base) throw new Error(`${id} is in /openapi.json but has no baseline request here: add one`);
      const targets: Target[] = (spec.parameters ?? []).map((p) => ({ loc: LOCS[p.in]!, path: [p.name], name: p.name }));
      targets.push(...schemaTargets(spec.requestBody?.content['application/json']?.schema));
      if (url === '/api/v1/reports') {
        for (const p of ['from', 'to', 'supplierId', 'legalStatus', 'notification']) targets.push({ loc: 'body', path: ['params', p], name: `params.${p}` });
      }
      targets.push(url.startsWith('/webhooks/') ? { loc: 'headers', path: ['x-webhook-secret'], name: 'x-webhook-secret' } : { loc: 'headers', path: ['authorization'], name: 'authorization' });
      out.push({ id, method: method.toUpperCase() as Op['method'], url, params: {}, query: {}, headers: {}, baseline: [200], targets, ...base });
    }
  }
  return out;
}

/** The hidden HTML routes: /admin (session cookie + CSRF token) and the invoice form. */
function adminOps(s: AdminSession, leaving: AdminSession, supplierId: number, clientId: number, seeded: { invoiceId: string; requestId: string; reportId: string; jobId: string }): Op[] {
  const post = (url: string, form: Record<string, string>, more: Partial<Op> = {}): Op => ({
    id: `POST ${url}`, method: 'POST', url, auth: { cookie: s.cookie }, params: {}, query: {}, headers: {}, form: true, body: { _csrf: s.csrf, ...form }, baseline: [303],
    targets: [{ loc: 'body', path: [], name: 'body', object: true }, ...flatTargets('body', ['_csrf', ...Object.keys(form)])], ...more,
  });
  const get = (url: string, query: string[]): Op => ({
    id: `GET ${url}`, method: 'GET', url, auth: { cookie: s.cookie }, params: {}, query: {}, headers: {}, baseline: [200], targets: flatTargets('query', query),
  });
  const withId = (op: Op, id: string): Op => ({ ...op, params: { id }, targets: [{ loc: 'params', path: ['id'], name: 'id' }, ...op.targets] });
  const formFields = ['supplierId', 'clientId', 'issueDate', 'dueDate', 'currency', 'notes', ...ITEM_FIELDS];
  return [
    get('/admin', ['status', 'kind', 'subject', 'error', 'from', 'to', 'order', 'page', 'done']),
    get('/admin/taric', ['done']),
    get('/admin/invoices', ['id', 'done']),
    get('/admin/login', ['next']),
    post('/admin/login', { apiKey: 'hk_not-a-key', next: '/admin' }, { baseline: [401], unnamed: [401, 429] }),
    { ...post('/admin/logout', {}), id: 'POST /admin/logout (own session)', auth: { cookie: leaving.cookie }, body: { _csrf: leaving.csrf } },
    withId(post('/admin/jobs/{id}/retry', { back: '/admin' }), '999999'),
    withId(post('/admin/jobs/{id}/clear', { back: '/admin' }), '999998'),
    post('/admin/jobs/retry-all-failed', { back: '/admin' }),
    post('/admin/jobs/unstick', { back: '/admin' }),
    withId(post('/admin/uploads/{id}/notify', { back: '/admin/taric' }), '999999'),
    withId(post('/admin/invoices/{id}/repoll', { back: '/admin/invoices' }), '999999'),
    withId(post('/admin/invoices/{id}/attach-pdf', { back: '/admin/invoices' }), '999999'),
    {
      id: 'POST /invoices/generate (form)', method: 'POST', url: '/invoices/generate', params: {}, query: {}, headers: {}, form: true,
      body: { supplierId: String(supplierId), clientId: String(clientId), description: 'Fuzzed form', quantity: '1', unitPrice: '2' },
      baseline: [201],
      related: Object.fromEntries(ITEM_FIELDS.map((f) => [f, ITEM_FIELDS])),
      targets: [{ loc: 'body', path: [], name: 'body', object: true }, ...flatTargets('body', formFields), { loc: 'headers', path: ['authorization'], name: 'authorization' }],
    },
    // Decision 0016's pages: subject filters and the pages job subjects link to.
    { ...get('/admin/taric', ['upload', 'done']), id: 'GET /admin/taric?upload=' },
    { ...get('/admin/invoices', ['request', 'done']), id: 'GET /admin/invoices?request=', query: { request: seeded.requestId } },
    { ...get('/admin/invoices', ['before', 'done']), id: 'GET /admin/invoices?before=', query: { before: seeded.invoiceId } },
    withId(get('/admin/invoices/{id}', ['done']), seeded.invoiceId),
    { ...withId(get('/admin/invoices/{id}/pdf', []), seeded.invoiceId), baseline: [404] },
    get('/admin/reports', ['done']),
    withId(get('/admin/reports/{id}', ['done']), seeded.reportId),
    withId(get('/admin/jobs/{id}', ['done']), seeded.jobId),
  ];
}
