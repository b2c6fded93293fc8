import type { Knex } from 'knex';
import { isSingleConnection } from '../../db/index.js';
import pino from 'pino';
import type { Logger } from '../../log.js';
import type { Random } from '../contract/backoff.js';
import { executeJob, type ExecuteDeps, type ExecuteOutcome } from './execute.js';
import { claimDueJobs, countWaitingJobs, findNextScheduledAt, readDbNow } from '../store/runs.js';
import { createSweeper } from './sweeper.js';
import { checkWorkerTimings, createWorkerRegistry, DEFAULT_WORKER_HEARTBEAT_MS, DEFAULT_WORKER_LOST_AFTER_MS, type WorkerRegistry } from './registry.js';
import type { JobDefinition, PermanentFailureHook } from '../contract/types.js';

// Without Redis (the embedded demo, one-off CLI runs) the same definitions run
// in this process, one job at a time: PGlite has a single connection, so
// there is no LISTEN, no parallel claim and no per-job heartbeat. Jobs that
// handlers enqueue are picked up by the same loop. The run registers as a
// worker (job_workers, runner 'inline') like any other claimer, so a killed
// CLI command's job is reset by a worker within seconds; on one connection
// it heartbeats between jobs instead of on a timer.

export interface InlineOptions {
  /** Only mode: run until no job is due (and none comes due within waitForRetriesMs). */
  until?: 'idle';
  /**
   * When nothing is due but a retry or snooze comes due within this many ms,
   * sleep until it does and carry on. (Default: 0, stop at once.) The demo
   * passes a minute so short-backoff retries still finish.
   */
  waitForRetriesMs?: number;
  /** Injected clock. (Default: the database's now().) */
  now?: () => Date;
  /** Injected sleep (a fake clock advances itself here). (Default: setTimeout.) */
  sleep?: (ms: number) => Promise<void>;
  random?: Random;
  log?: Logger;
  onPermanentFailure?: PermanentFailureHook;
  /** Stop after this many runs, as a guard against a job that re-enqueues itself forever. (Default: 100000.) */
  maxRuns?: number;
  /** Called after each run (progress bars). */
  onRun?: (outcome: ExecuteOutcome, ran: number) => void;
  /** As the runner's (JOBS_WORKER_HEARTBEAT_MS). (Default: 2000 ms.) */
  workerHeartbeatMs?: number;
  /** As the runner's (JOBS_WORKER_LOST_AFTER_MS). (Default: 10 s.) */
  workerLostAfterMs?: number;
}

export interface InlineSummary {
  ran: number;
  outcomes: Record<ExecuteOutcome, number>;
  /** Rows still waiting (not due) when the run stopped. */
  waiting: number;
  nextDueAt: Date | null;
}

const realSleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));


export async function runJobsInline(db: Knex, definitions: readonly JobDefinition[], opts: InlineOptions = {}): Promise<InlineSummary> {
  const log = opts.log ?? pino({ level: 'silent' });
  const sleep = opts.sleep ?? realSleep;
  const waitFor = Math.max(0, opts.waitForRetriesMs ?? 0);
  const maxRuns = opts.maxRuns ?? 100_000;
  const heartbeatMs = opts.workerHeartbeatMs ?? DEFAULT_WORKER_HEARTBEAT_MS;
  const workerLostAfterMs = opts.workerLostAfterMs ?? DEFAULT_WORKER_LOST_AFTER_MS;
  checkWorkerTimings(heartbeatMs, workerLostAfterMs);
  const singleConnection = isSingleConnection(db);
  // A previous inline run that crashed left rows in processing: reset them first (no bells to ring here).
  const sweeper = createSweeper({ db, definitions, log, intervalMs: 0, now: opts.now, onPermanentFailure: opts.onPermanentFailure, workerLostAfterMs });
  await sweeper.runOnce();
  const registry = createWorkerRegistry({
    db, runner: 'inline', heartbeatMs, log, now: opts.now, timer: !singleConnection, lostAfterMs: workerLostAfterMs, onReapNeeded: () => sweeper.reapLostWorkers(),
  });
  await registry.start();
  const deps = {
    db, definitions: new Map(definitions.map((d) => [d.kind as string, d])), log, now: opts.now, random: opts.random,
    onPermanentFailure: opts.onPermanentFailure, heartbeat: false, abortGraceMs: 2000, workerId: () => registry.id(),
  };
  try {
    return await loop(db, deps, registry, { ...opts, sleep, waitFor, maxRuns, log, beatEveryMs: singleConnection ? heartbeatMs : null });
  } finally {
    await registry.stop();
  }
}

async function loop(
  db: Knex,
  deps: ExecuteDeps,
  registry: WorkerRegistry,
  opts: InlineOptions & { sleep: (ms: number) => Promise<void>; waitFor: number; maxRuns: number; log: Logger; beatEveryMs: number | null },
): Promise<InlineSummary> {
  const { sleep, waitFor, maxRuns, log } = opts;
  const outcomes: Record<ExecuteOutcome, number> = { completed: 0, failed: 0, failed_permanent: 0, snoozed: 0, stalled: 0, interrupted: 0, lost: 0 };
  const never = new AbortController().signal;
  let ran = 0;
  let beatAt = Date.now();
  for (;;) {
    if (opts.beatEveryMs !== null && Date.now() - beatAt >= opts.beatEveryMs) {
      await registry.beat();
      beatAt = Date.now();
    }
    if (ran >= maxRuns) {
      log.warn({ ran }, 'inline runner stopped at maxRuns');
      break;
    }
    const [job] = await claimDueJobs(db, { limit: 1, workerId: registry.id() }, opts.now?.());
    if (job) {
      const result = await executeJob(deps, job, never);
      outcomes[result.outcome]++;
      ran++;
      opts.onRun?.(result.outcome, ran);
      continue;
    }
    const next = await findNextScheduledAt(db);
    if (!next) break;
    const current = opts.now?.() ?? (await readDbNow(db));
    const wait = next.getTime() - current.getTime();
    if (wait > waitFor) break;
    // wait <= 0: due but locked by another claimer right now; do not spin.
    await sleep(Math.max(10, wait + 1));
  }
  return { ran, outcomes, waiting: await countWaitingJobs(db), nextDueAt: await findNextScheduledAt(db) };
}
