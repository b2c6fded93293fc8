// Rings a row when it becomes due (retry backoff, snooze, runAt), so a
// 2-second retry runs after 2 seconds rather than at the next sweep. Only
// rows due within the horizon get a timer; later ones are the sweeper's, so
// a backlog of far-future retries costs no memory here. Losing these timers
// (crash, restart) loses nothing: the sweeper rings every due row.

export class RingTimers {
  private readonly timers = new Map<number, { at: number; timer: NodeJS.Timeout }>();
  private stopped = false;

  constructor(
    private readonly ring: (id: number) => void,
    private readonly horizonMs: number,
  ) {}

  /** false when the row is beyond the horizon (left to the sweeper). */
  schedule(id: number, delayMs: number): boolean {
    if (this.stopped || delayMs > this.horizonMs) return false;
    const at = Date.now() + delayMs;
    const existing = this.timers.get(id);
    if (existing && existing.at <= at) return true;
    if (existing) clearTimeout(existing.timer);
    const timer = setTimeout(() => {
      this.timers.delete(id);
      this.ring(id);
    }, delayMs);
    timer.unref();
    this.timers.set(id, { at, timer });
    return true;
  }

  get size(): number {
    return this.timers.size;
  }

  stop(): void {
    this.stopped = true;
    for (const { timer } of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
  }
}
