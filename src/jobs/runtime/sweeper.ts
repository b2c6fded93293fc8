import type { Knex } from 'knex';
import type { Logger } from '../../log.js';
import { runPermanentFailureHook } from './execute.js';
import { listDueJobs, resetJobsOfLostWorkers, resetStuckJobs, tryLockReaper, tryLockSweeper, type KindLimits } from '../store/sweep.js';
import type { JobDefinition, JobRow, PermanentFailureHook } from '../contract/types.js';
import { DEFAULT_WORKER_LOST_AFTER_MS } from './registry.js';

// The safety net that makes Redis disposable. Every worker runs one; a
// transaction-scoped advisory lock lets one at a time do the resets.
//   0. Workers that stopped heartbeating (job_workers) are deleted and the
//      rows they held go back to pending at once (worker_lost, attempt given
//      back, stall_count + 1). Also run after every worker heartbeat
//      (registry.ts), so a dead worker's jobs wait seconds, not 3x timeouts.
//   1. Rows stuck in processing (no heartbeat for 3x the kind's timeout: the
//      worker died or hung) go back to pending with stall_count + 1 and their
//      attempt given back; past the kind's maxStalls, to failed_permanent.
//   2. Every due row (pending/failed, scheduled_at <= now) is rung again. A
//      ring of a row whose bell is still waiting or running is a no-op in
//      bee-queue, so only rows that lost their bell (Redis flushed or
//      restarted, a ring that never happened) get a new one, and only those
//      are counted. Re-rings run after the reset commits (a bell answered
//      during the sweep must not wait on the sweep's row locks), and only by
//      the sweeper that won the lock; a concurrent duplicate would be harmless.

export const STUCK_TIMEOUT_FACTOR = 3;
/** Stalls tolerated when a definition does not say (JobDefinition.maxStalls). */
export const DEFAULT_MAX_STALLS = 5;
/** Rows of kinds this worker does not know count as stuck after this long (30 min). */
export const UNKNOWN_KIND_STUCK_AFTER_MS = 30 * 60 * 1000;
const RING_PAGE = 1000;
const MAX_ERROR_BACKOFF_MS = 5 * 60 * 1000;

export interface SweepCounts {
  /** false: another sweeper held the lock; nothing was done. */
  locked: boolean;
  /** rows of dead workers put back to pending (or failed_permanent, out of stalls) */
  workerLost: number;
  /** stuck rows put back to pending */
  reset: number;
  /** stuck rows that ran out of stalls */
  failedPermanent: number;
  /** due rows that had no bell and got one */
  rerung: number;
  /** due rows seen */
  due: number;
}

export interface SweeperOptions {
  db: Knex;
  definitions: readonly JobDefinition[];
  /** Rings ids, resolving how many bells were new; absent = no re-ringing (inline runner). */
  ring?: ((ids: number[]) => Promise<number>) | undefined;
  /** Kinds never re-rung (batched kinds: their worker's loop scans for due rows). */
  skipRingKinds?: readonly string[];
  log: Logger;
  intervalMs: number;
  /** A worker silent this long is dead (JOBS_WORKER_LOST_AFTER_MS). (Default: 10 s.) */
  workerLostAfterMs?: number | undefined;
  now?: (() => Date) | undefined;
  onPermanentFailure?: PermanentFailureHook | undefined;
}

export interface Sweeper {
  runOnce(opts?: { now?: Date }): Promise<SweepCounts>;
  /** Step 0 alone (after each worker heartbeat); null when another worker was doing it. */
  reapLostWorkers(opts?: { now?: Date }): Promise<JobRow[] | null>;
  /** Sweep now and then every intervalMs until stop(). */
  start(): void;
  /** Sweep as soon as possible (after a LISTEN reconnect). */
  trigger(): void;
  stop(): Promise<void>;
}

export function kindLimits(definitions: readonly JobDefinition[]): KindLimits[] {
  return definitions.map((d) => ({
    kind: d.kind,
    stuckAfterMs: STUCK_TIMEOUT_FACTOR * d.timeoutMs,
    maxStalls: d.maxStalls ?? DEFAULT_MAX_STALLS,
  }));
}

