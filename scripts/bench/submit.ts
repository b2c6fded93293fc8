import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import knexFactory from 'knex';
import '../../src/db/index.js';
import { migrateLatest } from '../../src/db/migrate.js';
import { createApiKey } from '../../src/http/api-keys.js';
import { INSERT_INVOICE_REQUESTS_SQL } from '../../src/invoices/request-store.js';
import { insertParty } from '../../src/invoices/store.js';
import { admin, arg, argList, benchInvoiceBody, dbUrl, finish, loadGuard, measuredWindows, quantile, SERVER_NODE_OPTIONS, type Target as Verdict } from './support.js';

// npm run bench:submit [-- --seconds 10 --connections 10,32,64 --autocannon]
// (builds, then serves the compiled dist/ with --compiled; load from wrk when
// it is installed, `apt-get install wrk`, else, or with --autocannon, from
// autocannon, whose latencies are whole milliseconds)
//
// POST /api/v1/invoice-requests against a real `herald serve` process (no
// worker: only the submit path is measured), loaded with wrk or autocannon; then,
// in the same run and on the same machine, pgbench doing a single-row INSERT
// (one jsonb row per transaction, the floor for "store a request durably").
// For each connection count, both use that many connections for the same
// time, one after the other so they do not share the two cores.
// Prints req/s, p50/p99 latency, pgbench TPS and the ratio per count, and
// pgbench running Herald's own submit statement one request per transaction
// (its trigger writes the job row, which NOTIFYs): what the server's
// batching (one statement per batch) is up against; with that statement's
// p99 latency through libpq (a 20% sample logged by pgbench, in this run
// only: the judged pgbench phase logs nothing), so a p99 spike of Herald's
// can be set against what Postgres and the disk did at the time.
// Targets (issues 4 and 15): at 10 connections >= 50% of pgbench TPS, p99 < 10 ms.
// Load: the run's own processes fill both cores, so the whole run always
// ends above the core count; the 10-connection Herald and pgbench phases
// therefore each wait for the 1-minute load to settle to half the cores
// (at most 2 min) and are judged on their own load (support.ts measuredWindows).
// Why several counts: both sides are closed loops (each connection waits
// for its answer before sending again), so with few connections req/s is
// connections / round-trip time, and an HTTP round trip through Node costs
// more than pgbench's libpq one whatever the server does; with more
// connections the server's batching (src/invoices/requests.ts) shows.
// Env: BENCH_DATABASE_URL (admin connection), PGBENCH (path to pgbench),
// BENCH_SERVER_NODE_ARGS (node flags for the server instead of the deployed
// SERVER_NODE_OPTIONS, e.g. "--max-semi-space-size=16 --cpu-prof --cpu-prof-dir=/tmp/prof").

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const PGBENCH = process.env.PGBENCH ?? (fs.existsSync('/usr/bin/pgbench') ? '/usr/bin/pgbench' : '/usr/lib/postgresql/15/bin/pgbench');
const DB_NAME = `herald_bench_submit_${process.pid}`;
const serverNodeArgs = process.env.BENCH_SERVER_NODE_ARGS ?? SERVER_NODE_OPTIONS;

async function startServer(): Promise<{ child: ChildProcess; url: string }> {
  // --compiled: the server as built by `npm run build` (what a deployment runs), not through tsx.
  const entry = process.argv.includes('--compiled') ? [path.join(ROOT, 'dist/src/cli/main.js')] : ['--import', 'tsx', path.join(ROOT, 'src/cli/main.ts')];
  const child = spawn(process.execPath, [...serverNodeArgs.split(' ').filter(Boolean), ...entry, 'serve', '--port', '0', '--no-worker', '--json'], {
    cwd: ROOT,
    env: { ...process.env, DATABASE_URL: dbUrl(DB_NAME), LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /"url":\s*"([^"]+)"/.exec(out);
      if (m) resolve(m[1]!);
    });
    child.on('exit', (code) => reject(new Error(`herald serve exited with ${code}`)));
  });
  return { child, url };
}

