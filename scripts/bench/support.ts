import os from 'node:os';
import pg from 'pg';

// What every benchmark script shares: where the scratch databases live,
// numeric --options, and the admin connection that creates and drops them.

export const ADMIN_URL = process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
export const REDIS_URL = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';

/**
 * The worker's node flags as deployed: deploy/systemd/herald-worker@.service
 * and deploy/compose.yaml set this NODE_OPTIONS (test/deploy/kit.test.ts
 * keeps all three equal), so bench:export measures the worker as it runs.
 */
export const WORKER_NODE_OPTIONS = '--max-semi-space-size=8';

/**
 * The API server's node flags as deployed (herald-serve.service, the compose
 * serve service; the same kit test keeps them equal): bench:submit measures
 * serve with them. Without a cap V8 grew the young generation past 100 MB
 * under the submit load, and each scavenge of it paused 10-14 ms (decision 0020).
 */
export const SERVER_NODE_OPTIONS = '--max-semi-space-size=16';

/** `--name N` from the command line (a positive number; whole unless fractions are allowed), or the default. */
export function arg(name: string, dflt: number, opts: { fractions?: boolean } = {}): number {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return dflt;
  const n = Number(process.argv[i + 1]);
  const ok = opts.fractions ? Number.isFinite(n) : Number.isInteger(n);
  if (!ok || n <= 0) throw new Error(`--${name} must be a positive ${opts.fractions ? '' : 'whole '}number`);
  return n;
}

/** `--name a,b,c` from the command line as numbers (each checked by `ok`, named in `what`), or the default. */
export function argList(name: string, dflt: number[], ok: (n: number) => boolean, what: string): number[] {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return dflt;
  const list = (process.argv[i + 1] ?? '').split(',').map(Number);
  if (list.some((n) => !ok(n))) throw new Error(`--${name} must be ${what}, comma-separated`);
  return list;
}

/** The q-quantile (0..1) of ascending values: the value at index floor(q * n), the last for q = 1. */
export function quantile(sorted: ArrayLike<number>, q: number): number {
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]! : NaN;
}

/** The GenerateInvoiceRequest body the invoice benchmarks send: two lines, one with a discount. */
export function benchInvoiceBody(supplierId: number, clientId: number) {
  return {
    supplierId,
    clientId,
    items: [
      { description: 'Line one', quantity: '2', unitPrice: '10.25' },
      { description: 'Line two', quantity: '1.5', unitPrice: '99.99', discount: '5.00' },
    ],
  };
}

/** The URL of database `name` on the admin server. */
export function dbUrl(name: string): string {
  const u = new URL(ADMIN_URL);
  u.pathname = `/${name}`;
  return u.toString();
}

/** One statement on the admin connection (CREATE / DROP DATABASE). */
export async function admin(sql: string): Promise<void> {
  const c = new pg.Client({ connectionString: ADMIN_URL });
  await c.connect();
  try {
    await c.query(sql);
  } finally {
    await c.end();
  }
}

/** Wall time and peak RSS (sampled every 20 ms, after a GC when --expose-gc allows) while `fn` runs. */
export async function measure<T>(fn: () => Promise<T>): Promise<{ value: T; seconds: number; rssBefore: number; rssPeak: number }> {
  global.gc?.();
  const rss = () => process.memoryUsage.rss();
  const rssBefore = rss();
  let rssPeak = rssBefore;
  const timer = setInterval(() => (rssPeak = Math.max(rssPeak, rss())), 20);
  const started = process.hrtime.bigint();
  try {
    const value = await fn();
    rssPeak = Math.max(rssPeak, rss());
    return { value, seconds: Number(process.hrtime.bigint() - started) / 1e9, rssBefore, rssPeak };
  } finally {
    clearInterval(timer);
  }
}

// ---- load average -----------------------------------------------------------
// The machine is shared: a figure taken while other work held the cores
// says little about Herald. Every benchmark prints the load average before
// and after, samples the 1-minute figure during the run, and refuses to call
// a target met when it rose above the core count (it says "not judged").

export interface LoadReport {
  /** os.loadavg() when the watch started and stopped: 1, 5 and 15 minutes. */
  before: number[];
  after: number[];
  /** Highest 1-minute load average seen during the run. */
  peak1m: number;
  cores: number;
  /** peak1m <= cores: targets may be judged. */
  quiet: boolean;
}

export interface LoadWatch {
  /** The report so far (the watch keeps running). */
  report(): LoadReport;
  /** Stops sampling and returns the final report. */
  stop(): LoadReport;
}

