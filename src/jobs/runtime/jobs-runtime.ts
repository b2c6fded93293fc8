import type { Knex } from 'knex';
import type { Logger } from '../../log.js';
import type { JobDefinition, PermanentFailureHook } from '../contract/types.js';
import { runJobsInline, type InlineOptions, type InlineSummary } from './inline.js';
import { createJobRunner, type JobRunner, type JobRunnerOptions } from './runner.js';

// The one way Herald starts a runner. Every runner a process starts (worker,
// serve, upload, notify retry, report create, queue process, demo) comes from
// here, so each has every kind and every permanent-failure hook: a runner
// started without a hook once failed jobs permanently with no mail and no
// clean-up of the invoice or provider document waiting on them.

export interface JobsRuntimeOptions {
  definitions: readonly JobDefinition[];
  /** Run in order, each in the transition's transaction (see PermanentFailureHook). */
  hooks: readonly PermanentFailureHook[];
  log: Logger;
  /** Redis doorbell; absent = in-process bell. */
  redis?: { url: string; prefix: string } | undefined;
  concurrency: number;
  sweepIntervalMs: number;
  /** JOBS_WORKER_HEARTBEAT_MS / JOBS_WORKER_LOST_AFTER_MS (registry.ts). */
  workerHeartbeatMs?: number;
  workerLostAfterMs?: number;
}

export type RunnerOverrides = Partial<Omit<JobRunnerOptions, 'db' | 'definitions' | 'onPermanentFailure'>>;
export type InlineOverrides = Omit<InlineOptions, 'onPermanentFailure'>;

export interface JobsRuntime {
  readonly definitions: readonly JobDefinition[];
  readonly onPermanentFailure: PermanentFailureHook;
  /** A worker: Redis when configured, else the in-process bell. */
  createRunner(db: Knex, overrides?: RunnerOverrides): JobRunner;
  /** Due jobs of every kind in this process, one at a time (no Redis, embedded database, one-off commands). */
  runInline(db: Knex, opts?: InlineOverrides): Promise<InlineSummary>;
}

export function combineHooks(hooks: readonly PermanentFailureHook[]): PermanentFailureHook {
  return async (job, ctx) => {
    for (const hook of hooks) await hook(job, ctx);
  };
}

export function createJobsRuntime(opts: JobsRuntimeOptions): JobsRuntime {
  const onPermanentFailure = combineHooks(opts.hooks);
  return {
    definitions: opts.definitions,
    onPermanentFailure,
    createRunner: (db, overrides = {}) =>
      createJobRunner({
        redis: opts.redis,
        concurrency: opts.concurrency,
        log: opts.log,
        sweepIntervalMs: opts.sweepIntervalMs,
        workerHeartbeatMs: opts.workerHeartbeatMs,
        workerLostAfterMs: opts.workerLostAfterMs,
        ...overrides,
        db,
        definitions: opts.definitions,
        onPermanentFailure,
      }),
    runInline: (db, inline = {}) =>
      runJobsInline(db, opts.definitions, {
        log: opts.log, workerHeartbeatMs: opts.workerHeartbeatMs, workerLostAfterMs: opts.workerLostAfterMs, ...inline, onPermanentFailure,
      }),
  };
}