/**
 * Herald's own submit statement (INSERT_INVOICE_REQUESTS_SQL) for one request per
 * transaction, as pgbench runs it: the invoice_requests row, its job row
 * written by the trigger, and the job's NOTIFY. What storing a request costs
 * Postgres without Herald's batching.
 */
function heraldStatement(payload: string, supplierId: number, clientId: number): string {
  const row = `'[{"id":"' || gen_random_uuid() || '","caller":"pgbench","idempotency_key":null,"body_hash":null,"payload":${payload.replace(/'/g, "''")},"supplier_party_id":${supplierId},"client_party_id":${clientId}}]'`;
  return `${INSERT_INVOICE_REQUESTS_SQL.replace(/\s+/g, ' ').replace('$1', () => `(${row})`)};`;
}

interface PgbenchResult {
  tps: number;
  /** With latency: p99 per-transaction latency of a 20% sample (pgbench --log), ms. */
  p99Ms?: number;
}

function runPgbench(seconds: number, connections: number, payload: string, sql = `INSERT INTO bench_pgbench_requests (payload) VALUES ('${payload.replace(/'/g, "''")}');`, latency = false): PgbenchResult {
  const script = path.join(os.tmpdir(), `herald-bench-submit-${process.pid}.sql`);
  // One row per transaction, as a request is: a jsonb body of the same size.
  fs.writeFileSync(script, `${sql}\n`);
  const logDir = latency ? fs.mkdtempSync(path.join(os.tmpdir(), 'herald-bench-pgbench-')) : null;
  const logArgs = logDir ? ['--log', '--sampling-rate', '0.2', '--log-prefix', path.join(logDir, 'tx')] : [];
  const u = new URL(dbUrl(DB_NAME));
  const res = spawnSync(PGBENCH, ['-n', '-h', u.hostname, '-p', u.port || '5432', '-U', u.username || 'postgres', '-f', script, '-c', String(connections), '-j', '2', '-T', String(seconds), ...logArgs, DB_NAME], {
    encoding: 'utf8',
  });
  fs.rmSync(script, { force: true });
  const tps = /tps = ([\d.]+)/.exec(res.stdout ?? '');
  if (!tps) throw new Error(`pgbench failed: ${res.stderr || res.stdout || res.error?.message}`);
  if (!logDir) return { tps: Number(tps[1]) };
  // Each line: client, transaction, latency (us), script, epoch s, us.
  const micros = fs.readdirSync(logDir).flatMap((f) =>
    fs.readFileSync(path.join(logDir, f), 'utf8').split('\n').filter(Boolean).map((line) => Number(line.split(' ')[2])),
  );
  fs.rmSync(logDir, { recursive: true, force: true });
  return { tps: Number(tps[1]), p99Ms: +(quantile(Float64Array.from(micros).sort(), 0.99) / 1000).toFixed(1) };
}

interface Target {
  url: string;
  key: string;
  body: string;
}

interface LoadResult {
  rps: number;
  latency: { p50: number; p99: number };
  non2xx: number;
  errors: number;
}

// wrk (C, two threads) when installed: it takes less of the two cores from
// the server than autocannon (Node) does, as pgbench (C) does on its side.
const WRK = ['/usr/bin/wrk', '/usr/local/bin/wrk'].find((p) => fs.existsSync(p));
const wrk = WRK !== undefined && !process.argv.includes('--autocannon');

async function runAutocannon(t: Target, connections: number, duration: number): Promise<LoadResult> {
  const r = await autocannon({
    url: t.url,
    method: 'POST',
    headers: { authorization: `Bearer ${t.key}`, 'content-type': 'application/json' },
    body: t.body,
    connections,
    duration,
  });
  return { rps: r.requests.average, latency: { p50: r.latency.p50, p99: r.latency.p99 }, non2xx: r.non2xx, errors: r.errors };
}

