import { expect } from 'chai';
import pino from 'pino';
import { useTestDb } from '../helpers/db.js';
import { invoiceBody, seedClient, seedSupplier } from './support.js';
import { backendsOf, expectClean, herald, startServer, startWorker, stop, waitFor, waitForBackendsGone, type Proc } from './processes.js';
import { submitInvoiceRequest } from '../../src/invoices/requests.js';
import { generateInvoiceRequest } from '../../src/invoices/schemas.js';
import { createApiKey } from '../../src/http/api-keys.js';
import { createSweeper } from '../../src/jobs/runtime/sweeper.js';
import { definitionsWith } from '../helpers/wiring.js';

// SIGKILL a real process at each named crash point of the invoice-request
// path, restart, and check nothing was lost, duplicated or mis-numbered.
// A dead worker's row stays "processing" until a sweeper sees it stuck (3x
// the kind's timeout without a heartbeat); instead of waiting 90 s the test
// runs the sweeper with its clock 10 minutes ahead (time is the one thing
// tests may fake).

const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const COUNT = 5;

describe('invoices crash recovery (real processes, SIGKILL)', function () {
  this.timeout(240_000);
  const t = useTestDb(import.meta.url);
  let procs: Proc[] = [];
  let supplierId: number;
  let clientId: number;
  let prefix = '';

  const env = () => ({ DATABASE_URL: t.get().url, REDIS_URL, REDIS_PREFIX: prefix });
  const db = () => t.get().db;

  beforeEach(async function () {
    // A fresh supplier, Redis prefix and request set per test.
    prefix = `herald-test-invoices-crash-${process.pid}-${Date.now()}`;
    await db()('invoice_items').del();
    await db()('invoice_requests').update({ invoice_id: null, status: 'pending', completed_at: null, error_message: null });
    await db()('invoices').del();
    await db()('invoice_requests').del();
    await db()('job_attempts').del();
    await db()('jobs').del();
    supplierId = (await seedSupplier(db())).id;
    clientId = (await seedClient(db())).id;
  });

  afterEach(async () => {
    await Promise.all(procs.map(stop));
    procs = [];
  });

  async function queue(n: number): Promise<string[]> {
    const body = generateInvoiceRequest.parse(invoiceBody(supplierId, clientId));
    const ids: string[] = [];
    for (let i = 0; i < n; i++) ids.push((await submitInvoiceRequest(db(), { caller: 'test', body })).request.id);
    return ids;
  }

  async function crashWorkerAt(point: string): Promise<void> {
    const worker = herald(['worker', '--concurrency', '1'], { ...env(), HERALD_CRASH_AT: point });
    procs.push(worker);
    const { signal } = await waitForExit(worker);
    expect(signal, `worker should die at ${point}`).to.equal('SIGKILL');
    await waitForBackendsGone(db(), worker);
  }

  async function sweepAsIfLater(): Promise<void> {
    const sweeper = createSweeper({ db: db(), definitions: definitionsWith(), log: pino({ level: 'silent' }), intervalMs: 60_000 });
    const counts = await sweeper.runOnce({ now: new Date(Date.now() + 10 * 60_000) });
    // Ten minutes on, the dead worker has missed its heartbeats: its job is reset as worker_lost.
    expect(counts.workerLost, 'the dead worker\'s job reset').to.equal(1);
  }

  async function finishWithFreshWorker(): Promise<void> {
    const worker = await startWorker(env());
    procs.push(worker);
    // Its backends carry its pid (what waitForBackendsGone looks for).
    expect(await backendsOf(db(), worker), 'backends named after the worker').to.be.at.least(1);
    await waitFor('every request settled', async () => {
      const open = await db()('invoice_requests').whereIn('status', ['pending', 'processing']).count({ n: '*' }).first();
      const jobs = await db()('jobs').whereNot({ status: 'completed' }).count({ n: '*' }).first();
      return Number(open!.n) === 0 && Number(jobs!.n) === 0;
    }, 90_000, worker);
    await stop(worker);
  }

  it('1. after the INSERT, before pickup: the request is processed when a worker starts', async () => {
    const key = await createApiKey(db(), `crash-${Date.now()}`);
    const server = await startServer({ ...env(), HERALD_CRASH_AT: 'invoice-request:after-insert', HERALD_CRASH_AFTER: '2' });
    procs.push(server);
    const post = () =>
      fetch(`${server.url}/api/v1/invoice-requests`, {
        method: 'POST',
        headers: { authorization: `Bearer ${key.key}`, 'content-type': 'application/json' },
        body: JSON.stringify(invoiceBody(supplierId, clientId)),
      });
    expect((await post()).status).to.equal(201);
    expect((await post()).status).to.equal(201);
    const third = await post().then(() => 'answered', (err: Error) => `failed: ${err.message}`);
    expect(third).to.match(/^failed/);
    expect((await server.exited).signal).to.equal('SIGKILL');

    // Committed before the crash: three requests, three pending jobs, no invoice yet.
    expect(await count(db()('invoice_requests').where({ status: 'pending' }))).to.equal(3);
    expect(await count(db()('jobs').where({ status: 'pending', kind: 'invoice-request' }))).to.equal(3);
    await finishWithFreshWorker();
    await expectClean(db(), supplierId, 3);
  });

  it('2. mid generateInvoice: rolled back, retried, the attempt not consumed by the crash', async () => {
    await queue(COUNT);
    await crashWorkerAt('invoice:before-commit');
    // The transaction died with the process: no invoice, no number taken.
    expect(await count(db()('invoices'))).to.equal(0);
    expect(Number((await db()('parties').where({ id: supplierId }).first()).last_invoice_number)).to.equal(0);
    const crashed = await db()('jobs').where({ status: 'processing' });
    expect(crashed).to.have.length(1);
    expect(crashed[0].attempts).to.equal(1);

    await sweepAsIfLater();
    const reset = await db()('jobs').where({ id: crashed[0].id }).first();
    expect(reset).to.include({ status: 'pending', attempts: 0, stall_count: 1 });

    await finishWithFreshWorker();
    await expectClean(db(), supplierId, COUNT);
    const done = await db()('jobs').where({ id: crashed[0].id }).first();
    expect(done).to.include({ status: 'completed', attempts: 1, stall_count: 1 });
  });

  it('3. after the invoice commits, before COMPLETED: the retry finds the invoice, links it, takes no number', async () => {
    await queue(COUNT);
    await crashWorkerAt('invoice-request:after-invoice-commit');
    // The dead worker's own request: its invoice committed, the request not COMPLETED.
    const orphans = await db()('invoice_requests as r').join('invoices as i', 'i.request_id', 'r.id').where('r.status', 'processing').select('r.id', 'i.id as invoice_id');
    expect(orphans).to.have.length(1);
    const before = Number((await db()('parties').where({ id: supplierId }).first()).last_invoice_number);

    await sweepAsIfLater();
    await finishWithFreshWorker();
    await expectClean(db(), supplierId, COUNT);
    // Linked to the invoice made before the crash, not a new one.
    expect(await db()('invoice_requests').where({ id: orphans[0].id }).first()).to.include({ status: 'completed', invoice_id: orphans[0].invoice_id });
    expect(before).to.be.at.least(1);
  });

  it('4. after COMPLETED: the retry does nothing', async () => {
    await queue(COUNT);
    await crashWorkerAt('invoice-request:after-completed');
    const completed = await db()('invoice_requests').where({ status: 'completed' }).select('id', 'invoice_id');
    const invoicesBefore = await count(db()('invoices'));
    expect(completed.length).to.be.at.least(1);
    expect(invoicesBefore).to.equal(completed.length);
    // The job of the dead worker's request is still processing; its request is not.
    const crashedJob = await db()('jobs').where({ status: 'processing' }).first();
    expect(await db()('invoice_requests').where({ id: crashedJob.payload.requestId }).first()).to.include({ status: 'completed' });

    await sweepAsIfLater();
    await finishWithFreshWorker();
    await expectClean(db(), supplierId, COUNT);
    for (const r of completed) expect(await db()('invoice_requests').where({ id: r.id }).first()).to.include({ invoice_id: r.invoice_id });
  });
});

async function count(query: { count(arg: { n: string }): { first(): Promise<unknown> } }): Promise<number> {
  const row = (await query.count({ n: '*' }).first()) as { n: string | number };
  return Number(row.n);
}

async function waitForExit(proc: Proc): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  const timer = setTimeout(() => proc.child.kill('SIGKILL'), 90_000);
  try {
    return await proc.exited;
  } finally {
    clearTimeout(timer);
  }
}
