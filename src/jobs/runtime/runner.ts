import { randomUUID } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import type { Knex } from 'knex';
import type { Logger } from '../../log.js';
import type { Random } from '../contract/backoff.js';
import { startBatchLoop, type BatchLoop } from './batch-loop.js';
import { startClaimLoop, type ClaimLoop } from './claim-loop.js';
import { BeeQueueDoorbell } from './bee-doorbell.js';
import { LocalDoorbell, type Doorbell } from './doorbell.js';
import { executeJob, type ExecuteDeps, type ExecuteOutcome } from './execute.js';
import { isSingleConnection, pgConnectionOf } from '../../db/index.js';
import { JobListener } from './listener.js';
import { RingTimers } from './ring-timers.js';
import { createBatcher } from '../../lib/batcher.js';
import { claimDueJobs, claimJobs, endJobRuns, findJobWait, findNextDue } from '../store/runs.js';
import { createSweeper, type Sweeper } from './sweeper.js';
import { checkWorkerTimings, createWorkerRegistry, DEFAULT_WORKER_HEARTBEAT_MS, DEFAULT_WORKER_LOST_AFTER_MS, type WorkerRegistry } from './registry.js';
import type { JobDefinition, JobRow, PermanentFailureHook } from '../contract/types.js';

// A worker: claims due rows, runs each with its kind's handler, records the
// outcome. Rows of the kinds it knows are claimed many per statement by a
// scan (claim-loop.ts, FOR UPDATE SKIP LOCKED: workers split them), woken by
// the LISTEN connection (rows committed anywhere, with their delay until
// due), by its own results (retries, snoozes) and at least every second;
// completions are batched the same way (batcher.ts). Kinds with a `batch`
// definition get a loop each that hands whole batches to one call
// (batch-loop.ts). The doorbell (bee-queue with Redis, else in-process) still
// rings single rows: rows of kinds this worker does not know, and explicit
// ring() calls; a bell is answered by claiming that row alone. On one
// connection (PGlite) everything goes through bells, one job at a time.

export interface JobRunnerOptions {
  db: Knex;
  definitions: readonly JobDefinition[];
  /** Redis doorbell; absent = in-process bell (one worker, e.g. the embedded demo). */
  redis?: { url: string; prefix: string } | undefined;
  /** Jobs run at once (size the knex pool at least this + 4: batched claims and completions, sweeper, heartbeats). */
  concurrency: number;
  log: Logger;
  /** Sweeper period (Default: 15 s, JOBS_SWEEP_INTERVAL_MS). */
  sweepIntervalMs: number;
  /** Injected clock for every due check and timestamp (tests). (Default: the database's now().) */
  now?: () => Date;
  onPermanentFailure?: PermanentFailureHook;
  /** Jitter source for backoff (tests). (Default: Math.random.) */
  random?: Random;
  /** LISTEN for new rows. (Default: whenever the database is a real Postgres.) */
  listen?: boolean;
  /** bee-queue stallInterval: how soon a dead worker's bell is freed. (Default: 5000 ms.) */
  stallIntervalMs?: number;
  /** After aborting a job's signal, how long to wait for its handler. (Default: 2000 ms.) */
  abortGraceMs?: number;
  /** Rows due within this get a local timer; later ones wait for the sweeper. (Default: 5 min.) */
  ringHorizonMs?: number;
  /** How often this worker refreshes its job_workers row (JOBS_WORKER_HEARTBEAT_MS). (Default: 2000 ms.) */
  workerHeartbeatMs?: number;
  /** A worker silent this long is dead and its jobs are reset (JOBS_WORKER_LOST_AFTER_MS). (Default: 10 s.) */
  workerLostAfterMs?: number;
}

export type RunnerStats = Record<ExecuteOutcome | 'missed', number>;

export interface JobRunner {
  start(): Promise<void>;
  /**
   * First call: stop claiming, let running jobs finish for up to graceMs
   * (Default: 30 s), then abort them (their rows go back to pending,
   * attempt given back). A second call while stopping aborts at once.
   */
  stop(opts?: { graceMs?: number }): Promise<void>;
  /** Ring these rows (e.g. after an admin retry); returns how many bells were new. */
  ring(ids: readonly number[]): Promise<number>;
  readonly sweeper: Sweeper;
  /** This worker's row in job_workers (its id names the rows it claims). */
  readonly registry: WorkerRegistry;
  /** Jobs running now. */
  running(): number;
  stats(): RunnerStats;
}