async function runWrk(t: Target, connections: number, duration: number): Promise<LoadResult> {
  const script = path.join(os.tmpdir(), `herald-bench-submit-${process.pid}.lua`);
  const lua = (s: string) => JSON.stringify(s); // a JSON string literal is a valid Lua string literal for this ASCII body
  fs.writeFileSync(
    script,
    `wrk.method = "POST"\nwrk.body = ${lua(t.body)}\nwrk.headers["Content-Type"] = "application/json"\nwrk.headers["Authorization"] = ${lua(`Bearer ${t.key}`)}\n`,
  );
  try {
    const out = await new Promise<string>((resolve, reject) => {
      const child = spawn(WRK!, ['-t', String(Math.min(2, connections)), '-c', String(connections), '-d', `${duration}s`, '--latency', '-s', script, t.url], { stdio: ['ignore', 'pipe', 'inherit'] });
      let text = '';
      child.stdout!.on('data', (d: Buffer) => (text += d.toString()));
      child.on('exit', (code) => (code === 0 ? resolve(text) : reject(new Error(`wrk exited with ${code}: ${text}`))));
    });
    const ms = (pct: string) => {
      const m = new RegExp(`^\\s+${pct}%\\s+([\\d.]+)(us|ms|s)`, 'm').exec(out);
      if (!m) throw new Error(`wrk printed no ${pct}% latency: ${out}`);
      return Number(m[1]) * (m[2] === 'us' ? 0.001 : m[2] === 's' ? 1000 : 1);
    };
    const socketErrors = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
    return {
      rps: Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? NaN),
      latency: { p50: Math.round(ms('50') * 10) / 10, p99: Math.round(ms('99') * 10) / 10 },
      non2xx: Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0),
      errors: socketErrors ? socketErrors.slice(1).reduce((s, n) => s + Number(n), 0) : 0,
    };
  } finally {
    fs.rmSync(script, { force: true });
  }
}

/** One snapshot for both counts (requests still in flight may commit between two queries). */
async function counts2(db: knexFactory.Knex): Promise<{ stored: number; jobs: number }> {
  const counted = await db.raw(`SELECT (SELECT count(*) FROM invoice_requests)::int AS stored, (SELECT count(*) FROM jobs)::int AS jobs`);
  return counted.rows[0] as { stored: number; jobs: number };
}

