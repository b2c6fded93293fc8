import { expect } from 'chai';
import { backoffDelayMs, MAX_RETRY_AFTER_MS, nominalDelayMs, retryDelayMs, retrySchedule } from '../../src/jobs/contract/backoff.js';
import { RateLimitedError, TransientError } from '../../src/jobs/contract/errors.js';

describe('jobs.backoff', () => {
  const backoff = { baseMs: 1000, capMs: 60_000 };

  it('doubles from base and stops at the cap for attempts 1..10', () => {
    const nominal = Array.from({ length: 10 }, (_, i) => nominalDelayMs(i + 1, backoff));
    expect(nominal).to.deep.equal([1000, 2000, 4000, 8000, 16_000, 32_000, 60_000, 60_000, 60_000, 60_000]);
  });

  it('applies equal jitter: random 0 gives half, random 1 the full capped delay, 0.5 three quarters', () => {
    const at = (r: number) => Array.from({ length: 10 }, (_, i) => backoffDelayMs(i + 1, backoff, () => r));
    expect(at(0)).to.deep.equal([500, 1000, 2000, 4000, 8000, 16_000, 30_000, 30_000, 30_000, 30_000]);
    expect(at(1)).to.deep.equal([1000, 2000, 4000, 8000, 16_000, 32_000, 60_000, 60_000, 60_000, 60_000]);
    expect(at(0.5)).to.deep.equal([750, 1500, 3000, 6000, 12_000, 24_000, 45_000, 45_000, 45_000, 45_000]);
  });

  it('never exceeds the cap, even for huge attempt numbers', () => {
    expect(backoffDelayMs(5000, backoff, () => 0.999999)).to.equal(60_000);
    expect(nominalDelayMs(Number.MAX_SAFE_INTEGER, backoff)).to.equal(60_000);
  });

  it('lets Retry-After win over the schedule, above the cap, adding at most 10% (max 1 s) of spread', () => {
    const err = new RateLimitedError('slow down', 120_000);
    expect(retryDelayMs(err, 1, backoff, () => 0)).to.equal(120_000);
    expect(retryDelayMs(err, 1, backoff, () => 0.5)).to.equal(120_500);
    expect(retryDelayMs(new RateLimitedError('slow down', 2000), 9, backoff, () => 1)).to.equal(2200);
  });

  it('clamps an absurd Retry-After to 24 h and a negative one to 0', () => {
    expect(retryDelayMs(new RateLimitedError('x', 10 * MAX_RETRY_AFTER_MS), 1, backoff, () => 0)).to.equal(MAX_RETRY_AFTER_MS);
    expect(retryDelayMs(new RateLimitedError('x', -5), 1, backoff, () => 0.5)).to.equal(0);
  });

  it('falls back to the schedule for a rate limit without Retry-After and for other errors', () => {
    expect(retryDelayMs(new RateLimitedError('x', undefined), 3, backoff, () => 0)).to.equal(2000);
    expect(retryDelayMs(new TransientError('x'), 3, backoff, () => 1)).to.equal(4000);
  });

  it('prints the whole schedule with its bounds', () => {
    expect(retrySchedule({ baseMs: 5, capMs: 12 }, 4)).to.deep.equal([
      { attempt: 1, minMs: 3, maxMs: 5 },
      { attempt: 2, minMs: 5, maxMs: 10 },
      { attempt: 3, minMs: 6, maxMs: 12 },
    ]);
  });
});
