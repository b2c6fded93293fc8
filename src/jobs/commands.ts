import type { Command } from 'commander';
import { wholeNumber } from '../lib/cli/args.js';
import { CliError, describeFailure, printJson, type WithWiredApp } from '../lib/cli/context.js';
import type { JobsRuntime } from './runtime/jobs-runtime.js';
import type { RunnerStats } from './runtime/runner.js';

// `herald worker`: runs every job kind it is given until told to stop.
// Signals: the first SIGTERM/SIGINT stops claiming and lets running jobs
// finish (up to --grace); a second one aborts them (their rows go back to
// pending without using an attempt). kill -9 loses nothing either: the
// worker stops heartbeating in job_workers, and any other worker resets its
// rows within JOBS_WORKER_LOST_AFTER_MS (decision 0015).

const MAX_CONCURRENCY = 500; // as JOBS_CONCURRENCY in src/config.ts

/** A worker's pool: each running job holds a connection for its claim/record; the sweeper and heartbeats need a few more. */
export function workerPoolMax(concurrency: number): number {
  return concurrency + 4;
}

interface WorkerOptions {
  concurrency?: number;
  grace: number;
  json?: boolean;
}

/** The definitions and hooks come from the composition root's jobs runtime: src/jobs knows no capability. */
export function registerWorkerCommand(program: Command, withJobs: WithWiredApp<{ jobs: JobsRuntime }>): void {
  program
    .command('worker')
    .description(
      'Run queued jobs of every registered kind until stopped. Uses Redis (REDIS_URL) to share work with other workers, ' +
        'else runs them in this process. First SIGTERM/SIGINT: finish running jobs; second: abort them.',
    )
    .option('--concurrency <n>', `jobs run at once (default: JOBS_CONCURRENCY, 10)`, wholeNumber('--concurrency', { max: MAX_CONCURRENCY }))
    .option('--grace <ms>', 'after the first signal, how long running jobs may take before they are aborted', wholeNumber('--grace', { min: 0, max: 3_600_000 }), 30_000)
    .option('--json', 'print the final counts as JSON on stdout when stopped')
    .action(async (opts: WorkerOptions) => {
      const stats = await runWorker(withJobs, opts);
      if (opts.json) printJson({ stopped: true, ...stats });
      else process.stdout.write(`worker stopped: ${Object.entries(stats).map(([k, v]) => `${k} ${v}`).join(', ')}\n`);
    });
}

async function runWorker(withJobs: WithWiredApp<{ jobs: JobsRuntime }>, opts: WorkerOptions): Promise<RunnerStats> {
  return withJobs(
    async ({ db, config, log, jobs }) => {
      // Loaded here: `herald --help` must not pay for the database modules.
      const { requireCurrentSchema } = await import('../db/migrate.js');
      await requireCurrentSchema(db);
      const runner = jobs.createRunner(db, { concurrency: opts.concurrency ?? config.JOBS_CONCURRENCY });
      try {
        await runner.start();
      } catch (err) {
        await runner.stop({ graceMs: 0 });
        throw new CliError(`worker could not start: ${describeFailure(err)}`);
      }
      await new Promise<void>((resolve) => {
        let signals = 0;
        const onSignal = (signal: NodeJS.Signals) => {
          signals++;
          if (signals === 1) {
            log.info({ signal, graceMs: opts.grace }, `${signal}: finishing running jobs (send it again to abort them)`);
            runner.stop({ graceMs: opts.grace }).then(done, done);
          } else {
            log.warn({ signal }, `${signal} again: aborting running jobs`);
            void runner.stop();
          }
        };
        const done = () => {
          process.off('SIGTERM', onSignal);
          process.off('SIGINT', onSignal);
          resolve();
        };
        process.on('SIGTERM', onSignal);
        process.on('SIGINT', onSignal);
      });
      return runner.stats();
    },
    { poolMax: (config) => workerPoolMax(opts.concurrency ?? config.JOBS_CONCURRENCY) },
  );
}
