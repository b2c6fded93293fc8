import type { Knex } from 'knex';
import type { Logger } from '../../log.js';
import { describePgError, isPgError } from '../../db/errors.js';
import { crashPoint, pausePoint } from '../../lib/crash-point.js';
import { retryDelayMs, type Random } from '../contract/backoff.js';
import { errorClassOf, JobError, TransientError } from '../contract/errors.js';
import { endJobRun, heartbeatJob, type RunEnd } from '../store/runs.js';
import { isJobSnooze, type JobDefinition, type JobRow, type PermanentFailureHook } from '../contract/types.js';

// Runs one claimed job and records how it ended. Shared by the Redis runner
// and the inline runner. The handler never moves its own row: this module
// does, under the claim token, so a run whose claim was taken away (the
// sweeper reset it) cannot overwrite the newer run's result.

export interface ExecuteDeps {
  db: Knex;
  definitions: ReadonlyMap<string, JobDefinition>;
  log: Logger;
  /** Injected clock: passed to handlers and used for every timestamp written. */
  now?: (() => Date) | undefined;
  random?: Random | undefined;
  onPermanentFailure?: PermanentFailureHook | undefined;
  /** Write heartbeat_at while running (off for the inline runner: one connection). */
  heartbeat: boolean;
  /** After aborting the signal (timeout, forced stop), wait this long for the handler to settle. */
  abortGraceMs: number;
  /** Records a completion (the runner batches these); default: endJobRun alone. */
  completeRun?: ((id: number, token: string, at: Date | undefined) => Promise<JobRow | null>) | undefined;
  /** This process's job_workers id, written on the rows it claims (registry.ts). */
  workerId?: (() => number | null) | undefined;
}

export type ExecuteOutcome = RunEnd['outcome'] | 'lost';

export interface ExecuteResult {
  outcome: ExecuteOutcome;
  /** The row as this run left it; null when the claim was lost. */
  row: JobRow | null;
  /** Set when the row waits to be claimed again (retry, snooze, interrupted). */
  retryInMs?: number;
}

/** Why the run's signal was aborted; the handler sees the matching error as signal.reason. */
class StopRequested extends Error {}
class ClaimLost extends Error {}

const MAX_ERROR_CHARS = 2000;

/**
 * "Name: message (cause: ...)" with up to three causes, truncated for the row.
 * A database error is told by its condition only: its message carries the
 * statement and values (knex), which the admin page must never show.
 */
export function formatError(err: unknown): string {
  const parts: string[] = [];
  let e: unknown = err;
  for (let depth = 0; e !== undefined && e !== null && depth < 4; depth++) {
    parts.push(isPgError(e) ? describePgError(e) : e instanceof Error ? `${e.name}: ${e.message}` : String(e));
    e = e instanceof Error ? e.cause : undefined;
  }
  let text = parts.join(' (cause: ') + ')'.repeat(parts.length - 1);
  if (err instanceof JobError && err.nextStep) text += ` [next step: ${err.nextStep}]`;
  return text.length > MAX_ERROR_CHARS ? `${text.slice(0, MAX_ERROR_CHARS - 1)}…` : text;
}

function unknownKind(job: JobRow): RunEnd {
  return {
    id: job.id,
    token: job.claim_token!,
    status: 'failed_permanent',
    outcome: 'failed_permanent',
    errorClass: 'permanent',
    error: `unknown job kind "${job.kind}": no definition for it in this worker (add it to src/cli/job-definitions.ts)`,
  };
}

export type Settled = { ok: true; value: unknown } | { ok: false; error: unknown } | { ok: false; hung: true };

/**
 * Runs `call` with a timeout, the stop signal and, when given, a heartbeat
 * (`beat` resolves false once the claim is gone); resolves how it settled
 * and the controller whose abort reason says why it was cut short.
 */
export async function runGuarded(
  deps: ExecuteDeps,
  timeoutMs: number,
  stop: AbortSignal,
  log: Logger,
  call: (signal: AbortSignal) => Promise<unknown>,
  beat?: () => Promise<boolean>,
): Promise<{ settled: Settled; ac: AbortController }> {
  const ac = new AbortController();
  const timers: NodeJS.Timeout[] = [];
  let onGiveUp: (() => void) | undefined;
  const gaveUp = new Promise<Settled>((resolve) => (onGiveUp = () => resolve({ ok: false, hung: true })));
  // unref: an abort that lands after the run ended (a late heartbeat) must not hold the process open.
  ac.signal.addEventListener('abort', () => timers.push(setTimeout(onGiveUp!, deps.abortGraceMs).unref()), { once: true });
  const abort = (reason: Error) => !ac.signal.aborted && ac.abort(reason);
  timers.push(setTimeout(() => abort(new TransientError(`timed out after ${timeoutMs} ms`)), timeoutMs));
  const onStop = () => abort(new StopRequested('worker stopping'));
  if (stop.aborted) onStop();
  else stop.addEventListener('abort', onStop, { once: true });
  let beating: NodeJS.Timeout | undefined;
  if (beat) {
    const every = Math.min(Math.max(Math.floor(timeoutMs / 3), 100), 60_000);
    beating = setInterval(() => {
      beat().then(
        (held) => held || abort(new ClaimLost('claim lost: the row was reset or finished elsewhere')),
        (err: unknown) => log.warn({ err }, 'heartbeat failed; will retry at the next beat'),
      );
    }, every);
  }
  const running: Promise<Settled> = (async () => call(ac.signal))().then(
    (value) => ({ ok: true, value }),
    (error: unknown) => ({ ok: false, error }),
  );
  try {
    return { settled: await Promise.race([running, gaveUp]), ac };
  } finally {
    timers.forEach(clearTimeout);
    if (beating) clearInterval(beating);
    stop.removeEventListener('abort', onStop);
  }
}

