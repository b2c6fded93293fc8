// A doorbell tells some worker "row <id> may be claimable". It carries only
// the id and may ring twice or not at all: the claim (compare-and-set on the
// row) decides who runs what, and the sweeper re-rings whatever was missed.
//
// Two kinds: the bee-queue bell (bee-doorbell.ts) shares work between
// processes through Redis; the local bell below keeps it in this process
// (no REDIS_URL: embedded demo, single worker).

export interface Doorbell {
  /** Ring these ids; resolves how many bells were new (not already waiting or being answered). */
  ring(ids: readonly number[]): Promise<number>;
  /**
   * Start answering: `answer(id)` runs for each bell, at most `concurrency`
   * at once. `released(id)` fires once a bell is fully gone, i.e. ringing
   * that id again will create a new bell rather than be a no-op.
   */
  start(answer: (id: number) => Promise<void>, concurrency: number, released: (id: number) => void): Promise<void>;
  /** Stop taking bells (answers in flight go on, for at most timeoutMs); idempotent. */
  pause(timeoutMs?: number): Promise<void>;
  /** Release connections; call after in-flight answers settled or were given up on. */
  close(): Promise<void>;
  /** Bells waiting to be answered (health and tests). */
  waiting(): Promise<number>;
}

export class LocalDoorbell implements Doorbell {
  // A Set is a FIFO that also dedupes: insertion order, O(1) take-first.
  private readonly queued = new Set<number>();
  private readonly answering = new Set<number>();
  private answer: ((id: number) => Promise<void>) | undefined;
  private released: ((id: number) => void) | undefined;
  private concurrency = 1;
  private paused = false;

  async ring(ids: readonly number[]): Promise<number> {
    let created = 0;
    for (const id of ids) {
      if (this.queued.has(id) || this.answering.has(id)) continue;
      this.queued.add(id);
      created++;
    }
    this.pump();
    return created;
  }

  async start(answer: (id: number) => Promise<void>, concurrency: number, released: (id: number) => void): Promise<void> {
    this.answer = answer;
    this.released = released;
    this.concurrency = concurrency;
    this.pump();
  }

  private pump(): void {
    while (!this.paused && this.answer && this.answering.size < this.concurrency && this.queued.size > 0) {
      const id = this.queued.values().next().value as number;
      this.queued.delete(id);
      this.answering.add(id);
      // answer() reports its own errors; a rejection here must not stop the pump.
      void this.answer(id).catch(() => undefined).finally(() => {
        this.answering.delete(id);
        this.released?.(id);
        this.pump();
      });
    }
  }

  async pause(): Promise<void> {
    this.paused = true;
  }

  async close(): Promise<void> {
    this.paused = true;
    this.queued.clear();
  }

  async waiting(): Promise<number> {
    return this.queued.size;
  }
}