async function main(): Promise<void> {
  const seconds = arg('seconds', 10);
  const counts = argList('connections', [10, 32, 64], (n) => Number.isInteger(n) && n > 0, 'positive whole numbers');
  await admin(`DROP DATABASE IF EXISTS ${DB_NAME} WITH (FORCE)`);
  await admin(`CREATE DATABASE ${DB_NAME}`);
  const db = knexFactory({ client: 'pg', connection: dbUrl(DB_NAME), pool: { min: 0, max: 2 } });
  let server: ChildProcess | undefined;
  try {
    await migrateLatest(db);
    await db.raw(`CREATE TABLE bench_pgbench_requests (id bigserial PRIMARY KEY, payload jsonb NOT NULL, created_at timestamptz NOT NULL DEFAULT now())`);
    const supplier = await insertParty(db, { role: 'supplier', name: 'Bench Supplier' });
    const client = await insertParty(db, { role: 'client', name: 'Bench Client' });
    const key = await createApiKey(db, 'bench-submit');
    const body = JSON.stringify(benchInvoiceBody(supplier.id, client.id));
    const started = await startServer();
    server = started.child;
    const target = { url: `${started.url}/api/v1/invoice-requests`, key: key.key, body };
    const load = (connections: number, duration: number) => (wrk ? runWrk(target, connections, duration) : runAutocannon(target, connections, duration));

    const watch = loadGuard();
    const runs: { connections: number; requestsPerSecond: number; p50Ms: number; p99Ms: number; pgbenchTps: number; ratio: number; pgbenchHeraldStatementTps: number; pgbenchHeraldStatementP99Ms: number }[] = [];
    const targets: Record<string, Verdict> = {};
    console.log(`bench:submit  ${os.cpus().length} cores, ${seconds} s per run, load from ${wrk ? 'wrk' : 'autocannon'}, server node flags "${serverNodeArgs}"`);
    console.log('  conns   req/s   p50 ms  p99 ms  pgbench TPS  ratio  pgbench, Herald\'s statement: TPS  p99 ms');
    let failed = false;
    let stored = 0;
    let jobs = 0;
    // The judged count (10) runs first; its two measured phases each start
    // on a settled machine and are watched on their own.
    const windows = measuredWindows();
    const phase = async <T>(run: () => Promise<T> | T, watched: boolean): Promise<T> => (watched ? (await windows.run(run)).value : run());
    for (const connections of counts) {
      const isJudged = connections === 10;
      // Every run starts from the same state: empty tables, a fresh checkpoint (both sides alike).
      await db.raw('TRUNCATE invoice_requests, jobs CASCADE');
      await db.raw('CHECKPOINT');
      await load(connections, 2); // warm-up (JIT, pool, key cache) so the measured run is steady state
      const before = await counts2(db);
      const result = await phase(() => load(connections, seconds), isJudged);
      const after = await counts2(db);
      stored += after.stored;
      jobs += after.jobs;
      await db.raw('TRUNCATE bench_pgbench_requests');
      await db.raw('CHECKPOINT');
      const { tps } = await phase(() => runPgbench(seconds, connections, body), isJudged);
      await db.raw('TRUNCATE invoice_requests, jobs CASCADE');
      await db.raw('CHECKPOINT');
      const own = runPgbench(seconds, connections, body, heraldStatement(body, supplier.id, client.id), true);
      const rps = result.rps;
      const ratio = rps / tps;
      runs.push({ connections, requestsPerSecond: Math.round(rps), p50Ms: result.latency.p50, p99Ms: result.latency.p99, pgbenchTps: Math.round(tps), ratio: +ratio.toFixed(3), pgbenchHeraldStatementTps: Math.round(own.tps), pgbenchHeraldStatementP99Ms: own.p99Ms! });
      // The issue's target is at 10 connections; the others are kept for comparison.
      if (connections === 10) {
        targets['10 connections >= 50% of pgbench'] = { met: ratio >= 0.5, value: `${(ratio * 100).toFixed(0)}%` };
        targets['10 connections p99 < 10 ms'] = { met: result.latency.p99 < 10, value: `${result.latency.p99} ms` };
      }
      console.log(
        `  ${String(connections).padStart(5)}  ${rps.toFixed(0).padStart(6)}  ${String(result.latency.p50).padStart(7)}  ${String(result.latency.p99).padStart(6)}  ${tps.toFixed(0).padStart(11)}  ${`${(ratio * 100).toFixed(0)}%`.padStart(5)}  ${own.tps.toFixed(0).padStart(10)}  ${String(own.p99Ms).padStart(6)}`,
      );
      if (result.non2xx > 0 || result.errors > 0) {
        console.log(`         ${result.non2xx} non-2xx answers, ${result.errors} errors`);
        failed = true;
      }
      if (after.stored - before.stored !== after.jobs - before.jobs) failed = true;
    }
    console.log(`  stored ${stored} requests, ${jobs} jobs (one job per request: ${stored === jobs ? 'yes' : 'NO'})`);
    const whole = watch.stop();
    const judgedLoad = windows.judgedLoad(whole, 'the 10-connection Herald and pgbench phases');
    finish(judgedLoad, { seconds, loadFrom: wrk ? 'wrk' : 'autocannon', runs, stored, jobs, wholeRunLoad: { before: whole.before, after: whole.after, peak1m: whole.peak1m } }, targets);
    if (failed || stored !== jobs) process.exitCode = 1;
  } finally {
    server?.kill('SIGTERM');
    if (server) await new Promise((r) => (server!.exitCode !== null ? r(null) : server!.on('exit', r)));
    await db.destroy();
    await admin(`DROP DATABASE IF EXISTS ${DB_NAME} WITH (FORCE)`);
  }
}

await main();
