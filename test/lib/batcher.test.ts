import { expect } from 'chai';
import { createBatcher } from '../../src/lib/batcher.js';

// src/lib/batcher: the group commit behind the invoice request INSERT and the
// job runner's claims and completions. No database needed: the batch function
// is a controllable promise.

function deferred<T>(): { promise: Promise<T>; resolve: (v: T) => void; reject: (e: unknown) => void } {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

describe('lib.createBatcher', () => {
  it('sends the first call alone, queues calls made while it runs, and sends them as one batch', async () => {
    const batches: number[][] = [];
    const gates: ReturnType<typeof deferred<number[]>>[] = [];
    const call = createBatcher<number, number>((items) => {
      batches.push(items);
      const d = deferred<number[]>();
      gates.push(d);
      return d.promise;
    });
    const first = call(1);
    await Promise.resolve();
    const rest = [call(2), call(3), call(4)];
    await Promise.resolve();
    expect(batches).to.deep.equal([[1]]);
    gates[0]!.resolve([10]);
    expect(await first).to.equal(10);
    expect(batches).to.deep.equal([[1], [2, 3, 4]]);
    gates[1]!.resolve([20, 30, 40]);
    expect(await Promise.all(rest)).to.deep.equal([20, 30, 40]);
  });

  it('starts the next batch before the finished batch callers continue', async () => {
    const events: string[] = [];
    const gates: ReturnType<typeof deferred<string[]>>[] = [];
    const call = createBatcher<string, string>((items) => {
      events.push(`send ${items.join(',')}`);
      const d = deferred<string[]>();
      gates.push(d);
      return d.promise;
    });
    const a = call('a').then((v) => events.push(`answer ${v}`));
    await Promise.resolve();
    const b = call('b').then((v) => events.push(`answer ${v}`));
    gates[0]!.resolve(['A']);
    await a;
    expect(events).to.deep.equal(['send a', 'send b', 'answer A']);
    gates[1]!.resolve(['B']);
    await b;
    expect(events.at(-1)).to.equal('answer B');
  });

  it('rejects every call of a failed batch and goes on with the next', async () => {
    let n = 0;
    const call = createBatcher<number, number>(async (items) => {
      if (n++ === 0) throw new Error('batch failed');
      return items.map((i) => i * 2);
    });
    const failed = [call(1), call(2)].map((p) => p.then(() => 'ok', (e: Error) => e.message));
    expect(await Promise.all(failed)).to.deep.equal(['batch failed', 'batch failed']);
    expect(await call(5)).to.equal(10);
  });

  it('never has more than maxInFlight batches running, nor more than maxBatch items in one', async () => {
    let running = 0;
    let most = 0;
    const sizes: number[] = [];
    const call = createBatcher<number, number>(
      async (items) => {
        running++;
        most = Math.max(most, running);
        sizes.push(items.length);
        await new Promise((r) => setTimeout(r, 2));
        running--;
        return items;
      },
      { maxBatch: 7, maxInFlight: 2 },
    );
    const out = await Promise.all(Array.from({ length: 100 }, (_, i) => call(i)));
    expect(out).to.deep.equal(Array.from({ length: 100 }, (_, i) => i));
    expect(most).to.equal(2);
    expect(Math.max(...sizes)).to.equal(7);
    expect(sizes.reduce((s, x) => s + x, 0)).to.equal(100);
  });
});
