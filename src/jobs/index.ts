// The public face of src/jobs: what capabilities, the CLI and the admin page use.
export { defineJob, isJobSnooze } from './contract/types.js';
export type {
  AttemptOutcome, EnqueueOptions, JobAttemptRow, JobContext, JobDefinition, JobKind, JobPayloads, JobRow, JobSnooze, JobStatus,
  PermanentFailureHook, StoredErrorClass,
} from './contract/types.js';
export { AuthError, errorClassOf, JobError, PermanentError, RateLimitedError, TransientError, type ErrorClass } from './contract/errors.js';
export { backoffDelayMs, retryDelayMs, retrySchedule, MAX_RETRY_AFTER_MS, type Backoff } from './contract/backoff.js';
export { enqueueJob, type EnqueueResult } from './store/enqueue.js';
export { createJobRunner, openJobRunnerCount, type JobRunner, type JobRunnerOptions, type RunnerStats } from './runtime/runner.js';
export { runJobsInline, type InlineOptions, type InlineSummary } from './runtime/inline.js';
export { createSweeper, type SweepCounts, type Sweeper } from './runtime/sweeper.js';
export { getJob } from './store/runs.js';
export {
  clearJob, countJobs, listJobAttempts, listJobs, notifyDueJobs as processDueJobsNow, retryJob, retryJobs, unstickJobs,
  type JobCount, type JobFilter, type ListJobsOptions,
} from './store/admin.js';
