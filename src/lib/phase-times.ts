// Where a long job's time goes: milliseconds summed per named phase over one
// run, logged by the job as one structured line (`{ timing: KIND, ms: {...} }`)
// that operators can grep and scripts/bench/export.ts parses from a worker's
// stderr. Phases may overlap (work in a worker thread is reported next to the
// main thread's), so their sum need not equal the wall time; `total` is that.

export class PhaseTimes {
  private readonly ms = new Map<string, number>();
  private readonly started = performance.now();

  add(phase: string, ms: number): void {
    this.ms.set(phase, (this.ms.get(phase) ?? 0) + ms);
  }

  /** Times `fn` into `phase` (also when it throws). */
  async time<T>(phase: string, fn: () => Promise<T> | T): Promise<T> {
    const t0 = performance.now();
    try {
      return await fn();
    } finally {
      this.add(phase, performance.now() - t0);
    }
  }

  /** Every phase and `total` (wall time since this object was made), in whole milliseconds. */
  toJSON(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [k, v] of this.ms) out[k] = Math.round(v);
    out.total = Math.round(performance.now() - this.started);
    return out;
  }
}
