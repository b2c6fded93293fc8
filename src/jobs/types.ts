import type { Knex } from 'knex';
import type { Logger } from '../log.js';
import type { ErrorClass } from './errors.js';

// The contract between the durable-job mechanism and the capabilities that
// use it. src/jobs knows no capability: each capability adds its kinds to
// JobPayloads by declaration merging, next to its handlers:
//
//   declare module '../jobs/types.js' {
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
  max_attempts: number;
  scheduled_at: Date;
  started_at: Date | null;
  heartbeat_at: Date | null;
  finished_at: Date | null;
  last_error: string | null;
  error_class: ErrorClass | null;
  stall_count: number;
  claim_token: string | null;
  created_at: Date;
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

export interface JobDefinition<K extends JobKind = JobKind> {
  kind: K;
  /** Per-run timeout; processing longer than 3x this counts as stuck. */
  timeoutMs: number;
  maxAttempts: number;
  backoff: { baseMs: number; capMs: number };
  /** Stalls (worker died mid-run) tolerated before failed_permanent. Default 5. */
  maxStalls?: number;
  run(payload: JobPayloads[K], ctx: JobContext): Promise<void | JobSnooze>;
}

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
