import { expect } from 'chai';
import { useTestDb } from '../helpers/db.js';
import { invoiceBody, seedClient, seedSupplier } from './support.js';
import { expectClean, startServer, startWorker, stop, waitFor, type Proc } from './processes.js';
import { submitInvoiceRequest } from '../../src/invoices/requests.js';
import { generateInvoiceRequest } from '../../src/invoices/schemas.js';
import { createApiKey } from '../../src/http/api-keys.js';

// The numbering invariant under real contention: 4 `herald worker`
// processes drain queued requests while a `herald serve` process answers sync
// generate calls, all for one supplier at the same time.

const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const ASYNC = 1500;
const SYNC = 500;

describe('invoices numbering under concurrency (real processes)', function () {
  this.timeout(600_000);
  const t = useTestDb(import.meta.url);
  const procs: Proc[] = [];

  // afterEach, not after: it must run before useTestDb drops the database.
  afterEach(async () => {
    await Promise.all(procs.map(stop));
  });

  it('assigns 1..2000 with no gap or duplicate across 4 workers and concurrent sync API calls', async () => {
    const db = t.get().db;
    const env = { DATABASE_URL: t.get().url, REDIS_URL, REDIS_PREFIX: `herald-test-invoices-concurrency-${process.pid}`, LOG_LEVEL: 'warn' };
    const supplier = await seedSupplier(db);
    const client = await seedClient(db);
    const key = await createApiKey(db, 'concurrency');
    const [server, ...workers] = await Promise.all([startServer(env), ...Array.from({ length: 4 }, () => startWorker({ ...env, LOG_LEVEL: 'info' }, 8))]);
    procs.push(server!, ...workers);

    const body = generateInvoiceRequest.parse(invoiceBody(supplier.id, client.id));
    const queueAll = runPool(ASYNC, 8, async () => {
      await submitInvoiceRequest(db, { caller: 'concurrency', body });
    });
    const syncNumbers: string[] = [];
    const syncAll = runPool(SYNC, 8, async () => {
      const res = await fetch(`${server!.url}/api/v1/invoices/generate`, {
        method: 'POST',
        headers: { authorization: `Bearer ${key.key}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      expect(res.status).to.equal(201);
      syncNumbers.push(((await res.json()) as { invoiceNumber: string }).invoiceNumber);
    });
    await Promise.all([queueAll, syncAll]);

    await waitFor('all requests completed', async () => {
      const row = await db('invoice_requests').where({ status: 'completed' }).count({ n: '*' }).first();
      return Number(row!.n) === ASYNC;
    }, 480_000);
    await waitFor('all jobs completed', async () => {
      const row = await db('jobs').whereNot({ status: 'completed' }).count({ n: '*' }).first();
      return Number(row!.n) === 0;
    }, 60_000);

    expect(new Set(syncNumbers).size).to.equal(SYNC);
    await expectClean(db, supplier.id, ASYNC + SYNC);
    // Every worker took part, so the lock really was contended across
    // processes: each prints its counts when stopped.
    await Promise.all(workers.map(stop));
    const completedPerWorker = workers.map((w) => Number(/completed (\d+)/.exec(w.stdout())?.[1] ?? -1));
    expect(completedPerWorker.every((n) => n > 0), `completed per worker: ${completedPerWorker.join(', ')}`).to.equal(true);
    expect(completedPerWorker.reduce((a, b) => a + b, 0)).to.equal(ASYNC);
  });
});

/** Runs fn `total` times, `width` at a time. */
async function runPool(total: number, width: number, fn: () => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < total) {
        next++;
        await fn();
      }
    }),
  );
}
