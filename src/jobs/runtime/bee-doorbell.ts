import Queue from 'bee-queue';
import type { Logger } from '../../log.js';
import type { Doorbell } from './doorbell.js';

// The Redis doorbell: one bee-queue queue whose job id is the row id and whose
// data is empty. bee-queue's addJob is a no-op while a job with that id
// exists, so a second ring of a waiting or running bell does nothing.
//
// bee-queue pitfalls handled here (src/jobs/README.md, "bee-queue pitfalls"):
// - It needs redis@3 connection options; an ioredis client is ignored.
// - removeOnSuccess/removeOnFailure: a finished bell must leave the jobs hash,
//   or every later ring of that id (a retry) would be a silent no-op.
// - storeJobs off: with events off, stored Job objects are never released.
// - A bell whose worker died stays in "active" (and its id stays taken) until
//   checkStalledJobs moves it back to waiting, so every worker calls it on a
//   timer. bee-queue's stall does not count attempts; Postgres does that
//   (stall_count), which is what stops a poison job.
// - No bee-queue delays or retries at all: due times live in
//   jobs.scheduled_at, and the runner rings when a row becomes due (timers
//   from NOTIFY, plus the sweeper). One clock, one source of truth, and no
//   activateDelayedJobs / custom backoff registration to forget.

export interface BeeDoorbellOptions {
  url: string;
  /** Herald's Redis key prefix (REDIS_PREFIX); bells live under `<prefix>:bq:jobs:`. */
  prefix: string;
  /** false for processes that only ring (no brpoplpush connection). */
  worker: boolean;
  /** bee-queue stallInterval: a dead worker's bell is freed after 1-2 of these. */
  stallIntervalMs: number;
  log: Logger;
}

export class BeeQueueDoorbell implements Doorbell {
  private readonly queue: Queue;
  private closing: Promise<void> | undefined;

  constructor(private readonly opts: BeeDoorbellOptions) {
    this.queue = new Queue('jobs', {
      prefix: `${opts.prefix}:bq`,
      redis: { url: opts.url },
      isWorker: opts.worker,
      getEvents: false,
      sendEvents: false,
      storeJobs: false,
      removeOnSuccess: true,
      removeOnFailure: true,
      activateDelayedJobs: false,
      stallInterval: opts.stallIntervalMs,
    });
    this.queue.on('error', (err) => opts.log.warn({ err }, 'doorbell (Redis) error; bee-queue reconnects, the sweeper re-rings'));
    // Connecting starts here; a refusal before anyone awaits ready() (the
    // runner registers the worker first) must not be an unhandled rejection.
    this.readying = this.queue.ready();
    this.readying.catch(() => undefined);
  }

  private readonly readying: Promise<unknown>;

  async ready(): Promise<void> {
    await this.readying;
  }

  async ring(ids: readonly number[]): Promise<number> {
    if (ids.length === 0 || this.closing) return 0;
    const bells = ids.map((id) => this.queue.createJob({}).setId(String(id)));
    // One pipelined write for the lot; a bell that already existed comes back with id null.
    const errors = await this.queue.saveAll(bells);
    // saveAll resolves before every per-bell callback has set its id; a macrotask boundary lets them all finish.
    await new Promise((resolve) => setImmediate(resolve));
    if (errors.size > 0) throw new Error(`ringing ${errors.size} of ${ids.length} bells failed`, { cause: errors.values().next().value });
    return bells.filter((b) => b.id !== null).length;
  }

  async start(answer: (id: number) => Promise<void>, concurrency: number, released: (id: number) => void): Promise<void> {
    await this.readying;
    // Emitted after bee-queue's finishing MULTI removed the bell: only now is a new ring of the id not a no-op.
    this.queue.on('succeeded', (job) => released(Number(job.id)));
    this.queue.on('failed', (job) => released(Number(job.id)));
    this.queue.on('stalled', (id) => this.opts.log.info({ jobId: Number(id) }, 'doorbell: freed the bell of a dead worker'));
    this.queue.process(concurrency, async (bell) => {
      await answer(Number(bell.id));
    });
    this.queue
      .checkStalledJobs(Math.max(50, Math.floor(this.opts.stallIntervalMs / 2)))
      .catch((err: unknown) => this.opts.log.warn({ err }, 'doorbell: stalled-bell check failed; it runs again on its timer'));
  }

  async pause(timeoutMs = 30_000): Promise<void> {
    // close() stops brpoplpush at once, then waits for bells being answered
    // (at most timeoutMs) before quitting its connections.
    this.closing ??= this.queue.close(Math.max(1, timeoutMs)).catch((err: unknown) => {
      this.opts.log.warn({ err }, 'doorbell closed before every bell was answered; their workers\' peers free them as stalled');
    });
  }

  async close(): Promise<void> {
    await this.pause();
    await this.closing;
  }

  async waiting(): Promise<number> {
    return (await this.queue.checkHealth()).waiting;
  }
}
