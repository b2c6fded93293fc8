import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import knexFactory from 'knex';
import pg from 'pg';
import '../../src/db/index.js';
import { migrateLatest } from '../../src/db/migrate.js';
import { startPacSandbox } from '../../src/sandbox/pac.js';
import { ADMIN_URL, REDIS_URL, arg, finish, loadGuard, quantile } from './support.js';

// npm run bench:poller [-- --documents 10000 --seconds 60 --concurrency 50]
// (or: tsx scripts/bench/poller.ts [--compiled] ...)
//
// --documents PAC documents in flight (REGISTERED for the whole run, so each
// is polled every PROVIDER_POLL_INTERVAL_MS = 5 s), followed by ONE
// `herald worker` process against real Postgres and Redis and the PAC
// stand-in, in a scratch database this script creates and drops.
// Prints: polls/s (status GETs the stand-in answered, after a 10 s warm-up),
// lateness of each poll = time since the same document's previous poll
// minus 5 s (p50, p90, p99), and the worker's peak RSS (VmHWM).
// Targets (issue): peak RSS < 300 MB, median lateness <= 1 s.
// --compiled (what `npm run bench:poller` passes, after `npm run build`):
// the worker runs dist/ as a deployment would, without tsx's loader in the
// process (about 40 MB of RSS); without it, the worker runs through tsx.
// Env: BENCH_DATABASE_URL (admin connection), BENCH_REDIS_URL,
// BENCH_WORKER_NODE_ARGS (extra node flags for the worker, e.g.
// "--cpu-prof --cpu-prof-dir=/tmp/prof").

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const INTERVAL_MS = 5_000;
const WARMUP_MS = 10_000;

