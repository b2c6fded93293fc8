// Natural batching ("group commit"): calls made while a batch is in flight
// queue up and go out together as the next batch. An idle worker sends each
// call at once (no added latency); a busy one turns 20 concurrent claims into
// one statement, which is what lets one worker pass 1000 jobs/s when every
// round trip to Postgres costs a syscall and a context switch.

export type BatchFn<I, O> = (items: I[]) => Promise<O[]>;

export function createBatcher<I, O>(run: BatchFn<I, O>, maxBatch = 200): (item: I) => Promise<O> {
  let queue: { item: I; resolve: (o: O) => void; reject: (e: unknown) => void }[] = [];
  let inFlight = false;

  function flush(): void {
    if (inFlight || queue.length === 0) return;
    const batch = queue.slice(0, maxBatch);
    queue = queue.slice(batch.length);
    inFlight = true;
    run(batch.map((b) => b.item)).then(
      (out) => batch.forEach((b, i) => b.resolve(out[i] as O)),
      (err: unknown) => batch.forEach((b) => b.reject(err)),
    ).finally(() => {
      inFlight = false;
      flush();
    });
  }

  return (item) =>
    new Promise<O>((resolve, reject) => {
      queue.push({ item, resolve, reject });
      // Let calls made in this same tick join the batch.
      if (queue.length === 1) queueMicrotask(flush);
    });
}
