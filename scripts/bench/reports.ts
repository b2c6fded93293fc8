import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import knexFactory from 'knex';
import pino from 'pino';
import { loadConfig } from '../../src/config.js';
import '../../src/db/index.js';
import { migrateLatest } from '../../src/db/migrate.js';
import { createReport } from '../../src/reports/create.js';
import { generateReport } from '../../src/reports/generate.js';
import { createReportServices } from '../../src/reports/services.js';
import { getReport } from '../../src/reports/store.js';
import { startS3Server } from '../../src/sandbox/s3-server.js';
import { ADMIN_URL, admin, arg, finish, loadGuard } from './support.js';

// npx tsx scripts/bench/reports.ts [--invoices 200000]
//
// One invoices report end to end against real Postgres and the local S3
// server: --invoices rows are seeded in a scratch database, then one
// generation (keyset pages -> csv-stringify -> temp file -> S3 -> SUCCESS)
// runs in this process. Prints rows/s, file size and the peak RSS sampled
// every 20 ms during the generation: memory should not grow with the row
// count (pages of 1000 rows are streamed, never collected).
// Env: BENCH_DATABASE_URL (admin connection).

const DB_NAME = `herald_bench_reports_${process.pid}`;

const invoices = arg('invoices', 200_000);
const url = new URL(ADMIN_URL);
url.pathname = `/${DB_NAME}`;
await admin(`CREATE DATABASE ${DB_NAME}`);
const db = knexFactory({ client: 'pg', connection: url.toString(), pool: { min: 0, max: 4 } });
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'herald-bench-reports-'));
const s3 = await startS3Server({ directory: dir, buckets: ['bench'] });
try {
  await migrateLatest(db);
  await db.raw(`INSERT INTO parties (role, name, address) SELECT 'supplier', 'Supplier ' || g, 'Street ' || g FROM generate_series(1, 20) g`);
  const client = (await db.raw(`INSERT INTO parties (role, name, address) VALUES ('client', 'Client Ltd', 'Road 1') RETURNING id`)).rows[0].id;
  let seeded = Date.now();
  await db.raw(
    `INSERT INTO invoices (supplier_party_id, client_party_id, invoice_number, invoice_number_int, issue_date, due_date, currency,
                           supplier_name, supplier_address, client_name, client_address, subtotal, tax_total, total)
     SELECT 1 + (g % 20), ?, 'INV-' || lpad((g / 20 + 1)::text, 8, '0'), g / 20 + 1, date '2026-01-01' + (g % 365), date '2026-03-01' + (g % 365), 'EUR',
            'Supplier ' || (1 + g % 20), 'Street', 'Client Ltd', 'Road 1', 100.00, 20.00, 120.00
       FROM generate_series(0, ? - 1) g`,
    [client, invoices],
  );
  await db.raw('ANALYZE invoices');
  seeded = Date.now() - seeded;

  const config = loadConfig({
    S3_ENDPOINT: s3.url, S3_BUCKET: 'bench', S3_ACCESS_KEY_ID: s3.accessKeyId, S3_SECRET_ACCESS_KEY: s3.secretAccessKey,
    S3_FORCE_PATH_STYLE: 'true', S3_CHECKSUM_WHEN_REQUIRED: 'true',
  });
  const services = createReportServices(config);
  const { report } = await createReport(db, { type: 'invoices', params: { from: '2026-01-01', to: '2026-12-31' }, creator: 'bench' }, { config });
  const watch = loadGuard();
  const rssBefore = process.memoryUsage().rss;
  let peak = rssBefore;
  const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 20);
  const started = process.hrtime.bigint();
  const outcome = await generateReport(db, services, report.id, { signal: new AbortController().signal, log: pino({ level: 'silent' }), now: () => new Date() });
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  clearInterval(sampler);
  services.close();
  const done = (await getReport(db, report.id))!;
  const mb = (n: number) => (n / 1024 / 1024).toFixed(0);
  process.stdout.write(
    `invoices report: ${outcome}, ${done.row_count} rows, ${((done.file_size ?? 0) / 1e6).toFixed(1)} MB CSV in ${seconds.toFixed(2)} s ` +
      `(${Math.round((done.row_count ?? 0) / seconds)} rows/s, incl. S3 put); RSS ${mb(rssBefore)} MB before, ${mb(peak)} MB peak; seeding took ${(seeded / 1000).toFixed(1)} s\n`,
  );
  const growthMb = (peak - rssBefore) / 1024 / 1024;
  finish(
    watch.stop(),
    { outcome, rows: done.row_count, csvMegabytes: +((done.file_size ?? 0) / 1e6).toFixed(1), seconds: +seconds.toFixed(2), rowsPerSecond: Math.round((done.row_count ?? 0) / seconds), rssBeforeMb: Math.round(rssBefore / 1048576), rssPeakMb: Math.round(peak / 1048576) },
    // Pages are streamed: memory must not grow with the row count.
    { 'memory flat (peak - before <= 64 MB)': { met: outcome === 'success' && growthMb <= 64, value: `${growthMb.toFixed(0)} MB` } },
  );
} finally {
  await s3.close();
  fs.rmSync(dir, { recursive: true, force: true });
  await db.destroy();
  await admin(`DROP DATABASE IF EXISTS ${DB_NAME} WITH (FORCE)`);
}