async function main(): Promise<void> {
  const documents = arg('documents', 10_000);
  const seconds = arg('seconds', 60);
  const concurrency = arg('concurrency', 50);
  const compiled = process.argv.includes('--compiled');
  const dbName = `herald_bench_poller_${process.pid}`;
  const admin = new pg.Client({ connectionString: ADMIN_URL });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${dbName}`);
  const url = new URL(ADMIN_URL);
  url.pathname = `/${dbName}`;
  const db = knexFactory({ client: 'pg', connection: url.toString(), pool: { min: 0, max: 4 } });

  // Lateness per poll, from the stand-in's side: no per-request records kept.
  const lastPoll = new Map<string, number>();
  const lateness: number[] = [];
  let polls = 0;
  let measuring = false;
  const pac = await startPacSandbox({
    token: 'bench-token',
    record: false,
    pacAfterMs: 24 * 3600_000,
    dgiAfterMs: 48 * 3600_000,
    onStatus(id, at) {
      const prev = lastPoll.get(id);
      lastPoll.set(id, at);
      if (!measuring) return;
      polls += 1;
      if (prev !== undefined) lateness.push(at - prev - INTERVAL_MS);
    },
  });

  let worker: ReturnType<typeof spawn> | undefined;
  try {
    await migrateLatest(db);
    process.stderr.write(`seeding ${documents} submitted documents...\n`);
    await db.raw(`INSERT INTO parties (id, role, name) VALUES (1, 'supplier', 'Bench supplier'), (2, 'client', 'Bench client')`);
    await db.raw(
      `INSERT INTO invoices (supplier_party_id, client_party_id, invoice_number, invoice_number_int, issue_date, due_date, currency,
                             supplier_name, supplier_address, client_name, client_address, subtotal, tax_total, total)
       SELECT 1, 2, 'B-' || g, g, current_date, current_date, 'USD', 'Bench supplier', '-', 'Bench client', '-', 1, 0, 1
         FROM generate_series(1, ?::int) g`,
      [documents],
    );
    const pacIds = Array.from({ length: documents }, (_, i) => pac.seed('bench-co', `herald-inv-${i + 1}-invoice`));
    await db.raw(
      `INSERT INTO provider_documents (invoice_id, provider_kind, company_id, credentials_ref, idempotency_key, status,
                                       provider_document_id, legal_status, submitted_at)
       SELECT g, 'pac', 'bench-co', 'default', 'herald-inv-' || g || '-invoice', 'submitted', (?::text[])[g], 'REGISTERED', now()
         FROM generate_series(1, ?::int) g`,
      [pacIds, documents],
    );
    const nodeArgs = (process.env.BENCH_WORKER_NODE_ARGS ?? '').split(' ').filter(Boolean);
    // --compiled: the worker as built by `npm run build` (no tsx loader in the process).
    const entry = compiled ? ['dist/src/cli/main.js'] : ['--import', 'tsx', 'src/cli/main.ts'];
    worker = spawn(process.execPath, [...nodeArgs, ...entry, 'worker', '--concurrency', String(concurrency), '--grace', '2000'], {
      cwd: ROOT,
      env: {
        ...process.env,
        DATABASE_URL: url.toString(),
        REDIS_URL,
        REDIS_PREFIX: `herald-bench-poller-${process.pid}`,
        LOG_LEVEL: 'error',
        PROVIDER_PAC_BASE_URL: pac.url,
        PROVIDER_PAC_TOKEN: 'bench-token',
        PROVIDER_POLL_INTERVAL_MS: String(INTERVAL_MS),
        PROVIDER_POLL_ATTEMPTS: '10000',
      },
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    const pid = worker.pid!;
    // The worker must be listening before the rows exist: submissions ring it
    // by NOTIFY as they commit, and so do these (first polls spread over one
    // interval, in 20 statements, as a stream of submissions would).
    await new Promise((r) => setTimeout(r, 4000));
    const per = Math.ceil(documents / 20);
    for (let from = 1; from <= documents; from += per) {
      await db.raw(
        `INSERT INTO jobs (kind, payload, subject_type, subject_id, dedupe_key, scheduled_at)
         SELECT 'provider-poll', jsonb_build_object('documentId', d.id, 'generation', 0), 'invoice', d.invoice_id::text,
                'provider-poll:' || d.id || ':0', now() + (random() * ? || ' milliseconds')::interval
           FROM provider_documents d WHERE d.id BETWEEN ? AND ?`,
        [INTERVAL_MS, from, from + per - 1],
      );
    }
    let peakKb = 0;
    const sample = setInterval(() => {
      try {
        const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
        peakKb = Math.max(peakKb, Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0));
      } catch {
        // exited
      }
    }, 500);
    await new Promise((r) => setTimeout(r, WARMUP_MS));
    measuring = true;
    const watch = loadGuard();
    const started = Date.now();
    const tty = process.stderr.isTTY;
    while (Date.now() - started < seconds * 1000) {
      await new Promise((r) => setTimeout(r, 5000));
      if (tty) process.stderr.write(`\r${Math.round((Date.now() - started) / 1000)} s, ${polls} polls`);
    }
    measuring = false;
    const elapsed = (Date.now() - started) / 1000;
    clearInterval(sample);
    if (tty) process.stderr.write('\n');
    const sorted = Float64Array.from(lateness).sort();
    const { rows } = await db.raw(`SELECT status, count(*)::int AS n FROM jobs WHERE kind = 'provider-poll' GROUP BY status ORDER BY status`);
    const result = {
      documents,
      concurrency,
      seconds: Math.round(elapsed),
      polls,
      pollsPerSecond: Math.round(polls / elapsed),
      neededPollsPerSecond: Math.round(documents / (INTERVAL_MS / 1000)),
      latenessMs: { p50: Math.round(quantile(sorted, 0.5)), p90: Math.round(quantile(sorted, 0.9)), p99: Math.round(quantile(sorted, 0.99)) },
      workerPeakRssMb: Math.round(peakKb / 1024),
      pollJobs: Object.fromEntries(rows.map((r: { status: string; n: number }) => [r.status, r.n])),
    };
    process.stdout.write(
      `${documents} documents polled every ${INTERVAL_MS / 1000} s: ${result.pollsPerSecond} polls/s (needed ${result.neededPollsPerSecond}), ` +
        `lateness p50 ${result.latenessMs.p50} ms p99 ${result.latenessMs.p99} ms, worker peak RSS ${result.workerPeakRssMb} MB\n`,
    );
    finish(watch.stop(), result, {
      'worker peak RSS < 300 MB': { met: result.workerPeakRssMb < 300, value: `${result.workerPeakRssMb} MB` },
      'median lateness < 1 s': { met: result.latenessMs.p50 < 1000, value: `${result.latenessMs.p50} ms` },
    });
  } finally {
    if (worker && worker.exitCode === null) {
      worker.kill('SIGTERM');
      await new Promise((r) => worker!.once('exit', r));
    }
    await pac.close();
    await db.destroy();
    await admin.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
    await admin.end();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench:poller failed: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