/** Starts sampling the 1-minute load average every `intervalMs`. */
export function loadGuard(intervalMs = 1000): LoadWatch {
  const cores = os.availableParallelism();
  const before = os.loadavg();
  let peak = before[0]!;
  const timer = setInterval(() => (peak = Math.max(peak, os.loadavg()[0]!)), intervalMs);
  timer.unref();
  const report = (): LoadReport => {
    const after = os.loadavg();
    peak = Math.max(peak, after[0]!);
    return { before, after, peak1m: peak, cores, quiet: peak <= cores };
  };
  return {
    report,
    stop() {
      clearInterval(timer);
      return report();
    },
  };
}

/**
 * Waits (up to timeoutMs) until the 1-minute load average is at most
 * maxLoad.
 */
async function settleLoad(maxLoad: number, timeoutMs = 120_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (os.loadavg()[0]! > maxLoad && Date.now() < until) await new Promise((r) => setTimeout(r, 1000));
}

/** The load of several windows watched one by one: first before, last after, highest peak. */
function mergeLoad(reports: LoadReport[]): LoadReport {
  const peak1m = Math.max(...reports.map((r) => r.peak1m));
  const cores = reports[0]!.cores;
  return { before: reports[0]!.before, after: reports.at(-1)!.after, peak1m, cores, quiet: peak1m <= cores };
}

export interface MeasuredWindows {
  /** Runs fn once the 1-minute load is at most half the cores (at most 2 min), watching its load. */
  run<T>(fn: () => Promise<T> | T): Promise<{ value: T; load: LoadReport }>;
  /** What targets are judged on: the windows' load (saying so, with the whole run's), else `whole`. */
  judgedLoad(whole: LoadReport, what: string): LoadReport;
}

/**
 * A benchmark whose own processes fill the cores (a server, its load
 * generator and Postgres; a worker, Postgres and the S3 stand-in) lifts the
 * 1-minute average past the core count within a minute, and carries it from
 * one phase into the next. Its measured windows therefore each start on a
 * settled machine and are judged on their own load.
 */
export function measuredWindows(): MeasuredWindows {
  const reports: LoadReport[] = [];
  const half = os.availableParallelism() / 2;
  return {
    async run(fn) {
      await settleLoad(half);
      const watch = loadGuard();
      const value = await fn();
      const load = watch.stop();
      reports.push(load);
      return { value, load };
    },
    judgedLoad(whole, what) {
      if (reports.length === 0) return whole;
      process.stdout.write(`whole run: ${formatLoad(whole)}; targets are judged on ${what}, each started once the 1-minute load was <= ${half}:\n`);
      return mergeLoad(reports);
    },
  };
}

/** "load 1.02 0.95 0.80 -> 1.40 1.01 0.83 (peak 1.52, 2 cores)". */
export function formatLoad(r: LoadReport): string {
  const f = (l: number[]) => l.map((n) => n.toFixed(2)).join(' ');
  return `load ${f(r.before)} -> ${f(r.after)} (1-min peak ${r.peak1m.toFixed(2)}, ${r.cores} cores)`;
}

export type Verdict = 'met' | 'missed' | 'not judged';

/** A target's verdict: never "met" on a busy machine (a miss is still a miss). */
export function judge(met: boolean, load: LoadReport): Verdict {
  if (!met) return 'missed';
  return load.quiet ? 'met' : 'not judged';
}

export interface Target {
  /** Whether the figure reached the target (judged against the load below). */
  met: boolean;
  /** The figure, as printed: "0.21 s", "43%". */
  value: string;
}

/**
 * The closing lines every benchmark prints: one line per target with its
 * verdict, the load average of the run, then ONE line of JSON holding the
 * figures, the verdicts and the load (the last line of output: scripts can
 * `tail -n 1` it). With jsonOnly (a script's --json), only that line.
 */
export function finish(load: LoadReport, figures: Record<string, unknown>, targets: Record<string, Target> = {}, opts: { jsonOnly?: boolean } = {}): void {
  const verdicts: Record<string, string> = {};
  for (const [name, t] of Object.entries(targets)) {
    verdicts[name] = judge(t.met, load);
    if (!opts.jsonOnly) process.stdout.write(`target ${name}: ${verdicts[name]} (${t.value})\n`);
  }
  if (!opts.jsonOnly) process.stdout.write(`${formatLoad(load)}${load.quiet ? '' : ': the machine was busier than its cores, so no target is called met'}\n`);
  const round = (l: number[]) => l.map((n) => +n.toFixed(2));
  process.stdout.write(
    `${JSON.stringify({ ...figures, targets: verdicts, load: { before: round(load.before), after: round(load.after), peak1m: +load.peak1m.toFixed(2), cores: load.cores, quiet: load.quiet } })}\n`,
  );
}