export function createSweeper(opts: SweeperOptions): Sweeper {
  const limits = kindLimits(opts.definitions);
  const fallback = { stuckAfterMs: UNKNOWN_KIND_STUCK_AFTER_MS, maxStalls: DEFAULT_MAX_STALLS };
  let timer: NodeJS.Timeout | undefined;
  let current: Promise<unknown> | undefined;
  let stopped = true;
  let failures = 0;

  async function hooks(rows: readonly JobRow[], trx: Knex.Transaction): Promise<void> {
    const hook = opts.onPermanentFailure;
    if (hook) for (const row of rows) if (row.status === 'failed_permanent') await runPermanentFailureHook(hook, row, trx, opts.log);
  }

  async function reapIn(trx: Knex.Transaction, at: Date | undefined): Promise<JobRow[]> {
    const { workers, jobs } = await resetJobsOfLostWorkers(trx, limits, fallback, opts.workerLostAfterMs ?? DEFAULT_WORKER_LOST_AFTER_MS, at);
    await hooks(jobs, trx);
    if (workers.length || jobs.length) {
      opts.log.warn(
        { workers, jobs: jobs.map((j) => j.id) },
        `sweeper: ${workers.length} worker(s) stopped heartbeating (${workers.map((w) => `${w.id}: pid ${w.pid} on ${w.host}`).join(', ') || 'already gone'}); ` +
          `${jobs.length} of their jobs back to pending`,
      );
    }
    return jobs;
  }

  async function reapLostWorkers(run: { now?: Date } = {}): Promise<JobRow[] | null> {
    const at = run.now ?? opts.now?.();
    return opts.db.transaction(async (trx) => ((await tryLockReaper(trx)) ? reapIn(trx, at) : null));
  }

  async function runOnce(run: { now?: Date } = {}): Promise<SweepCounts> {
    const at = run.now ?? opts.now?.();
    const { locked, lost, moved } = await opts.db.transaction(async (trx) => {
      if (!(await tryLockSweeper(trx))) return { locked: false, lost: [], moved: [] };
      const lost = (await tryLockReaper(trx)) ? await reapIn(trx, at) : [];
      const rows = await resetStuckJobs(trx, limits, fallback, at);
      await hooks(rows, trx);
      return { locked: true, lost, moved: rows };
    });
    const counts: SweepCounts = {
      locked,
      workerLost: lost.length,
      reset: moved.filter((r) => r.status === 'pending').length,
      failedPermanent: moved.filter((r) => r.status === 'failed_permanent').length,
      rerung: 0,
      due: 0,
    };
    if (!locked) return counts;
    if (opts.ring) {
      let after: { scheduledAt: Date; id: number } | null = null;
      for (;;) {
        const page = await listDueJobs(opts.db, { after, limit: RING_PAGE, at, skipKinds: opts.skipRingKinds });
        if (page.length === 0) break;
        counts.due += page.length;
        counts.rerung += await opts.ring(page.map((r) => Number(r.id)));
        if (page.length < RING_PAGE) break;
        const last = page[page.length - 1]!;
        after = { scheduledAt: new Date(last.scheduled_at), id: Number(last.id) };
      }
    }
    if (counts.reset || counts.failedPermanent || counts.rerung) {
      const stalled = moved.map((r) => r.id);
      opts.log.info({ ...counts, stalled }, `sweeper: reset ${counts.reset} stuck, failed ${counts.failedPermanent} out of stalls, re-rang ${counts.rerung} of ${counts.due} due`);
    }
    return counts;
  }

  function schedule(delayMs: number): void {
    if (stopped) return;
    clearTimeout(timer);
    timer = setTimeout(tick, delayMs);
  }

  function tick(): void {
    if (stopped || current) return;
    current = runOnce()
      .then(
        () => {
          failures = 0;
          schedule(opts.intervalMs);
        },
        (err: unknown) => {
          failures++;
          const wait = Math.min(opts.intervalMs * 2 ** failures, MAX_ERROR_BACKOFF_MS);
          opts.log.error({ err, retryInMs: wait }, 'sweeper run failed; backing off');
          schedule(wait);
        },
      )
      .finally(() => (current = undefined));
  }

  return {
    runOnce,
    reapLostWorkers,
    start() {
      stopped = false;
      schedule(0);
    },
    trigger() {
      schedule(0);
    },
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await current;
    },
  };
}
