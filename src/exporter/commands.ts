import type { Command } from 'commander';
import type { Knex } from 'knex';
import { CliError, printJson, type AppContext, type WithWiredApp } from '../lib/cli/context.js';
import type { JobsRuntime } from '../jobs/runtime/jobs-runtime.js';
import { wholeNumber } from '../lib/cli/args.js';
import { progressBar } from '../lib/cli/progress.js';
import { getJob } from '../jobs/store/runs.js';
import { retryJobs } from '../jobs/store/admin.js';
import { countUnfinishedJobs } from '../jobs/store/views.js';
import { listLiveWorkers } from '../jobs/store/workers.js';
import type { ExporterServices } from './services.js';
import { buildUploadReport, formatUploadReport, type UploadReport } from './report.js';
import { listUploads } from './store.js';

// `herald upload`: the management command of the upload pipeline (tamato's
// upload_transactions). Without REDIS_URL it runs the whole pipeline in this
// process; with it, it queues the run for the workers and, with --wait,
// follows it to the end. Exit 0 only when every envelope of the run is in S3
// and HMRC has been told (or notifications are switched off).
// `herald notify retry`: notification-only retries; never uploads again.
// Modules that load zod (enqueue, notify) are imported when a command runs.

// A wait longer than this would overflow Node's timers (2^31 - 1 ms) and fire at once.
const MAX_TIMEOUT_S = 2_147_483;

async function dbNow(db: Knex): Promise<Date> {
  const { rows } = await db.raw('SELECT now() AS now');
  return new Date(rows[0].now);
}

/** What the upload commands need from the composition root. */
export interface ExporterWiring {
  jobs: JobsRuntime;
  exporter(): ExporterServices;
}

interface UploadOutcome {
  ok: boolean;
  jobId: number;
  jobStatus: string;
  error: string | null;
  notificationsEnabled: boolean;
  report: UploadReport;
}

async function runUpload(app: AppContext & ExporterWiring, opts: { wait?: boolean; timeout: number; json?: boolean }): Promise<UploadOutcome | { queued: number }> {
  const { db, config, log } = app;
  const since = await dbNow(db);
  const { enqueueJob } = await import('../jobs/store/enqueue.js');
  const job = await enqueueJob(db, 'upload-workbaskets', {}, { subjectType: 'cli', subjectId: 'herald upload' });
  if (config.REDIS_URL && !opts.wait) return { queued: job.id };

  if (!config.REDIS_URL) {
    const services = app.exporter();
    const bar = progressBar(opts.json, 'transactions');
    let started = false;
    services.onExportProgress = (p) => {
      if (!bar) return;
      if (!started) bar.start(p.totalTransactions, 0);
      started = true;
      bar.update(p.transactions);
    };
    try {
      await app.jobs.runInline(db, { until: 'idle', waitForRetriesMs: opts.timeout * 1000, log });
    } finally {
      bar?.stop();
      services.onExportProgress = undefined;
    }
  } else {
    await followRun(db, job.id, since, {
      timeoutMs: opts.timeout * 1000, notifying: config.HMRC_NOTIFICATIONS_ENABLED, lostAfterMs: config.JOBS_WORKER_LOST_AFTER_MS, json: opts.json,
    });
  }
  const row = await getJob(db, job.id);
  const report = await buildUploadReport(db, since);
  const notifiedOk = (e: UploadReport['envelopes'][number]) => e.notified || !config.HMRC_NOTIFICATIONS_ENABLED;
  return {
    ok: row?.status === 'completed' && report.envelopes.every((e) => e.uploaded && notifiedOk(e)),
    jobId: job.id,
    jobStatus: row?.status ?? 'missing',
    error: row?.last_error ?? null,
    notificationsEnabled: config.HMRC_NOTIFICATIONS_ENABLED,
    report,
  };
}

interface Follow {
  timeoutMs: number;
  notifying: boolean;
  /** JOBS_WORKER_LOST_AFTER_MS: a worker whose heartbeat is older is not running. */
  lostAfterMs: number;
  /** Quiet: no progress lines (the notice that no worker runs still goes to stderr). */
  json?: boolean | undefined;
}

const say = (line: string) => process.stderr.write(`${line}\n`);

/**
 * Polls the rows until the run and every upload it made are done, failed for
 * good, or time runs out. Says at once when no worker is alive (job_workers)
 * and keeps waiting: one may be started meanwhile (the README starts the
 * worker after queueing). Progress goes to stderr, a line per change.
 */
