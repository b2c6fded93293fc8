import { AuthError, JobError, PermanentError, RateLimitedError, TransientError } from '../jobs/contract/errors.js';
import { NETWORK_ERROR_CODES } from '../lib/network-errors.js';

// The one place that decides what an S3 failure means for a retry. S3 names
// its errors (err.name is the S3 error code); a HEAD answer has no body, so
// the HTTP status decides there. Unknown failures without a status are
// network trouble as far as we can tell, and transient.

const THROTTLING_CODES = new Set([
  'SlowDown',
  'Throttling',
  'ThrottlingException',
  'ThrottledException',
  'RequestThrottled',
  'RequestLimitExceeded',
  'TooManyRequestsException',
  'RequestThrottledException',
]);

const AUTH_CODES = new Set([
  'AccessDenied',
  'AllAccessDisabled',
  'InvalidAccessKeyId',
  'SignatureDoesNotMatch',
  'ExpiredToken',
  'InvalidToken',
  'TokenRefreshRequired',
  'CredentialsProviderError',
  'InvalidSecurity',
]);

// 4xx codes that clear up by themselves: S3 timed out reading our body, or
// our clock drifted (the SDK corrects its offset on the next attempt).
const TRANSIENT_CLIENT_CODES = new Set(['RequestTimeout', 'RequestTimeTooSkewed', 'OperationAborted']);

const PERMANENT_CODES = new Set([
  'NoSuchBucket',
  'NoSuchKey',
  'NotFound',
  'InvalidArgument',
  'InvalidBucketName',
  'InvalidRequest',
  'InvalidDigest',
  'BadDigest',
  'EntityTooLarge',
  'EntityTooSmall',
  'KeyTooLongError',
  'MalformedXML',
  'MethodNotAllowed',
  'MissingContentLength',
  'PreconditionFailed',
  'InvalidObjectState',
]);

// The SDK's own timeouts.
const TIMEOUT_NAMES = new Set(['TimeoutError', 'RequestTimeout', 'AbortError']);

interface SdkErrorShape {
  name?: string;
  code?: string;
  message?: string;
  $fault?: 'client' | 'server';
  $metadata?: { httpStatusCode?: number };
  $retryable?: { throttling?: boolean };
}

export interface S3ErrorContext {
  /** PutObject, HeadObject...: named in the message. */
  operation?: string;
  key?: string;
}

/** Turns whatever an S3 call threw into Herald's error classes (JobErrors pass through). */
export function classifyS3Error(err: unknown, ctx: S3ErrorContext = {}): JobError {
  if (err instanceof JobError) return err;
  const e = (typeof err === 'object' && err !== null ? err : {}) as SdkErrorShape;
  const name = e.name ?? 'Error';
  const status = e.$metadata?.httpStatusCode;
  const where = [ctx.operation ?? 'S3 call', ctx.key].filter(Boolean).join(' ');
  const detail = `${name}${status ? ` (HTTP ${status})` : ''}${e.message && e.message !== name ? `: ${e.message}` : ''}`;
  const msg = `${where} failed: ${detail}`;
  const cause = { cause: err };

  if (THROTTLING_CODES.has(name) || e.$retryable?.throttling || status === 429) {
    return new RateLimitedError(msg, undefined, { ...cause, nextStep: 'S3 asked us to slow down; the job retries later' });
  }
  if (AUTH_CODES.has(name) || status === 401 || status === 403) {
    return new AuthError(msg, { ...cause, nextStep: 'check S3_ACCESS_KEY_ID / S3_SECRET_ACCESS_KEY and the bucket policy' });
  }
  if (TRANSIENT_CLIENT_CODES.has(name)) return new TransientError(msg, cause);
  if (PERMANENT_CODES.has(name)) {
    return new PermanentError(msg, { ...cause, nextStep: 'check S3_BUCKET, S3_ENDPOINT and the object key' });
  }
  if (status !== undefined && status >= 500) return new TransientError(msg, cause);
  if (status !== undefined && status >= 400) return new PermanentError(msg, cause);
  if ((e.code && NETWORK_ERROR_CODES.has(e.code)) || TIMEOUT_NAMES.has(name)) return new TransientError(msg, cause);
  // No status and no known code: the request never got an answer we could
  // read. Retrying is the safe side: S3 keys are idempotent.
  return new TransientError(msg, cause);
}
