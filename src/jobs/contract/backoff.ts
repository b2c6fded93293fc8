import { RateLimitedError } from './errors.js';

// Retry delays. Pure functions with the random source injected, so the whole
// schedule can be printed (docs/retry-schedules.md) and tested exactly.
//
// Jitter: "equal jitter" (half fixed, half random): delay lies in
// [d/2, d] where d = min(base * 2^(n-1), cap). Full jitter ([0, d]) spreads a
// herd slightly better but can retry a failing authority almost at once; equal
// jitter keeps a floor that the schedule table can promise, and never exceeds
// the cap.
//
// Retry-After (RateLimitedError.retryAfterMs) wins over the schedule and is
// NOT held to the kind's cap: the other side told us when it will accept us,
// and asking earlier only spends an attempt on a certain refusal. It is held
// to MAX_RETRY_AFTER_MS so a garbage header cannot park a job for a year, and
// gets up to 10% (at most 1 s) added, never subtracted, so jobs refused
// together do not all come back in the same millisecond.

export interface Backoff {
  baseMs: number;
  capMs: number;
}

/** Longest Retry-After honoured (24 h); longer values are clamped to it. */
export const MAX_RETRY_AFTER_MS = 24 * 60 * 60 * 1000;
const RETRY_AFTER_SPREAD = 0.1;
const RETRY_AFTER_SPREAD_MAX_MS = 1000;

export type Random = () => number;

/** Uncapped-then-capped exponential step for the n-th attempt (n >= 1), before jitter. */
export function nominalDelayMs(attempt: number, backoff: Backoff): number {
  const n = Math.max(1, Math.floor(attempt));
  // 2^(n-1) overflows to Infinity for huge n; min() then yields the cap.
  return Math.min(backoff.baseMs * 2 ** (n - 1), backoff.capMs);
}

/** Delay before retrying after the n-th attempt failed (equal jitter). */
export function backoffDelayMs(attempt: number, backoff: Backoff, random: Random = Math.random): number {
  const d = nominalDelayMs(attempt, backoff);
  return Math.round(d / 2 + random() * (d / 2));
}

/** Delay honouring Retry-After when the error carries one, else the schedule. */
export function retryDelayMs(err: unknown, attempt: number, backoff: Backoff, random: Random = Math.random): number {
  if (err instanceof RateLimitedError && err.retryAfterMs !== undefined && Number.isFinite(err.retryAfterMs)) {
    const asked = Math.min(Math.max(0, err.retryAfterMs), MAX_RETRY_AFTER_MS);
    const spread = Math.min(asked * RETRY_AFTER_SPREAD, RETRY_AFTER_SPREAD_MAX_MS);
    return Math.round(asked + random() * spread);
  }
  return backoffDelayMs(attempt, backoff, random);
}

/** The whole schedule (min and max delay per attempt), for docs and the admin page. */
export function retrySchedule(backoff: Backoff, maxAttempts: number): { attempt: number; minMs: number; maxMs: number }[] {
  const rows = [];
  for (let attempt = 1; attempt < maxAttempts; attempt++) {
    const d = nominalDelayMs(attempt, backoff);
    rows.push({ attempt, minMs: Math.round(d / 2), maxMs: d });
  }
  return rows;
}
