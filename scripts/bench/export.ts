// `npm run bench:export [-- --sizes 10,20,40,100]`: what an operator waits
// for, from READY_FOR_EXPORT to HMRC notified. Per size (MB of envelope XML):
// a workbasket of that size is written to a fresh Postgres database, a
// compiled `herald worker` (REDIS_URL set, as deployed) is started and warmed
// with a one-transaction workbasket, then the workbasket is made
// READY_FOR_EXPORT: the trigger queues upload-workbaskets, the worker renders,
// validates, numbers and stores the envelopes, puts each in the S3 stand-in
// and notifies the HMRC stand-in (src/sandbox). The figures:
// - seconds: workbaskets.status_changed_at to the last uploads.notification_sent
//   (both Postgres clocks);
// - peakRssMb: the worker's VmHWM (whole process, validation thread included),
//   and what it is made of: the idle worker's file-backed pages (the node
//   binary, libraries) and anonymous memory, and the anonymous peak;
// - xmllintSeconds: `xmllint --noout --schema xsd/envelope.xsd` on the same
//   envelopes, downloaded from the S3 stand-in, in the same run;
// - where the time went: each job's phase line ({ timing, ms }, see
//   src/lib/phase-times.ts) read from the worker's stderr, and the waits
//   between jobs from job_attempts.
// Targets (issue 15): 40 MB end to end <= 2.0x xmllint; 2x the data <= 2.2x
// the time; worker peak RSS <= 3x the largest envelope. Each export and each
// xmllint run starts once the 1-minute load is at most half the cores; no
// target is judged when the load exceeded the core count in any of them.
// Ends with one JSON line: {"sizes":[{megabytes, seconds, xmllintSeconds, ratio, peakRssMb, ...}], ...}.
// Env: BENCH_DATABASE_URL (admin connection), BENCH_REDIS_URL,
// BENCH_WORKER_NODE_ARGS (node flags for the worker instead of the deployed
// --max-semi-space-size=8, e.g. "--max-semi-space-size=8 --cpu-prof").
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { Command, InvalidArgumentError } from 'commander';
import knexFactory, { type Knex } from 'knex';
import '../../src/db/index.js';
import { loadConfig } from '../../src/config.js';
import { migrateLatest } from '../../src/db/migrate.js';
import { startSandboxes, type StartedSandboxes } from '../../src/sandbox/sandboxes.js';
import { createS3Storage, s3OptionsFromConfig } from '../../src/storage/s3.js';
import { renderTransaction } from '../../src/taric/envelope/serialize.js';
import { HERALD_ENVELOPE_XSD } from '../../src/taric/envelope/xsd.js';
import { resolveXsdEngine } from '../../src/taric/envelope/envelope-check.js';
import type { SourceTransaction } from '../../src/taric/model.js';
import { insertRecords, insertTransactions, insertWorkbasket, setWorkbasketStatusIf } from '../../src/taric/store.js';
import { sampleTransactions } from '../../test/taric/support/sample-records.js';
import { admin, dbUrl, finish, formatLoad, loadGuard, measuredWindows, REDIS_URL, WORKER_NODE_OPTIONS, type LoadReport, type Target } from './support.js';

// This script runs compiled (dist/scripts/bench/export.js), so the worker is dist/src/cli/main.js.
const WORKER_ENTRY = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const MAX_ENVELOPE_BYTES = 40_000_000;
const MB = 1e6;

const program = new Command('bench:export')
  .description('Workbaskets of several sizes from READY_FOR_EXPORT to HMRC notified through a real worker; compare with xmllint')
  .option('--sizes <list>', 'envelope megabytes per workbasket, comma-separated', (v) => {
    const sizes = v.split(',').map(Number);
    if (sizes.length === 0 || sizes.some((n) => !Number.isFinite(n) || n <= 0 || n > 1000)) throw new InvalidArgumentError('--sizes must be numbers from 0 to 1000, e.g. 10,20,40');
    return sizes;
  }, [10, 20, 40, 100])
  .option('--keep', 'keep the scratch database and files (printed) instead of dropping them')
  .parse();
const opts = program.opts<{ sizes: number[]; keep?: boolean }>();

// ---- the workbaskets ---------------------------------------------------------

// Varied valid transactions (every exportable record type), measured once and
// replayed with fresh rows until a workbasket reaches its size.
const palette = [...sampleTransactions({ count: 150, seed: 42, records: [1, 8], textLength: 60 })];
const paletteBytes = palette.map((t, i) => renderTransaction(t, 1_000_000 + i, 10_000).bytes);

