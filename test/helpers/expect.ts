import { expect } from 'chai';

/** Awaits p, which must reject with an instance of cls; returns the error for further checks. */
export async function expectRejection<T extends Error>(p: Promise<unknown>, cls: new (...a: never[]) => T): Promise<T> {
  try {
    await p;
  } catch (err) {
    expect(err, (err as Error).message).to.be.instanceOf(cls);
    return err as T;
  }
  throw new Error(`expected a ${cls.name}, but the call succeeded`);
}