const openRunners = new Set<JobRunner>();
/** Runners started and not yet stopped (tests assert none leaked). */
export function openJobRunnerCount(): number {
  return openRunners.size;
}

/** A due row whose claim found it locked (someone else is claiming or changing it) is rung again after this. */
const LOCKED_RETRY_MS = 100;
/** Claims and completions: up to 3 statements of each in flight, batching whatever queues behind them. */
const BATCHING = { maxBatch: 200, maxInFlight: 3 };
/** Most rows one scan claims (the completion batch's size). */
const MAX_SCAN_CLAIM = 200;

type Claim = { id: number; token: string };
/** Each item's row, if the statement moved it under that item's token (tokenOf: where the row says which). */
const matching = <R extends JobRow>(rows: R[], items: Claim[], tokenOf: (row: R) => string | null) => {
  const byId = new Map(rows.map((r) => [Number(r.id), r]));
  return items.map((c) => {
    const row = byId.get(c.id);
    return row && tokenOf(row) === c.token ? row : null;
  });
};

export function createJobRunner(opts: JobRunnerOptions): JobRunner {
  if (!Number.isInteger(opts.concurrency) || opts.concurrency < 1) throw new RangeError('concurrency must be a whole number >= 1');
  const log = opts.log.child({ component: 'jobs' });
  const definitions = new Map(opts.definitions.map((d) => [d.kind as string, d]));
  const connection = pgConnectionOf(opts.db);
  const listen = (opts.listen ?? true) && connection !== null;
  // PGlite (knex-pglite forces a pool of one) runs jobs one at a time: a
  // handler's transaction would otherwise starve every other job's queries.
  const singleConnection = isSingleConnection(opts.db);
  const concurrency = singleConnection ? 1 : opts.concurrency;
  const abortGraceMs = opts.abortGraceMs ?? 2000;
  const workerHeartbeatMs = opts.workerHeartbeatMs ?? DEFAULT_WORKER_HEARTBEAT_MS;
  const workerLostAfterMs = opts.workerLostAfterMs ?? DEFAULT_WORKER_LOST_AFTER_MS;
  checkWorkerTimings(workerHeartbeatMs, workerLostAfterMs);
  // Aborted on a forced stop, and when this worker learns it was declared
  // dead (its claims were reset): then replaced, for the jobs it claims next.
  let epoch = new AbortController();
  const newEpoch = () => {
    epoch = new AbortController();
    // Every running job listens on it; more than 10 at once is expected, not a leak.
    setMaxListeners(concurrency + 10, epoch.signal);
  };
  newEpoch();
  // Concurrent claims and completions go to Postgres as one statement each (batcher.ts).
  const claim = createBatcher<Claim, JobRow | null>(async (items) => {
    const unique = [...new Map(items.map((c) => [c.id, c])).values()];
    return matching(await claimJobs(opts.db, unique, opts.now?.(), registry.id()), items, (row) => row.claim_token);
  }, BATCHING);
  const complete = createBatcher<Claim & { at: Date | undefined }, JobRow | null>(async (items) =>
    matching(await endJobRuns(opts.db, items.map((c) => ({ ...c, status: 'completed', outcome: 'completed' })), items[0]!.at), items, (row) => row.ended_by),
  BATCHING);
  const deps: ExecuteDeps = {
    db: opts.db, definitions, log, now: opts.now, random: opts.random, onPermanentFailure: opts.onPermanentFailure, heartbeat: true, abortGraceMs,
    completeRun: (id, token, at) => complete({ id, token, at }),
    workerId: () => registry.id(),
  };
  const doorbell: Doorbell = opts.redis
    ? new BeeQueueDoorbell({ ...opts.redis, worker: true, stallIntervalMs: opts.stallIntervalMs ?? 5000, log })
    : new LocalDoorbell();
  const held = new Set<number>();
  const ringAfterRelease = new Set<number>();
  const inflight = new Set<Promise<void>>();
  const stats: RunnerStats = { completed: 0, failed: 0, failed_permanent: 0, snoozed: 0, stalled: 0, interrupted: 0, lost: 0, missed: 0 };
  let stopping: Promise<void> | undefined;
  let abortNow: (() => void) | undefined;

  // A ring of an id whose bell this process still holds would be a no-op
  // (bee-queue keeps the id until its finishing MULTI), so it waits for the release.
  async function ring(ids: readonly number[]): Promise<number> {
    const now: number[] = [];
    for (const id of ids) (held.has(id) ? ringAfterRelease.add(id) : now.push(id));
    return now.length ? doorbell.ring(now) : 0;
  }
  const ringLogged = (ids: number[]) => void ring(ids).catch((err: unknown) => log.warn({ err }, 'ring failed; the sweeper will re-ring'));

  const timers = new RingTimers((id) => ringLogged([id]), opts.ringHorizonMs ?? 5 * 60 * 1000);
  const soon = new Set<number>();
  function ringSoon(id: number): void {
    if (soon.size === 0) setImmediate(() => {
      const ids = [...soon];
      soon.clear();
      ringLogged(ids);
    });
    soon.add(id);
  }

  // One connection (PGlite) runs everything through bells, one job at a time.
  const batchDefs = singleConnection ? [] : opts.definitions.filter((d) => d.batch);
  const loops = new Map<string, BatchLoop>();
  const track = (work: Promise<void>) => {
    inflight.add(work);
    void work.finally(() => inflight.delete(work));
  };
  // Every other kind is claimed by scanning (not on one connection: a claim there waits behind every job).
  const scanKinds = singleConnection ? [] : opts.definitions.filter((d) => !d.batch).map((d) => d.kind as string);
  const scanned = new Set(scanKinds);
  let scan: ClaimLoop | undefined;
  /** Handlers running one row each (scanned or rung): at most `concurrency`. */
  let rowsRunning = 0;
  /** Scanned rows not yet recorded: a slot is free once its handler settled; at most one completion statement's worth more wait for their record. */
  let rowsUnrecorded = 0;

  function runClaimed(job: JobRow): void {
    rowsRunning++;
    rowsUnrecorded++;
    let running = true;
    const handlerDone = () => {
      if (!running) return;
      running = false;
      rowsRunning--;
      scan?.pump();
    };
    const work = (async () => {
      const result = await executeJob(deps, job, epoch.signal, handlerDone);
      stats[result.outcome]++;
      if (result.retryInMs !== undefined && !stopping) scan?.wake(result.retryInMs);
    })()
      .catch((err: unknown) => log.error({ err, jobId: job.id }, 'running a claimed job failed; the sweeper resets its row'))
      .finally(() => {
        handlerDone();
        rowsUnrecorded--;
        scan?.pump();
      });
    track(work);
  }

  function startScan(): ClaimLoop {
    return startClaimLoop({
      name: 'scan',
      log,
      room: () => Math.max(0, Math.min(MAX_SCAN_CLAIM, concurrency - rowsRunning, concurrency + MAX_SCAN_CLAIM - rowsUnrecorded)),
      claim: (limit) => claimDueJobs(opts.db, { limit, kinds: scanKinds, workerId: registry.id() }, opts.now?.()),
      start: (jobs) => jobs.forEach(runClaimed),
      nextDueMs: () => findNextDue(opts.db, scanKinds, opts.now?.()),
      // Each row it claims was announced with its delay (NOTIFY); a missed one waits at most a second.
      alwaysAskNextDue: false,
      maxClaimsInFlight: 3,
    });
  }

  const sweeper = createSweeper({
    db: opts.db, definitions: opts.definitions, log, intervalMs: opts.sweepIntervalMs, now: opts.now, onPermanentFailure: opts.onPermanentFailure,
    ring: (ids) => ring(ids),
    // Their loops scan for due rows themselves; a bell per row is what they avoid.
    skipRingKinds: [...batchDefs.map((d) => d.kind as string), ...scanKinds],
    workerLostAfterMs,
  });
  // Reset rows become pending, and the jobs_notify trigger announces them to every listener.
  const registry = createWorkerRegistry({
    db: opts.db, runner: 'worker', heartbeatMs: workerHeartbeatMs, log, now: opts.now, timer: true,
    lostAfterMs: workerLostAfterMs, onReapNeeded: () => sweeper.reapLostWorkers(),
    onLost: () => {
      const old = epoch;
      newEpoch();
      old.abort();
    },
  });
  const listener = listen
    ? new JobListener({
        connection: connection!,
        log,
        onNotice: (id, delayMs, kind) => {
          const loop = kind === undefined ? undefined : loops.get(kind);
          if (loop) loop.wake(delayMs);
          else if (scan && (kind === undefined || scanned.has(kind))) scan.wake(delayMs);
          else if (delayMs <= 0) ringSoon(id);
          else timers.schedule(id, delayMs);
        },
        onReconnect: () => sweeper.trigger(),
      })
    : undefined;

  async function answer(id: number): Promise<void> {
    held.add(id);
    if (stopping) return;
    rowsRunning++;
    const work = (async () => {
      const job = await claim({ id, token: randomUUID() });
      if (!job) {
        stats.missed++;
        // Rung early (clock skew), or locked by another claimer: come back when it is due.
        const wait = await findJobWait(opts.db, id, opts.now?.());
        if (wait && (wait.status === 'pending' || wait.status === 'failed')) timers.schedule(id, wait.waitMs > 0 ? wait.waitMs : LOCKED_RETRY_MS);
        return;
      }
      const result = await executeJob(deps, job, epoch.signal);
      stats[result.outcome]++;
      if (result.retryInMs !== undefined && !stopping) timers.schedule(id, result.retryInMs);
    })()
      .catch((err: unknown) => log.error({ err, jobId: id }, 'answering a bell failed; the sweeper will ring it again'))
      .finally(() => rowsRunning--);
    inflight.add(work);
    await work;
    inflight.delete(work);
  }

  function released(id: number): void {
    held.delete(id);
    if (ringAfterRelease.delete(id) && !stopping) ringLogged([id]);
  }

  /** true when every running job settled within ms; false at the deadline or on a forced stop. */
  async function waitInflight(ms: number): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
    const forced = new Promise<boolean>((resolve) => (abortNow = () => resolve(false)));
    try {
      return await Promise.race([Promise.all([...inflight]).then(() => true), deadline, forced]);
    } finally {
      clearTimeout(timer); // a pending 30 s timer would keep a stopped worker's process alive
    }
  }

  async function shutdown(graceMs: number): Promise<void> {
    log.info({ running: inflight.size, graceMs }, `stopping: no new claims; waiting up to ${graceMs} ms for ${inflight.size} running jobs`);
    await doorbell.pause(graceMs + abortGraceMs + 1000);
    timers.stop();
    // Rows a claim in flight takes are started, and waited for below like any other.
    await Promise.all([...[...loops.values()].map((loop) => loop.stop()), scan?.stop(), listener?.stop(), sweeper.stop()]);
    if (!(await waitInflight(graceMs)) && inflight.size > 0) {
      log.warn({ running: inflight.size }, `aborting ${inflight.size} running jobs; they go back to pending without using an attempt`);
      epoch.abort();
      abortNow = undefined;
      if (!(await waitInflight(abortGraceMs + 1000)) && inflight.size > 0) {
        log.error({ running: inflight.size }, `${inflight.size} jobs ignored their abort signal; once this worker is gone, another resets their rows (worker_lost)`);
      }
    }
    await doorbell.close();
    await registry.stop();
    openRunners.delete(runner);
    log.info({ ...stats }, 'stopped');
  }

  const runner: JobRunner = {
    sweeper,
    registry,
    async start() {
      openRunners.add(runner);
      // Registered before the first claim: every row this worker claims names it.
      const workerId = await registry.start();
      await doorbell.start(answer, concurrency, released);
      await listener?.start();
      for (const def of batchDefs) {
        loops.set(def.kind, startBatchLoop({ deps, def, stop: () => epoch.signal, log, track, count: (outcome, n) => (stats[outcome] += n) }));
      }
      if (scanKinds.length > 0) scan = startScan();
      sweeper.start();
      log.info({ workerId, kinds: [...definitions.keys()], concurrency, doorbell: opts.redis ? 'redis' : 'local', listen }, 'worker started');
    },
    stop({ graceMs = 30_000 } = {}) {
      if (stopping) {
        log.warn('stop requested again: aborting running jobs now');
        abortNow?.();
        return stopping;
      }
      stopping = shutdown(Math.max(0, graceMs));
      return stopping;
    },
    ring,
    running: () => inflight.size,
    stats: () => ({ ...stats }),
  };
  return runner;
}
