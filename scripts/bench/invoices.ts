import { spawn, type ChildProcess } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import knexFactory from 'knex';
import '../../src/db/index.js';
import { migrateLatest } from '../../src/db/migrate.js';
import { submitInvoiceRequest } from '../../src/invoices/requests.js';
import { generateInvoiceRequest } from '../../src/invoices/schemas.js';
import { insertParty } from '../../src/invoices/store.js';
import { REDIS_URL, admin, arg, benchInvoiceBody, dbUrl, finish, loadGuard } from './support.js';

// npm run bench:invoices [-- --requests 10000 --workers 4 --concurrency 4]
//
// The async invoice queue end to end against real Postgres and Redis:
// --requests invoice requests for ONE supplier are queued (request + job rows,
// as POST /api/v1/invoice-requests writes them), then --workers real
// `herald worker` processes drain them. Every invoice number is taken under
// the same supplier row lock, so this measures the numbering bottleneck.
//   invoices/s = requests / (first request started -> last request completed),
//   both read from invoice_requests (one clock: the database's), so process
//   start-up (tsx) is not counted.
// Afterwards it checks the numbers are exactly 1..requests.
// Target (issue 4): >= 500 invoices/s.
// Env: BENCH_DATABASE_URL (admin connection), BENCH_REDIS_URL.

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const DB_NAME = `herald_bench_invoices_${process.pid}`;

function startWorker(concurrency: number, prefix: string): { child: ChildProcess; started: Promise<void> } {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src/cli/main.ts'), 'worker', '--concurrency', String(concurrency)], {
    cwd: ROOT,
    env: { ...process.env, DATABASE_URL: dbUrl(DB_NAME), REDIS_URL, REDIS_PREFIX: prefix, LOG_LEVEL: 'info' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let err = '';
  const started = new Promise<void>((resolve, reject) => {
    child.stderr!.on('data', (d: Buffer) => {
      err += d.toString();
      if (err.includes('"worker started"')) resolve();
      if (err.length > 100_000) err = err.slice(-10_000);
    });
    child.on('exit', (code) => reject(new Error(`worker exited with ${code} before starting:\n${err.slice(-2000)}`)));
  });
  return { child, started };
}

async function main(): Promise<void> {
  const requests = arg('requests', 10_000);
  const workerCount = arg('workers', 4);
  const concurrency = arg('concurrency', 4);
  await admin(`DROP DATABASE IF EXISTS ${DB_NAME} WITH (FORCE)`);
  await admin(`CREATE DATABASE ${DB_NAME}`);
  const db = knexFactory({ client: 'pg', connection: dbUrl(DB_NAME), pool: { min: 0, max: 16 } });
  const workers: ChildProcess[] = [];
  try {
    await migrateLatest(db);
    const supplier = await insertParty(db, { role: 'supplier', name: 'Bench Supplier', invoice_prefix: 'B-', default_tax_rate: '21' });
    const client = await insertParty(db, { role: 'client', name: 'Bench Client' });
    const body = generateInvoiceRequest.parse(benchInvoiceBody(supplier.id, client.id));

    const q0 = Date.now();
    let next = 0;
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        while (next < requests) {
          next++;
          await submitInvoiceRequest(db, { caller: 'bench', body });
        }
      }),
    );
    const queueSeconds = (Date.now() - q0) / 1000;
    process.stderr.write(`queued ${requests} requests in ${queueSeconds.toFixed(1)} s; starting ${workerCount} workers\n`);

    const prefix = `herald-bench-invoices-${process.pid}`;
    const started = Array.from({ length: workerCount }, () => startWorker(concurrency, prefix));
    workers.push(...started.map((w) => w.child));
    await Promise.all(started.map((w) => w.started));
    const watch = loadGuard();
    const t0 = Date.now();
    for (;;) {
      const row = (await db('invoice_requests').whereIn('status', ['pending', 'processing']).count({ n: '*' }).first()) as { n: number };
      if (Number(row.n) === 0) break;
      if (Date.now() - t0 > 15 * 60_000) throw new Error(`gave up after 15 minutes with ${row.n} requests open`);
      await new Promise((r) => setTimeout(r, 200));
    }
    const requestsDone = Date.now();
    for (;;) {
      const row = (await db('jobs').whereNot({ status: 'completed' }).count({ n: '*' }).first()) as { n: number };
      if (Number(row.n) === 0) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    const jobsDrainedAfter = (Date.now() - requestsDone) / 1000;
    const { rows } = await db.raw(`
      SELECT count(*) FILTER (WHERE status = 'completed')::int AS completed,
             count(*) FILTER (WHERE status = 'failed')::int AS failed,
             extract(epoch FROM max(completed_at) - min(started_at))::float8 AS seconds
        FROM invoice_requests`);
    const stats = rows[0] as { completed: number; failed: number; seconds: number };
    const numbers = await db.raw(`SELECT count(*)::int AS n, count(DISTINCT invoice_number_int)::int AS d, min(invoice_number_int) AS lo, max(invoice_number_int) AS hi FROM invoices WHERE supplier_party_id = ?`, [supplier.id]);
    const n = numbers.rows[0] as { n: number; d: number; lo: number; hi: number };
    const contiguous = n.n === requests && n.d === requests && Number(n.lo) === 1 && Number(n.hi) === requests;
    const rate = stats.completed / stats.seconds;

    console.log(`bench:invoices  ${os.cpus().length} cores, ${workerCount} workers x concurrency ${concurrency}, one supplier`);
    console.log(`  requests        ${requests} (queued at ${(requests / queueSeconds).toFixed(0)}/s)`);
    console.log(`  completed       ${stats.completed}, failed ${stats.failed}`);
    console.log(`  drain time      ${stats.seconds.toFixed(2)} s (first started -> last completed)`);
    console.log(`  invoices/s      ${rate.toFixed(0)}`);
    console.log(`  jobs            every job completed ${jobsDrainedAfter.toFixed(1)} s after the last request (batched requests' own jobs find nothing to do)`);
    console.log(`  numbers         ${n.n} invoices, ${n.d} distinct, ${n.lo}..${n.hi}: ${contiguous ? 'contiguous, no gap, no duplicate' : 'BROKEN'}`);
    finish(
      watch.stop(),
      { workers: workerCount, concurrency, requests, completed: stats.completed, failed: stats.failed, seconds: +stats.seconds.toFixed(2), invoicesPerSecond: Math.round(rate), contiguous },
      { 'invoices/s >= 500': { met: rate >= 500, value: rate.toFixed(0) } },
    );
    if (!contiguous || stats.failed > 0) process.exitCode = 1;
  } finally {
    for (const w of workers) w.kill('SIGTERM');
    await Promise.all(workers.map((w) => new Promise((r) => (w.exitCode !== null ? r(null) : w.on('exit', r)))));
    await db.destroy();
    await admin(`DROP DATABASE IF EXISTS ${DB_NAME} WITH (FORCE)`);
  }
}

await main();