/** Runs the handler with its timeout, heartbeat and stop signal; resolves how it settled. */
function runHandler(deps: ExecuteDeps, def: JobDefinition, job: JobRow, stop: AbortSignal, log: Logger) {
  const beat = deps.heartbeat ? () => heartbeatJob(deps.db, job.id, job.claim_token!, deps.now?.()) : undefined;
  const now = deps.now ?? (() => new Date());
  return runGuarded(deps, def.timeoutMs, stop, log, (signal) => def.run(job.payload as never, { db: deps.db, signal, log, job, now }), beat);
}

/** true when the run's signal fired because the row's claim was taken away. */
export const claimWasLost = (ac: AbortController): boolean => ac.signal.reason instanceof ClaimLost;

/** How the run ends, from how the handler settled and why its signal fired. */
export function decideEnd(deps: ExecuteDeps, def: JobDefinition, job: JobRow, settled: Settled, reason: unknown): RunEnd {
  const base = { id: job.id, token: job.claim_token! };
  if (settled.ok) {
    if (isJobSnooze(settled.value)) {
      const delayMs = Math.max(0, Math.round(settled.value.snoozeMs));
      return { ...base, status: 'pending', outcome: 'snoozed', delayMs, giveBackAttempt: true };
    }
    return { ...base, status: 'completed', outcome: 'completed' };
  }
  if (reason instanceof StopRequested) {
    // Cut short by shutdown: not the job's fault, so the attempt is given back.
    // Not an error either: last_error keeps describing the last real one.
    return { ...base, status: 'pending', outcome: 'interrupted', giveBackAttempt: true };
  }
  let err: unknown = 'error' in settled ? settled.error : undefined;
  if (reason instanceof TransientError) {
    // Timed out: the handler's own AbortError says less than the timeout does.
    err = 'hung' in settled ? new TransientError(`${reason.message}; handler ignored its abort signal for ${deps.abortGraceMs} ms`) : new TransientError(reason.message, { cause: err });
  }
  const errorClass = errorClassOf(err);
  const maxAttempts = job.max_attempts ?? def.maxAttempts;
  const error = formatError(err);
  if (errorClass === 'permanent' || errorClass === 'auth' || job.attempts >= maxAttempts) {
    return { ...base, status: 'failed_permanent', outcome: 'failed_permanent', errorClass, error };
  }
  const delayMs = retryDelayMs(err, job.attempts, def.backoff, deps.random);
  return { ...base, status: 'failed', outcome: 'failed', errorClass, error, delayMs };
}

/** Records the end; a move into failed_permanent runs the hook in the same transaction. */
export async function recordEnd(deps: ExecuteDeps, end: RunEnd, log: Logger): Promise<JobRow | null> {
  const at = deps.now?.();
  const hook = deps.onPermanentFailure;
  if (end.status === 'completed' && deps.completeRun) return deps.completeRun(end.id, end.token, at);
  if (end.status !== 'failed_permanent' || !hook) return endJobRun(deps.db, { ...end, at });
  return deps.db.transaction(async (trx) => {
    const row = await endJobRun(trx, { ...end, at });
    if (row) await runPermanentFailureHook(hook, row, trx, log);
    return row;
  });
}

export async function runPermanentFailureHook(hook: PermanentFailureHook, row: JobRow, trx: Knex.Transaction, log: Logger): Promise<void> {
  try {
    await trx.transaction(async (sp) => hook(row, { db: sp }));
  } catch (err) {
    log.error({ err, jobId: row.id, kind: row.kind }, 'onPermanentFailure hook failed; its writes were rolled back, the job stays failed_permanent');
  }
}

/**
 * Runs a job this process has just claimed (job.claim_token is ours) and records the outcome.
 * `handlerDone` fires once the handler has settled, before the outcome is recorded (the runner
 * frees the job's slot then, so recording overlaps the next claims).
 */
export async function executeJob(deps: ExecuteDeps, job: JobRow, stop: AbortSignal, handlerDone?: () => void): Promise<ExecuteResult> {
  const log = deps.log.child({ kind: job.kind, jobId: job.id, attempt: job.attempts });
  const def = deps.definitions.get(job.kind);
  let end: RunEnd;
  let lost = false;
  if (!def) {
    end = unknownKind(job);
  } else {
    crashPoint('jobs.after-claim');
    await pausePoint('jobs.after-claim');
    const { settled, ac } = await runHandler(deps, def, job, stop, log);
    handlerDone?.();
    crashPoint('jobs.before-record');
    lost = claimWasLost(ac);
    end = decideEnd(deps, def, job, settled, ac.signal.aborted ? ac.signal.reason : undefined);
  }
  if (lost) {
    log.warn('claim was lost while running (row reset by the sweeper); this run\'s result is ignored');
    return { outcome: 'lost', row: null };
  }
  const row = await recordEnd(deps, end, log);
  if (!row) {
    log.warn({ outcome: end.outcome }, 'claim no longer held when recording the result; ignored (the row was reset)');
    return { outcome: 'lost', row: null };
  }
  if (end.outcome === 'completed') log.debug('job completed');
  else if (end.outcome === 'failed') log.warn({ errorClass: end.errorClass, retryInMs: end.delayMs, error: end.error }, 'job failed; will retry');
  else if (end.outcome === 'failed_permanent') log.error({ errorClass: end.errorClass, error: end.error }, 'job failed permanently');
  else log.info({ outcome: end.outcome, retryInMs: end.delayMs ?? 0 }, `job ${end.outcome}; back to pending`);
  return end.status === 'failed' || end.status === 'pending' ? { outcome: end.outcome, row, retryInMs: end.delayMs ?? 0 } : { outcome: end.outcome, row };
}