async function followRun(db: Knex, jobId: number, since: Date, f: Follow): Promise<void> {
  const deadline = Date.now() + f.timeoutMs;
  let workersSeen: boolean | undefined;
  let last = '';
  for (;;) {
    const workers = await listLiveWorkers(db, { lostAfterMs: f.lostAfterMs, runner: 'worker' });
    if (workers.length === 0 && workersSeen !== false) {
      say(`no herald worker is running: start one with \`herald worker\`; waiting up to ${Math.round((deadline - Date.now()) / 1000)} s...`);
    } else if (workers.length > 0 && workersSeen === false) {
      say(`a herald worker is running now (pid ${workers[0]!.pid} on ${workers[0]!.host})`);
    }
    workersSeen = workers.length > 0;
    const job = await getJob(db, jobId);
    const uploads = await listUploads(db, { since });
    const line = `upload job ${jobId}: ${job?.status ?? 'missing'}; envelopes ${uploads.length}, in S3 ${uploads.filter((u) => u.uploaded_at).length}, ` +
      `notified ${uploads.filter((u) => u.notification_sent).length}`;
    if (!f.json && line !== last) say(line);
    last = line;
    if (job?.status === 'completed' || job?.status === 'failed_permanent') {
      const unfinished = await countUnfinishedJobs(db, { type: 'upload', ids: uploads.map((u) => String(u.id)) });
      const done = uploads.every((u) => u.uploaded_at && (u.notification_sent || !f.notifying));
      if (done || unfinished === 0) return;
    }
    if (Date.now() > deadline) {
      const why = workersSeen ? 'it goes on in the workers' : 'no herald worker is running: start one with `herald worker` (the job stays queued)';
      throw new CliError(`timed out after ${Math.round(f.timeoutMs / 1000)} s waiting for upload job ${jobId}; ${why}`);
    }
    await new Promise((r) => setTimeout(r, 500));
  }
}

export function registerExporterCommands(program: Command, withApp: WithWiredApp<ExporterWiring>): void {
  program
    .command('upload')
    .description(
      'Export every READY_FOR_EXPORT workbasket as TARIC3 envelopes, put them in S3 and notify HMRC. ' +
        'Without REDIS_URL the whole pipeline runs in this process; with it the run is queued for `herald worker` ' +
        '(--wait follows it). Exit 0 only when every envelope is uploaded and notified.',
    )
    .option('--wait', 'with REDIS_URL: wait until the workers finish the run and report it (progress on stderr; says at once if no worker runs)')
    .option('--timeout <seconds>', 'how long to wait for retries / workers before giving up', wholeNumber('--timeout', { max: MAX_TIMEOUT_S }), 120)
    .option('--json', 'print the result as JSON')
    .action(async (opts: { wait?: boolean; timeout: number; json?: boolean }) => {
      const out = await withApp((app) => runUpload(app, opts));
      if ('queued' in out) {
        if (opts.json) printJson(out);
        else process.stdout.write(`upload queued as job ${out.queued}; run \`herald upload --wait\` to follow a run\n`);
        return;
      }
      if (opts.json) printJson(out);
      else {
        process.stdout.write(formatUploadReport(out.report));
        if (!out.notificationsEnabled) process.stdout.write('HMRC notifications are disabled (HMRC_NOTIFICATIONS_ENABLED=false); they wait until it is turned on\n');
        if (out.jobStatus !== 'completed') process.stdout.write(`upload job ${out.jobId} is ${out.jobStatus}${out.error ? `: ${out.error}` : ''}\n`);
      }
      if (!out.ok) process.exitCode = 1;
    });

  const notify = program.command('notify').description('HMRC notifications of uploaded envelopes');
  notify
    .command('retry')
    .description('Send HMRC notifications again, without uploading anything: for one upload (even if already notified), or for every permanently failed notification')
    .option('--upload <id>', 'the upload (uploads.id) to notify again', wholeNumber('--upload'))
    .option('--all-failed', 'every notify-hmrc job that failed permanently')
    .option('--json', 'print the queued jobs as JSON')
    .action(async (opts: { upload?: number; allFailed?: boolean; json?: boolean }) => {
      if (!opts.upload === !opts.allFailed) throw new CliError('give exactly one of --upload ID or --all-failed');
      const jobs = await withApp(async ({ db, config, log, jobs: runtime }) => {
        const queued = await queueNotifications(db, opts);
        // Without workers (no REDIS_URL) nobody else would send them: do it now.
        if (!config.REDIS_URL && queued.length > 0) await runtime.runInline(db, { until: 'idle', waitForRetriesMs: 60_000, log });
        const out = [];
        for (const q of queued) out.push({ ...q, status: (await getJob(db, q.jobId))?.status ?? 'missing' });
        return out;
      });
      if (opts.json) printJson({ queued: jobs });
      else if (jobs.length === 0) process.stdout.write('no permanently failed notifications\n');
      else for (const j of jobs) process.stdout.write(`notification of upload ${j.uploadId}: job ${j.jobId} ${j.status}\n`);
      if (jobs.some((j) => j.status === 'failed_permanent')) process.exitCode = 1;
    });
}

async function queueNotifications(db: Knex, opts: { upload?: number; allFailed?: boolean }): Promise<Array<{ jobId: number; uploadId: number }>> {
  if (opts.allFailed) {
    const rows = await retryJobs(db, { kind: 'notify-hmrc', status: 'failed_permanent' });
    return rows.map((r) => ({ jobId: r.id, uploadId: Number(r.subject_id) }));
  }
  const { queueNotificationResend, ResendRefused } = await import('./notify.js');
  try {
    return [await queueNotificationResend(db, opts.upload!)];
  } catch (err) {
    if (err instanceof ResendRefused) throw new CliError(err.message);
    throw err;
  }
}
