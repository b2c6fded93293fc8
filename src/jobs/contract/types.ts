import type { Knex } from 'knex';
import type { Logger } from '../../log.js';
import type { ErrorClass } from './errors.js';

/** error_class as stored: a handler's ErrorClass, or 'stalled' when the sweeper gave up on a job whose runs kept dying. */
export type StoredErrorClass = ErrorClass | 'stalled';

// The contract between the durable-job mechanism and the capabilities that
// use it. src/jobs knows no capability: each capability adds its kinds to
// JobPayloads by declaration merging, next to its handlers:
//
//   declare module '../jobs/contract/types.js' {
//     interface JobPayloads { 'notify-hmrc': { uploadId: number } }
//   }

// eslint-disable-next-line @typescript-eslint/no-empty-object-type
export interface JobPayloads {}

export type JobKind = keyof JobPayloads & string;

export type JobStatus = 'pending' | 'processing' | 'failed' | 'failed_permanent' | 'completed';

export interface JobRow {
  id: number;
  kind: string;
  status: JobStatus;
  subject_type: string | null;
  subject_id: string | null;
  payload: unknown;
  dedupe_key: string | null;
  attempts: number;
  /** null: the kind's JobDefinition.maxAttempts applies. */
  max_attempts: number | null;
  scheduled_at: Date;
  started_at: Date | null;
  heartbeat_at: Date | null;
  finished_at: Date | null;
  last_error: string | null;
  error_class: StoredErrorClass | null;
  stall_count: number;
  claim_token: string | null;
  created_at: Date;
  /** true: enqueueJob announced the row after its commit instead of the insert trigger. */
  writer_announces: boolean;
  /** The job_workers id of the last claim (null: never claimed, or by a worker older than migration 0014). */
  worker_id: number | null;
}

export interface JobContext {
  db: Knex;
  /** Aborted when the job's timeout passes or the worker is forced to stop. */
  signal: AbortSignal;
  log: Logger;
  job: JobRow;
  now(): Date;
}

/** Returned by a handler to come back later without using an attempt. */
export interface JobSnooze {
  snoozeMs: number;
}

export function isJobSnooze(value: unknown): value is JobSnooze {
  return typeof value === 'object' && value !== null && typeof (value as JobSnooze).snoozeMs === 'number';
}

/** How one run of a job ended (job_attempts.outcome). */
export type AttemptOutcome = 'completed' | 'failed' | 'failed_permanent' | 'snoozed' | 'stalled' | 'interrupted' | 'worker_lost';

export interface JobAttemptRow {
  id: number;
  job_id: number;
  attempt: number;
  started_at: Date;
  finished_at: Date;
  outcome: AttemptOutcome;
  error_class: StoredErrorClass | null;
  error: string | null;
  duration_ms: number;
  /** The job_workers id of the worker that ran it. */
  worker_id: number | null;
}

/**
 * Called once for each row this process moves into failed_permanent, inside
 * the transaction that moved it (and a savepoint of its own): write the
 * follow-up (e.g. enqueueJob(ctx.db, 'send-mail', ..., { dedupeKey })) with
 * ctx.db and it commits exactly when the transition does. A hook that throws
 * is rolled back to its savepoint and logged; the transition stands.
 * Never use the root knex here (PGlite has one connection: it would deadlock).
 */
export type PermanentFailureHook = (job: JobRow, ctx: { db: Knex.Transaction }) => Promise<void>;

export interface JobDefinition<K extends JobKind = JobKind> {
  kind: K;
  /** Per-run timeout; processing longer than 3x this counts as stuck. */
  timeoutMs: number;
  maxAttempts: number;
  backoff: { baseMs: number; capMs: number };
  /** Stalls (worker died mid-run) tolerated before failed_permanent. Default 5. */
  maxStalls?: number;
  run(payload: JobPayloads[K], ctx: JobContext): Promise<void | JobSnooze>;
  /**
   * Optional: the runner claims due rows of this kind many at a time, by
   * scanning for them (batch-loop.ts), and hands them to batch.run in one
   * call; `run` still serves single runs (inline runner, tests).
   */
  batch?: JobBatching<K>;
}

export interface JobBatching<K extends JobKind = JobKind> {
  /** Rows claimed per call. */
  size: number;
  /** Calls running at once (Default: 2), so one batch's I/O overlaps the next one's claim. */
  inFlight?: number;
  /** One result per item, in order: like run's (void, a snooze) or { error } for that item alone. */
  run(items: BatchItem<K>[], ctx: BatchContext): Promise<BatchItemResult[]>;
}

export interface BatchItem<K extends JobKind = JobKind> {
  payload: JobPayloads[K];
  job: JobRow;
}

export type BatchContext = Omit<JobContext, 'job'>;

export type BatchItemResult = void | JobSnooze | { error: unknown };

export interface EnqueueOptions {
  subjectType?: string;
  subjectId?: string | number;
  /** Unique: a second enqueue with the same key returns the existing job. */
  dedupeKey?: string;
  runAt?: Date;
  maxAttempts?: number;
}

export function defineJob<K extends JobKind>(kind: K, def: Omit<JobDefinition<K>, 'kind'>): JobDefinition<K> {
  return { kind, ...def };
}