async function writeWorkbasket(db: Knex, title: string, targetBytes: number): Promise<{ id: number; transactions: number }> {
  const wb = await insertWorkbasket(db, { title, reason: 'bench:export' });
  const BATCH = 2000;
  let bytes = 0;
  let n = 0;
  while (bytes < targetBytes) {
    const batch: SourceTransaction[] = [];
    for (; batch.length < BATCH && bytes < targetBytes; n++) {
      batch.push(palette[n % palette.length]!);
      bytes += paletteBytes[n % palette.length]!;
    }
    const start = n - batch.length;
    const rows = await insertTransactions(db, wb.id, batch.map((_, i) => start + i + 1));
    const byPosition = new Map(rows.map((r) => [r.position, r.id]));
    await insertRecords(
      db,
      batch.flatMap((t, i) => t.records.map((record, k) => ({ transactionId: byPosition.get(start + i + 1)!, position: k + 1, record }))),
    );
  }
  return { id: wb.id, transactions: n };
}

// ---- the worker --------------------------------------------------------------

interface TimingLine {
  timing: string;
  ms: Record<string, number>;
  [k: string]: unknown;
}

interface RunningWorker {
  child: ChildProcess;
  timings: TimingLine[];
  errors: string[];
  started: Promise<void>;
  exited: Promise<void>;
}

