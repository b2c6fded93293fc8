import type { Logger } from '../../log.js';
import type { JobRow } from '../contract/types.js';

// What wakes a loop that claims due rows by scanning for them, many per
// statement (FOR UPDATE SKIP LOCKED, so workers split them): used for
// batched kinds (batch-loop.ts, one loop per kind) and for every other kind
// the runner knows (startScan in runner.ts). A pump claims while there is room and
// rows come back full; while maxClaimsInFlight statements are out, wakes
// that arrive meanwhile (NOTIFYs, finished jobs) fold into the next claim,
// which is then bigger. After a pump it sleeps until the next row it knows of
// comes due, and never longer than maxIdleMs (the backstop for a missed NOTIFY).
// Rows asked for by claims in flight count against room(), so a loop never
// holds more rows than its owner has room for.

export interface ClaimLoopOptions {
  name: string;
  log: Logger;
  /** How many rows to claim now (0: no room; the owner calls pump() when room frees). */
  room(): number;
  claim(limit: number): Promise<JobRow[]>;
  /** Takes the claimed rows over. */
  start(jobs: JobRow[]): void;
  /** ms until the next row this loop would claim comes due (0: one is due), or null when none waits. */
  nextDueMs(): Promise<number | null>;
  /**
   * true: ask nextDueMs after every pump (batched kinds: their rows come due
   * by the thousand, on their own timers). false: only when a wake was folded
   * into an earlier one, so a later due time may be unknown (the scan loop:
   * every row it can claim was announced by a NOTIFY with its delay).
   */
  alwaysAskNextDue: boolean;
  /** Longest sleep between scans. (Default: 1000 ms.) */
  maxIdleMs?: number;
  /** Shortest gap after a claim that came back short, so a trickle of due rows forms batches. (Default: 0.) */
  minGapMs?: number;
  /**
   * Claim statements at once (Default: 1). Several overlap their commits:
   * measured here, one statement of 20 rows at a time took ~2 ms of fsync
   * for each, which capped a worker at concurrency 20 near 3,000 jobs/s.
   */
  maxClaimsInFlight?: number;
}

export interface ClaimLoop {
  /** Claim in delayMs (a row is due then), unless a claim is already planned sooner. */
  wake(delayMs: number): void;
  /** A run ended (room freed): claim what was left for want of room. */
  pump(): void;
  /** No more claims; resolves once the claims in flight have handed their rows over (what runs carries on). */
  stop(): Promise<void>;
}

export function startClaimLoop(opts: ClaimLoopOptions): ClaimLoop {
  const maxIdleMs = opts.maxIdleMs ?? 1000;
  const minGapMs = opts.minGapMs ?? 0;
  const maxClaimsInFlight = opts.maxClaimsInFlight ?? 1;
  let claiming = 0;
  /** The claim statements in flight: stop() waits for them, so rows they claim are started (and waited for) too. */
  const claims = new Set<Promise<void>>();
  /** Rows asked for by the claims in flight. */
  let reserved = 0;
  let dirty = false;
  let short = false;
  let failed = false;
  let stopped = false;
  let laterUnknown = false;
  let timer: NodeJS.Timeout | undefined;
  let timerAt = Infinity;
  let soon = false;

  /** backstop: a planned rescan, not a row known to come due (folding it loses nothing). */
  function wake(requestedMs: number, backstop = false): void {
    if (stopped) return;
    // Idle, the loop rescans every maxIdleMs anyway: a row due later is claimed by one of those
    // (and a month-long delay would overflow setTimeout).
    const delayMs = Math.min(Math.max(0, requestedMs), maxIdleMs);
    const at = Date.now() + delayMs;
    if (timer && timerAt <= at) {
      // A row due after the planned scan would be missed by it: ask for the next due time then.
      if (delayMs > 0 && at > timerAt && !backstop) laterUnknown = true;
      return;
    }
    if (timer) clearTimeout(timer);
    timerAt = at;
    timer = setTimeout(() => {
      timer = undefined;
      timerAt = Infinity;
      pump();
    }, delayMs);
  }

  /** Claim while something may be due, there is room, and fewer than maxClaimsInFlight claims run. */
  function pump(): void {
    if (stopped) return;
    dirty = true;
    while (dirty && !stopped && claiming < maxClaimsInFlight) {
      const limit = opts.room() - reserved;
      if (limit <= 0) return; // a run that ends calls pump() again
      dirty = false;
      claiming++;
      reserved += limit;
      const claimed = opts.claim(limit).then(
        (jobs) => {
          if (jobs.length > 0) opts.start(jobs);
          // Full: more may be due now. Short: the rest is not due yet (or locked by another worker).
          if (jobs.length >= limit) dirty = true;
          else short = true;
        },
        (err: unknown) => {
          opts.log.warn({ err, loop: opts.name }, 'claiming due jobs failed; scanning again in a second');
          failed = true;
        },
      ).finally(() => {
        claiming--;
        reserved -= limit;
        claims.delete(claimed);
        if (dirty) pump();
        else if (claiming === 0) void plan();
      });
      claims.add(claimed);
    }
  }

  /** Idle (or full): sleep until the next row known to come due, at most maxIdleMs. */
  async function plan(): Promise<void> {
    const wasShort = short;
    short = false;
    if (failed) {
      failed = false;
      return wake(1000, true);
    }
    if (stopped || opts.room() <= 0) return;
    let wait: number | null = null;
    if (opts.alwaysAskNextDue || laterUnknown) {
      laterUnknown = false;
      wait = await opts.nextDueMs().catch(() => null);
    }
    const known = wait !== null && wait < maxIdleMs;
    wake(Math.min(Math.max(wait ?? maxIdleMs, wasShort ? minGapMs : 0), maxIdleMs), !known);
  }

  pump();
  return {
    wake: (delayMs) => wake(delayMs),
    pump() {
      // Runs that end together (one completion statement) free their slots in one claim.
      if (soon || stopped) return;
      soon = true;
      setImmediate(() => {
        soon = false;
        // Rows were left for want of room: claim them. Else only plan the next wake (no empty claim per finished job).
        if (dirty) pump();
        else if (claiming === 0) void plan();
      });
    },
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      timer = undefined;
      await Promise.all([...claims]);
    },
  };
}
