import { hostname } from 'node:os';
import type { Knex } from 'knex';
import type { Logger } from '../../log.js';
import { deregisterWorker, heartbeatWorker, registerWorker, type WorkerRunner } from '../store/workers.js';
export { DEFAULT_WORKER_HEARTBEAT_MS, DEFAULT_WORKER_LOST_AFTER_MS } from '../store/workers.js';

// This process's row in job_workers (decision 0015). Registered before the
// first claim, refreshed every heartbeatMs, deleted on a clean stop. When a
// heartbeat finds another worker silent for lostAfterMs, or a processing row
// of a worker that no longer exists, `onReapNeeded` runs: the sweep that
// resets those jobs (sweeper.ts, reapLostWorkers), so a SIGKILLed worker's
// jobs are pending again within lostAfterMs + heartbeatMs.
//
// A heartbeat that finds the row gone means another worker declared this
// one dead (a long pause, a lost database connection) and reset its jobs:
// they may already run elsewhere. The worker registers again under a new id
// and `onLost` aborts what it was running, so no job runs twice at once for
// longer than that.

export interface WorkerRegistryOptions {
  db: Knex;
  runner: WorkerRunner;
  heartbeatMs: number;
  /** A worker silent this long is dead (JOBS_WORKER_LOST_AFTER_MS). */
  lostAfterMs: number;
  log: Logger;
  now?: (() => Date) | undefined;
  /** false: no timer; the owner calls beat() (the inline runner on one connection, between jobs). */
  timer: boolean;
  /** This worker had been declared dead; it now runs under a new id. */
  onLost?: (newId: number) => void;
  /** A heartbeat saw a worker silent for lostAfterMs, or a processing row of a worker that is gone. */
  onReapNeeded?: () => Promise<unknown>;
}

export interface WorkerRegistry {
  /** This worker's id; null before start() and after stop(). */
  id(): number | null;
  start(): Promise<number>;
  beat(): Promise<void>;
  stop(): Promise<void>;
}

export function checkWorkerTimings(heartbeatMs: number, lostAfterMs: number): void {
  if (!Number.isInteger(heartbeatMs) || heartbeatMs < 10) throw new RangeError('worker heartbeat interval must be a whole number of ms >= 10');
  // One late beat (a GC pause, a busy pool) must never make a live worker look dead.
  if (!(lostAfterMs >= 2 * heartbeatMs)) throw new RangeError(`worker lost-after (${lostAfterMs} ms) must be at least twice the heartbeat interval (${heartbeatMs} ms)`);
}

export function createWorkerRegistry(opts: WorkerRegistryOptions): WorkerRegistry {
  const log = opts.log;
  let id: number | null = null;
  let timer: NodeJS.Timeout | undefined;
  let current: Promise<void> | undefined;
  let stopped = false;
  const register = () => registerWorker(opts.db, { pid: process.pid, host: hostname(), runner: opts.runner }, opts.now?.());

  async function beatOnce(): Promise<void> {
    if (id === null) return;
    try {
      const beat = await heartbeatWorker(opts.db, id, opts.lostAfterMs, opts.now?.());
      if (!beat.alive && !stopped) {
        const old = id;
        id = await register();
        log.warn({ oldWorkerId: old, workerId: id }, `worker ${old} had been declared dead by another worker (missed heartbeats) and its jobs reset; registered again as ${id}, aborting what it ran`);
        opts.onLost?.(id);
      }
      if (beat.reapNeeded) await opts.onReapNeeded?.();
    } catch (err) {
      log.warn({ err, workerId: id }, 'worker heartbeat failed; trying again at the next one');
    }
  }

  function schedule(): void {
    if (stopped || !opts.timer) return;
    timer = setTimeout(() => {
      current = beatOnce().finally(() => {
        current = undefined;
        schedule();
      });
    }, opts.heartbeatMs);
  }

  return {
    id: () => id,
    async start() {
      stopped = false;
      id = await register();
      schedule();
      return id;
    },
    async beat() {
      await (current ??= beatOnce().finally(() => (current = undefined)));
    },
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await current;
      if (id === null) return;
      const mine = id;
      id = null;
      await deregisterWorker(opts.db, mine).catch((err: unknown) =>
        log.warn({ err, workerId: mine }, 'could not deregister the worker; others reap its row after it misses its heartbeats'),
      );
    },
  };
}
