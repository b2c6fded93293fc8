import { InvalidArgumentError, type Command } from 'commander';
import { BIGINT_ID_MAX } from '../lib/column-limits.js';
import { wholeNumber } from '../lib/cli/args.js';
import { CliError, printJson, withApp, type WithWiredApp } from '../lib/cli/context.js';
import { progressBar } from '../lib/cli/progress.js';
import type { JobsRuntime } from '../jobs/runtime/jobs-runtime.js';
import { clearJob, notifyDueJobs, searchJobs } from '../jobs/store/admin.js';
import type { JobRow, JobStatus } from '../jobs/contract/types.js';
import { DEFAULT_UNSTICK_AFTER_MS, formatAge, liveWorkers, queueStatus, retryTarget, unstick, type RetryTarget } from './operations.js';

// `herald queue ...`: the /admin page's operations from a shell.

const STATUSES: readonly JobStatus[] = ['pending', 'processing', 'failed', 'failed_permanent', 'completed'];

function status(value: string): JobStatus {
  if (!(STATUSES as readonly string[]).includes(value)) throw new InvalidArgumentError(`--status: must be one of ${STATUSES.join(', ')}, got "${value}"`);
  return value as JobStatus;
}

function nonEmpty(flag: string) {
  return (value: string): string => {
    if (!value.trim()) throw new InvalidArgumentError(`${flag}: must not be empty`);
    return value.trim();
  };
}

function seconds(value: string): number {
  if (!/^[0-9]{1,7}$/.test(value)) throw new InvalidArgumentError(`--older-than: must be a whole number of seconds, got "${value}"`);
  return Number(value);
}

function jobLine(j: JobRow): string {
  const subject = j.subject_type ? `${j.subject_type}:${j.subject_id}` : '-';
  const err = j.last_error ? `  ${j.last_error.replace(/\s+/g, ' ').slice(0, 120)}` : '';
  return `${j.id}\t${j.kind}\t${j.status}\t${subject}\tattempts ${j.attempts}\t${j.scheduled_at.toISOString()}${err}`;
}

function briefJob(j: JobRow) {
  return {
    id: Number(j.id), kind: j.kind, status: j.status, subjectType: j.subject_type, subjectId: j.subject_id, attempts: j.attempts,
    scheduledAt: j.scheduled_at, createdAt: j.created_at, lastError: j.last_error, errorClass: j.error_class,
  };
}

