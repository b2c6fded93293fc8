import type { Logger } from '../../log.js';
import { crashPoint, pausePoint } from '../../lib/crash-point.js';
import { decideEnd, recordEnd, runGuarded, type ExecuteDeps, type ExecuteOutcome, type Settled } from './execute.js';
import { claimDueJobs, endJobRuns, findNextDue, type RunEnd } from '../store/runs.js';
import { startClaimLoop } from './claim-loop.js';
import type { BatchItemResult, JobDefinition, JobRow } from '../contract/types.js';

// Batched kinds (JobDefinition.batch). A kind with thousands of rows coming
// due every few seconds (the PAC status poller: 10,000 documents every 5 s)
// would cost, per row, a bell (Redis round trips), a claim, a handler with
// its own queries and an end statement. Here a loop per kind claims every
// due row of the kind, up to batch.size at a time, hands them to batch.run
// in one call and ends them in one statement.
//
// The rows stay ordinary job rows (statuses, claim tokens, attempts,
// backoff, snoozes, the sweeper's reset of stuck rows, admin retry all
// apply); only what wakes them differs: NOTIFYs of the kind, the loop's own
// timer for the next due row, and a scan at least every maxIdleMs (the
// backstop for a missed NOTIFY). No heartbeat: a batch is aborted at the
// kind's timeoutMs, well before the sweeper's 3x timeoutMs stuck limit.

export interface BatchLoopOptions {
  deps: ExecuteDeps;
  def: JobDefinition;
  /** Aborted on a forced stop (or when the worker learns it was declared dead): running batches end as interrupted. */
  stop: () => AbortSignal;
  log: Logger;
  /** Every batch's promise, so the runner's stop waits for them. */
  track(work: Promise<void>): void;
  count(outcome: ExecuteOutcome, n: number): void;
  /** Longest sleep between scans. (Default: 1000 ms.) */
  maxIdleMs?: number;
  /** Shortest gap after a scan that found less than a full batch, so a trickle of due rows forms batches. (Default: 20 ms.) */
  minGapMs?: number;
}

export interface BatchLoop {
  /** Scan in delayMs (a NOTIFY said a row of this kind is due then), unless a scan is already planned sooner. */
  wake(delayMs: number): void;
  /** No more claims; resolves once a claim in flight has handed its batch over (the runner then waits for the batches). */
  stop(): Promise<void>;
}

export function startBatchLoop(opts: BatchLoopOptions): BatchLoop {
  const { deps, def, log } = opts;
  const batch = def.batch!;
  const inFlight = batch.inFlight ?? 2;
  let running = 0;

  function start(jobs: JobRow[]): void {
    running++;
    const work = runBatch(jobs)
      .catch((err: unknown) => log.error({ err, kind: def.kind, jobs: jobs.length }, 'recording a batch failed; the sweeper resets its rows'))
      .finally(() => {
        running--;
        loop.pump();
      });
    opts.track(work);
  }

  const loop = startClaimLoop({
    name: def.kind,
    log,
    room: () => (running < inFlight ? batch.size : 0),
    claim: (limit) => claimDueJobs(deps.db, { limit, kinds: [def.kind], workerId: deps.workerId?.() }, deps.now?.()),
    start,
    nextDueMs: () => findNextDue(deps.db, [def.kind], deps.now?.()),
    alwaysAskNextDue: true,
    maxIdleMs: opts.maxIdleMs ?? 1000,
    // A trickle of due rows forms batches.
    minGapMs: opts.minGapMs ?? 20,
  });

  async function runBatch(jobs: JobRow[]): Promise<void> {
    crashPoint('jobs.after-claim');
    await pausePoint('jobs.after-claim');
    const items = jobs.map((job) => ({ payload: job.payload as never, job }));
    const now = deps.now ?? (() => new Date());
    const { settled, ac } = await runGuarded(deps, def.timeoutMs, opts.stop(), log, (signal) =>
      batch.run(items, { db: deps.db, signal, log, now }),
    );
    crashPoint('jobs.before-record');
    const reason = ac.signal.aborted ? ac.signal.reason : undefined;
    const each = perItem(settled, jobs.length);
    const ends = jobs.map((job, i) => decideEnd(deps, def, job, each[i]!, reason));
    await record(ends);
  }

  async function record(ends: RunEnd[]): Promise<void> {
    // A move into failed_permanent runs the hook in its own transaction (rare); the rest go in one statement.
    const hooked = deps.onPermanentFailure ? ends.filter((e) => e.status === 'failed_permanent') : [];
    const plain = ends.filter((e) => !hooked.includes(e));
    const movedIds = new Set((await endJobRuns(deps.db, plain, deps.now?.())).map((r) => Number(r.id)));
    for (const e of hooked) if (await recordEnd(deps, e, log)) movedIds.add(e.id);
    const tally = new Map<ExecuteOutcome, number>();
    for (const e of ends) {
      const outcome: ExecuteOutcome = movedIds.has(e.id) ? e.outcome : 'lost';
      tally.set(outcome, (tally.get(outcome) ?? 0) + 1);
      if (outcome === 'lost') log.warn({ jobId: e.id }, 'claim no longer held when recording the result; ignored (the row was reset)');
      else if (e.outcome === 'failed') log.warn({ jobId: e.id, errorClass: e.errorClass, retryInMs: e.delayMs, error: e.error }, 'job failed; will retry');
      else if (e.outcome === 'failed_permanent') log.error({ jobId: e.id, errorClass: e.errorClass, error: e.error }, 'job failed permanently');
    }
    for (const [outcome, n] of tally) opts.count(outcome, n);
    log.debug({ kind: def.kind, ...Object.fromEntries(tally) }, 'batch ended');
  }

  return { wake: loop.wake, stop: loop.stop };
}

/** How each item settled: its own result, or the whole call's failure for every item. */
function perItem(settled: Settled, n: number): Settled[] {
  if (!settled.ok) return Array.from({ length: n }, () => settled);
  const results = settled.value as BatchItemResult[];
  if (!Array.isArray(results) || results.length !== n) {
    const error = new Error(`batch handler returned ${Array.isArray(results) ? results.length : 'no'} results for ${n} jobs`);
    return Array.from({ length: n }, () => ({ ok: false, error }));
  }
  return results.map((r): Settled => (r && typeof r === 'object' && 'error' in r ? { ok: false, error: r.error } : { ok: true, value: r }));
}
