// The public face of src/jobs: what capabilities, the CLI and the admin page use.
export { defineJob, isJobSnooze } from './types.js';
export type {
  AttemptOutcome, EnqueueOptions, JobAttemptRow, JobContext, JobDefinition, JobKind, JobPayloads, JobRow, JobSnooze, JobStatus,
  PermanentFailureHook, StoredErrorClass,
} from './types.js';
export { AuthError, errorClassOf, JobError, PermanentError, RateLimitedError, TransientError, type ErrorClass } from './errors.js';
export { backoffDelayMs, retryDelayMs, retrySchedule, MAX_RETRY_AFTER_MS, type Backoff } from './backoff.js';
export { enqueueJob, type EnqueueResult } from './enqueue.js';
export { createJobRunner, openJobRunnerCount, type JobRunner, type JobRunnerOptions, type RunnerStats } from './runner.js';
export { runJobsInline, type InlineOptions, type InlineSummary } from './inline.js';
export { createSweeper, type SweepCounts, type Sweeper } from './sweeper.js';
export { getJob } from './store.js';
export {
  clearJob, countJobs, listJobAttempts, listJobs, notifyDueJobs as processDueJobsNow, retryJob, retryJobs, unstickJobs,
  type JobCount, type JobFilter, type ListJobsOptions,
} from './store-admin.js';