export function registerQueueCommands(program: Command, withJobs: WithWiredApp<{ jobs: JobsRuntime }>): void {
  const queue = program.command('queue').description('Look at and act on the job queue (the same operations as /admin)');

  queue
    .command('status')
    .description(
      'Counters per job kind and in total: pending, processing, failed, permanently failed, completed today, oldest due pending job; ' +
        'then the live workers (pid, host, last heartbeat, jobs held)',
    )
    .option('--json', 'print as JSON')
    .action(async (opts: { json?: boolean }) => {
      const { s, workers } = await withApp(async ({ db, config }) => ({ s: await queueStatus(db), workers: await liveWorkers(db, config.JOBS_WORKER_LOST_AFTER_MS) }));
      if (opts.json) {
        return printJson({
          ...s,
          workers: workers.map((w) => ({
            id: w.id, pid: w.pid, host: w.host, runner: w.runner, startedAt: w.started_at, heartbeatAt: w.heartbeat_at, heartbeatAgeMs: w.heartbeat_age_ms, running: w.running,
          })),
        });
      }
      const head = ['kind', 'pending', 'processing', 'failed', 'failed_perm', 'done_today', 'oldest_pending'];
      const lines = [...s.kinds.map((k) => ({ ...k })), { kind: 'TOTAL', ...s.total }].map((k) => [
        k.kind, k.pending, k.processing, k.failed, k.failed_permanent, k.completed_today, formatAge(k.oldest_pending_s),
      ].map(String));
      const widths = head.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
      for (const row of [head, ...lines]) process.stdout.write(`${row.map((c, i) => c.padEnd(widths[i]!)).join('  ')}\n`);
      if (workers.length === 0) process.stdout.write('\nno herald worker is running: start one with `herald worker`\n');
      else process.stdout.write(`\n${workers.length} live worker(s):\n`);
      for (const w of workers) {
        process.stdout.write(
          `worker ${w.id}\t${w.runner}\tpid ${w.pid} on ${w.host}\tup ${formatAge((Date.now() - w.started_at.getTime()) / 1000)}\t` +
            `heartbeat ${(w.heartbeat_age_ms / 1000).toFixed(1)} s ago\tholding ${w.running} job(s)\n`,
        );
      }
    });

  queue
    .command('list')
    .description('List jobs, newest first')
    .option('--status <status>', `only this status (${STATUSES.join(', ')})`, status)
    .option('--kind <kind>', 'only this job kind, e.g. notify-hmrc', nonEmpty('--kind'))
    .option('--subject <id>', 'only jobs about this subject id (upload, invoice request, report, ...)', nonEmpty('--subject'))
    .option('--error <text>', 'only jobs whose last error contains this text (case-insensitive)', nonEmpty('--error'))
    .option('--limit <n>', 'at most this many (default 50, at most 1000)', wholeNumber('--limit', { max: 1000 }), 50)
    .option('--json', 'print as JSON')
    .action(async (opts: { status?: JobStatus; kind?: string; subject?: string; error?: string; limit: number; json?: boolean }) => {
      const { rows, total } = await withApp(({ db }) =>
        searchJobs(db, { status: opts.status, kind: opts.kind, subjectId: opts.subject, errorText: opts.error, limit: Math.min(opts.limit, 1000) }),
      );
      if (opts.json) return printJson({ total, jobs: rows.map(briefJob) });
      for (const j of rows) process.stdout.write(`${jobLine(j)}\n`);
      process.stderr.write(`${rows.length} of ${total} job(s)\n`);
    });

  queue
    .command('retry')
    .description(
      'Make failed / permanently failed jobs pending now, with a fresh attempt budget. ' +
        'Give exactly one of: a job ID, --subject ID, --order-id ID (jobs of invoice request or invoice ID), --all-failed.',
    )
    .argument('[id]', 'the job id', wholeNumber('ID', { max: BIGINT_ID_MAX }))
    .option('--subject <id>', 'every failed job about this subject id', nonEmpty('--subject'))
    .option('--order-id <id>', 'every failed job of this invoice request / invoice (subject types invoice_request, invoice)', nonEmpty('--order-id'))
    .option('--all-failed', 'every permanently failed job')
    .option('--json', 'print the retried jobs as JSON')
    .action(async (id: number | undefined, opts: { subject?: string; orderId?: string; allFailed?: boolean; json?: boolean }) => {
      const given = [id !== undefined, opts.subject !== undefined, opts.orderId !== undefined, Boolean(opts.allFailed)].filter(Boolean).length;
      if (given !== 1) throw new CliError('give exactly one of ID, --subject ID, --order-id ID or --all-failed');
      const target: RetryTarget =
        id !== undefined ? { id } : opts.subject ? { subjectId: opts.subject } : opts.orderId ? { orderId: opts.orderId } : { allFailed: true };
      const rows = await withApp(({ db }) => retryTarget(db, target));
      if (id !== undefined && rows.length === 0) throw new CliError(`ID: job ${id} does not exist or is not failed / failed_permanent`);
      if (opts.json) return printJson({ retried: rows.map(briefJob) });
      process.stdout.write(rows.length ? rows.map((r) => `job ${r.id} (${r.kind}) is pending again`).join('\n') + '\n' : 'no failed jobs matched\n');
    });

  queue
    .command('process')
    .description(
      'Run due jobs now. With REDIS_URL: tell the listening workers to take every due job at once. ' +
        'Without: run them in this process until none is due (as the inline runner does).',
    )
    .option('--json', 'print the result as JSON')
    .action(async (opts: { json?: boolean }) => {
      const out = await withJobs(async ({ db, config, log, jobs }) => {
        if (config.REDIS_URL) return { mode: 'workers' as const, announced: await notifyDueJobs(db) };
        const bar = progressBar(opts.json, 'jobs');
        bar?.start(0, 0);
        try {
          const summary = await jobs.runInline(db, {
            log,
            onRun: (_o, ran) => (bar?.setTotal(ran), bar?.update(ran)),
          });
          return { mode: 'inline' as const, ...summary };
        } finally {
          bar?.stop();
        }
      });
      if (opts.json) return printJson(out);
      if (out.mode === 'workers') process.stdout.write(`told the workers about ${out.announced} due job(s)\n`);
      else {
        const o = Object.entries(out.outcomes).filter(([, n]) => n > 0).map(([k, n]) => `${k} ${n}`).join(', ');
        process.stdout.write(`ran ${out.ran} job(s)${o ? ` (${o})` : ''}; ${out.waiting} waiting for a later time\n`);
      }
    });

  queue
    .command('unstick')
    .description('Put processing jobs with no heartbeat for --older-than seconds back to pending (their attempt is given back)')
    .option('--older-than <seconds>', `only jobs silent this long (default ${DEFAULT_UNSTICK_AFTER_MS / 1000}); a job still running may run twice if this is too short`, seconds)
    .option('--json', 'print the reset jobs as JSON')
    .action(async (opts: { olderThan?: number; json?: boolean }) => {
      const rows = await withApp(({ db }) => unstick(db, opts.olderThan !== undefined ? opts.olderThan * 1000 : undefined));
      if (opts.json) return printJson({ unstuck: rows.map(briefJob) });
      process.stdout.write(rows.length ? rows.map((r) => `job ${r.id} (${r.kind}) is pending again`).join('\n') + '\n' : 'no stuck jobs\n');
    });

  queue
    .command('clear')
    .description('Delete a job that is not running, with its history (the work it stood for will not happen)')
    .argument('<id>', 'the job id', wholeNumber('ID', { max: BIGINT_ID_MAX }))
    .option('--json', 'print the deleted job as JSON')
    .action(async (id: number, opts: { json?: boolean }) => {
      const row = await withApp(({ db }) => clearJob(db, id));
      if (!row) throw new CliError(`ID: job ${id} does not exist or is processing (unstick it first)`);
      if (opts.json) return printJson({ cleared: briefJob(row) });
      process.stdout.write(`job ${id} (${row.kind}, ${row.status}) deleted\n`);
    });
}
