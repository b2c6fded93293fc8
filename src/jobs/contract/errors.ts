import { describePgError, isPgError } from '../../db/errors.js';

// Outcome classes of a failed job run. Each client has one classify(err)
// that turns what it saw into one of these, so retry rules sit where the call
// is made; the mechanism only reads errorClass (stored in jobs.error_class).

export type ErrorClass = 'transient' | 'rate_limited' | 'auth' | 'permanent';

export interface ErrorDetails {
  cause?: unknown;
  /** What an operator should do next; shown on the admin page and in mails. */
  nextStep?: string;
}

export abstract class JobError extends Error {
  abstract readonly errorClass: ErrorClass;
  readonly nextStep: string | undefined;
  constructor(message: string, details: ErrorDetails = {}) {
    super(message, { cause: details.cause });
    this.name = new.target.name;
    this.nextStep = details.nextStep;
  }
}

/** Worth retrying with backoff: timeouts, resets, 5xx. */
export class TransientError extends JobError {
  readonly errorClass = 'transient' as const;
}

/** The other side asked us to wait; retryAfterMs (from Retry-After) wins over backoff. */
export class RateLimitedError extends JobError {
  readonly errorClass = 'rate_limited' as const;
  constructor(
    message: string,
    readonly retryAfterMs: number | undefined,
    details: ErrorDetails = {},
  ) {
    super(message, details);
  }
}

/** Credentials rejected: retrying cannot help until someone fixes them. */
export class AuthError extends JobError {
  readonly errorClass = 'auth' as const;
}

/** The request itself is wrong (4xx, validation): never retried. */
export class PermanentError extends JobError {
  readonly errorClass = 'permanent' as const;
}

/** Anything a handler throws that is not a JobError counts as transient. */
export function errorClassOf(err: unknown): ErrorClass {
  return err instanceof JobError ? err.errorClass : 'transient';
}

/**
 * A failed database call as a job outcome. SQLSTATE classes 22 (a value the
 * database refuses: 22003, 22007, 22008, 22021, 22P02, ...) and 42 (a
 * statement it cannot run) give the same answer on every try: permanent.
 * Anything else (lost connection, deadlock, timeout) is transient. The
 * message is `what` and the condition, never the SQL text; the error itself
 * stays the cause. null when err is not a database error.
 */
export function classifyDatabaseError(err: unknown, what: string): JobError | null {
  if (!isPgError(err)) return null;
  const message = `${what}: ${describePgError(err)}`;
  return /^(22|42)/.test(err.code) ? new PermanentError(message, { cause: err }) : new TransientError(message, { cause: err });
}

/** How a failure is shown where clients read it (invoice-request and report errorMessage): "[permanent] stable message". */
export function failureMessage(err: JobError): string {
  return `[${err.errorClass}] ${err.message}`;
}