function startWorker(env: Record<string, string>): RunningWorker {
  const nodeArgs = (process.env.BENCH_WORKER_NODE_ARGS ?? WORKER_NODE_OPTIONS).split(' ').filter(Boolean);
  const child = spawn(process.execPath, [...nodeArgs, WORKER_ENTRY, 'worker', '--grace', '2000'], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const timings: TimingLine[] = [];
  const errors: string[] = [];
  let ready!: () => void;
  const started = new Promise<void>((resolve) => (ready = resolve));
  readline.createInterface({ input: child.stderr! }).on('line', (line) => {
    let entry: { msg?: string; level?: number; timing?: string; ms?: Record<string, number> };
    try {
      entry = JSON.parse(line);
    } catch {
      errors.push(line);
      return;
    }
    if (entry.msg === 'worker started') ready();
    if (entry.timing && entry.ms) timings.push(entry as TimingLine);
    if ((entry.level ?? 0) >= 40) errors.push(line);
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  void exited.then(() => ready());
  return { child, timings, errors, started, exited };
}

/**
 * VmHWM (peak) and VmRSS (now) of a process, in MB, and what RSS is made of
 * now: file-backed pages (the node binary's code and data, shared
 * libraries: a fixed cost that grows only with the code that has run) and
 * anonymous memory (the V8 heap, buffers, malloc).
 */
function rssMb(pid: number): { peak: number; now: number; anon: number; file: number } {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string) => Number(new RegExp(`${field}:\\s+(\\d+)`).exec(status)?.[1] ?? NaN);
  return { peak: kb('VmHWM') / 1024, now: kb('VmRSS') / 1024, anon: kb('RssAnon') / 1024, file: kb('RssFile') / 1024 };
}

/** The largest anonymous RSS seen while it runs (the kernel keeps a peak only for the total). */
function sampleAnonPeak(pid: number): () => number {
  let peak = 0;
  const sample = () => {
    try {
      peak = Math.max(peak, rssMb(pid).anon);
    } catch {
      // the worker has exited: its last samples stand
    }
  };
  sample();
  const timer = setInterval(sample, 20);
  return () => {
    clearInterval(timer);
    sample();
    return peak;
  };
}

async function stopWorker(w: RunningWorker): Promise<void> {
  if (w.child.exitCode === null && w.child.signalCode === null) w.child.kill('SIGTERM');
  await w.exited;
}

/** Makes the workbasket ready and waits until every envelope of it is notified; seconds on Postgres's clock. */
async function exportAndWait(db: Knex, workbasketId: number, worker: RunningWorker, timeoutMs: number): Promise<{ seconds: number; readyAt: Date; envelopes: Array<{ id: number; envelopeId: string; key: string; bytes: number; md5: string }> }> {
  // status_changed_at is now() of this statement: the start of the clock.
  const moved = await setWorkbasketStatusIf(db, workbasketId, 'EDITING', 'READY_FOR_EXPORT');
  if (!moved) throw new Error(`workbasket ${workbasketId} was not EDITING`);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { rows } = await db.raw(
      `SELECT w.status,
              extract(epoch FROM (SELECT max(u.notification_sent) FROM uploads u WHERE u.envelope_id IN (SELECT envelope_id FROM envelope_transactions WHERE workbasket_id = w.id)) - ?::timestamptz)::float8 AS seconds,
              (SELECT count(*)::int FROM uploads u WHERE u.notification_sent IS NULL) AS unsent,
              (SELECT count(*)::int FROM jobs WHERE status = 'failed_permanent') AS dead
         FROM workbaskets w WHERE w.id = ?`,
      [moved.statusChangedAt, workbasketId],
    );
    const r = rows[0];
    if (r.dead > 0) throw new Error(`a job failed permanently: ${worker.errors.slice(-30).join('\n')}`);
    if (r.status === 'SENT' && r.unsent === 0 && r.seconds !== null) {
      const { rows: envelopes } = await db.raw(
        `SELECT DISTINCT e.id, e.envelope_id AS "envelopeId", u.key, e.size_bytes::int AS bytes, e.md5
           FROM envelopes e JOIN envelope_transactions et ON et.envelope_id = e.id JOIN uploads u ON u.envelope_id = e.id
          WHERE et.workbasket_id = ? ORDER BY e.id`,
        [workbasketId],
      );
      return { seconds: r.seconds, readyAt: moved.statusChangedAt, envelopes };
    }
    if (worker.child.exitCode !== null) throw new Error(`the worker exited: ${worker.errors.slice(-30).join('\n')}`);
    if (Date.now() > deadline) throw new Error(`workbasket ${workbasketId} not notified within ${timeoutMs / 1000} s`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * The run's timeline from job_attempts, consecutive spans that add up to the
 * wall time: until the export starts, the export, until the first upload
 * starts, until the last upload ends (uploads of several envelopes overlap,
 * and so do their notifications), until the last notification ends.
 */
async function jobSpans(db: Knex, readyAt: Date): Promise<Record<string, number>> {
  const { rows } = await db.raw(
    `SELECT j.kind, min(a.started_at) AS first_start, max(a.finished_at) AS last_end
       FROM job_attempts a JOIN jobs j ON j.id = a.job_id
      WHERE j.created_at >= ? AND j.kind IN ('upload-workbaskets', 'upload-envelope', 'notify-hmrc')
      GROUP BY j.kind`,
    [readyAt],
  );
  const by = new Map<string, { first_start: Date; last_end: Date }>(rows.map((r: { kind: string }) => [r.kind, r]));
  const ms = (a?: Date, b?: Date) => (a && b ? b.getTime() - a.getTime() : NaN);
  const ex = by.get('upload-workbaskets');
  const up = by.get('upload-envelope');
  const no = by.get('notify-hmrc');
  return {
    'wait export': ms(readyAt, ex?.first_start),
    export: ms(ex?.first_start, ex?.last_end),
    'wait upload': ms(ex?.last_end, up?.first_start),
    upload: ms(up?.first_start, up?.last_end),
    'notify after last upload': ms(up?.last_end, no?.last_end),
  };
}

function sumPhases(lines: TimingLine[], kind: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const l of lines.filter((t) => t.timing === kind)) for (const [k, v] of Object.entries(l.ms)) out[k] = (out[k] ?? 0) + v;
  return out;
}

function xmllint(files: string[]): number | null {
  const started = performance.now();
  const r = spawnSync('xmllint', ['--noout', '--schema', HERALD_ENVELOPE_XSD, ...files], { encoding: 'utf8' });
  if (r.error && (r.error as NodeJS.ErrnoException).code === 'ENOENT') return null;
  if (r.status !== 0) throw new Error(`xmllint rejected an envelope Herald stored: ${r.stderr.slice(0, 2000)}`);
  return (performance.now() - started) / 1000;
}

// ---- the run -----------------------------------------------------------------

interface SizeResult {
  megabytes: number;
  seconds: number;
  xmllintSeconds: number | null;
  ratio: number | null;
  peakRssMb: number;
  /** The warm worker's RSS before the run (file-backed + anonymous), and its peak until then. */
  idleRssMb: { now: number; peak: number; file: number; anon: number };
  /** Largest anonymous RSS during the run (sampled every 20 ms), and file-backed RSS at its end. */
  peakAnonMb: number;
  fileMbAfter: number;
  envelopes: number;
  largestEnvelopeMb: number;
  mbPerSecond: number;
  transactions: number;
  steps: Record<string, number>;
  phases: Record<string, Record<string, number>>;
  load: LoadReport;
}

const name = `herald_bench_export_${process.pid}`;
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'herald-bench-export-'));
const overall = loadGuard();
// The worker inherits this environment: its validator is the one this resolves to.
const validator = resolveXsdEngine(loadConfig(process.env).EXPORTER_XSD_VALIDATOR);
process.stdout.write(`bench:export, validator ${validator}, worker node flags "${process.env.BENCH_WORKER_NODE_ARGS ?? WORKER_NODE_OPTIONS}", ${formatLoad(overall.report())} at start\n`);
await admin(`CREATE DATABASE ${name}`);
const db = knexFactory({ client: 'pg', connection: dbUrl(name), pool: { min: 0, max: 4 } });
let sandboxes: StartedSandboxes | undefined;
let worker: RunningWorker | undefined;
const results: SizeResult[] = [];
/** Each export and each xmllint run: what targets are judged on. */
const windows = measuredWindows();
try {
  await migrateLatest(db);
  sandboxes = await startSandboxes({ dataDir: work, only: ['s3', 'hmrc'] });
  const env = {
    ...sandboxes.env,
    DATABASE_URL: dbUrl(name),
    REDIS_URL,
    REDIS_PREFIX: `herald-bench-export-${process.pid}`,
    HERALD_DATA_DIR: path.join(work, 'herald'),
    LOG_LEVEL: 'info',
    EXPORTER_MAX_ENVELOPE_SIZE: String(MAX_ENVELOPE_BYTES),
  };
  const storage = createS3Storage(s3OptionsFromConfig(loadConfig(env)));
  for (const size of opts.sizes) {
    process.stderr.write(`${size} MB: writing the workbasket...\n`);
    const big = await writeWorkbasket(db, `bench ${size} MB`, size * MB);
    const warm = await writeWorkbasket(db, `warm-up for ${size} MB`, 1);
    await db.raw('VACUUM ANALYZE');
    worker = startWorker(env);
    await worker.started;
    // A warm worker, as in production: validation thread started, schema
    // parsed, S3 client and HMRC token ready.
    await exportAndWait(db, warm.id, worker, 120_000);
    worker.timings.length = 0;
    const idle = rssMb(worker.child.pid!);
    // Each measured window (this export, then xmllint) starts on a settled
    // machine: the run's own worker, Postgres and S3 stand-in would otherwise
    // carry the 1-minute load from one size into the next.
    process.stderr.write(`${size} MB: exporting...\n`);
    const anonPeak = sampleAnonPeak(worker.child.pid!);
    const { value: run, load: loadReport } = await windows.run(() => exportAndWait(db, big.id, worker!, 30 * 60_000));
    const after = rssMb(worker.child.pid!);
    const rss = after.peak;
    const anonPeakMb = anonPeak();
    const timings = [...worker.timings];
    await stopWorker(worker);
    worker = undefined;

    const files: string[] = [];
    for (const e of run.envelopes) {
      const file = path.join(work, `DIT${e.envelopeId}.xml`);
      fs.writeFileSync(file, await storage.getObjectBuffer(e.key));
      files.push(file);
    }
    const { value: lint } = await windows.run(() => xmllint(files));
    for (const f of files) fs.rmSync(f);
    const bytes = run.envelopes.reduce((n, e) => n + e.bytes, 0);
    results.push({
      megabytes: +(bytes / MB).toFixed(1),
      seconds: +run.seconds.toFixed(2),
      xmllintSeconds: lint === null ? null : +lint.toFixed(2),
      ratio: lint === null ? null : +(run.seconds / lint).toFixed(2),
      peakRssMb: Math.round(rss),
      idleRssMb: { now: Math.round(idle.now), peak: Math.round(idle.peak), file: Math.round(idle.file), anon: Math.round(idle.anon) },
      peakAnonMb: Math.round(anonPeakMb),
      fileMbAfter: Math.round(after.file),
      envelopes: run.envelopes.length,
      largestEnvelopeMb: +(Math.max(...run.envelopes.map((e) => e.bytes)) / MB).toFixed(1),
      mbPerSecond: +(bytes / MB / run.seconds).toFixed(1),
      transactions: big.transactions,
      steps: await jobSpans(db, run.readyAt),
      phases: {
        'upload-workbaskets': sumPhases(timings, 'upload-workbaskets'),
        'upload-envelope': sumPhases(timings, 'upload-envelope'),
        'notify-hmrc': sumPhases(timings, 'notify-hmrc'),
      },
      load: loadReport,
    });
    printSize(results[results.length - 1]!);
  }
  storage.close();
} finally {
  if (worker) await stopWorker(worker);
  await sandboxes?.close();
  await db.destroy();
  if (opts.keep) process.stderr.write(`kept database ${name} and ${work}\n`);
  else {
    await admin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    fs.rmSync(work, { recursive: true, force: true });
  }
}

function printSize(r: SizeResult): void {
  const f2 = (n: number | null) => (n === null || Number.isNaN(n) ? 'n/a' : n.toFixed(2));
  const line = (o: Record<string, number>) => Object.entries(o).map(([k, v]) => `${k} ${Math.round(v)}`).join(', ');
  process.stdout.write(
    [
      `${r.megabytes} MB (${r.envelopes} envelope(s), ${r.transactions} transactions): ${f2(r.seconds)} s end to end, ${r.mbPerSecond} MB/s; ` +
        `xmllint ${f2(r.xmllintSeconds)} s (ratio ${f2(r.ratio)}); worker peak RSS ${r.peakRssMb} MB (${f2(r.peakRssMb / r.largestEnvelopeMb)}x the largest envelope; ${r.idleRssMb.now} MB warm and idle, peak ${r.idleRssMb.peak} MB before the run)`,
      `  worker memory MB:      idle ${r.idleRssMb.now} = file-backed ${r.idleRssMb.file} (node binary, libraries) + anonymous ${r.idleRssMb.anon} (V8 heap, buffers, malloc); ` +
        `during the run anonymous up to ${r.peakAnonMb} (+${r.peakAnonMb - r.idleRssMb.anon}), file-backed ${r.fileMbAfter} at the end`,
      `  steps ms:              ${line(r.steps)}`,
      `  upload-workbaskets ms: ${line(r.phases['upload-workbaskets']!)}`,
      `  upload-envelope ms:    ${line(r.phases['upload-envelope']!)} (summed over envelopes)`,
      `  notify-hmrc ms:        ${line(r.phases['notify-hmrc']!)} (summed over envelopes)`,
      `  ${formatLoad(r.load)}`,
    ].join('\n') + '\n',
  );
}

// ---- targets -----------------------------------------------------------------

const final = overall.stop();
const targets: Record<string, Target> = {};
const at40 = results.find((r) => Math.abs(r.megabytes - 40) < 2);
if (at40?.ratio != null) targets['40 MB end to end <= 2.0x xmllint'] = { met: at40.ratio <= 2.0, value: String(at40.ratio) };
const sorted = [...results].sort((a, b) => a.megabytes - b.megabytes);
for (let i = 1; i < sorted.length; i++) {
  const a = sorted[i - 1]!;
  const b = sorted[i]!;
  // Time per data ratio scaled to "2x the data": (tb/ta) / (mb/ma) * 2 <= 2.2.
  const growth = (b.seconds / a.seconds) * (a.megabytes / b.megabytes);
  targets[`${a.megabytes} -> ${b.megabytes} MB linear (time ratio / data ratio <= 1.1)`] = { met: growth <= 1.1, value: growth.toFixed(2) };
}
const largest = Math.max(...results.map((r) => r.largestEnvelopeMb));
const peak = Math.max(...results.map((r) => r.peakRssMb));
targets['worker peak RSS <= 3x the largest envelope'] = { met: peak <= 3 * largest, value: `${peak} MB, ${(peak / largest).toFixed(2)}x` };
const judgedLoad = windows.judgedLoad(final, 'each export and each xmllint run');
finish(judgedLoad, {
  validator,
  sizes: results.map((r) => ({ megabytes: r.megabytes, seconds: r.seconds, xmllintSeconds: r.xmllintSeconds, ratio: r.ratio, peakRssMb: r.peakRssMb, idleRssMb: r.idleRssMb.now, peakAnonMb: r.peakAnonMb, envelopes: r.envelopes, mbPerSecond: r.mbPerSecond, load1m: +r.load.peak1m.toFixed(2) })),
}, targets);
