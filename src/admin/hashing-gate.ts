import pLimit from 'p-limit';

// Kept out of passwords.ts: the CLI's admin commands hash passwords but never
// serve logins, and `herald --help` must not load p-limit (test/cli/bin.test.ts).

/** More logins are waiting for a password check than the gate holds. */
export class HashingBusy extends Error {
  constructor() {
    super('too many logins at once');
    this.name = 'HashingBusy';
  }
}

export type HashingGate = <T>(check: () => Promise<T>) => Promise<T>;

/**
 * At most `concurrency` password checks run at once (each holds a libuv
 * thread and 32 MB); up to `waiting` more queue, and past that a check is
 * refused at once: a flood of logins then costs the server a bounded share
 * of its threads and memory instead of starving every other request.
 */
export function hashingGate(concurrency: number, waiting = concurrency * 10): HashingGate {
  const limit = pLimit(concurrency);
  return (check) => (limit.pendingCount >= waiting ? Promise.reject(new HashingBusy()) : limit(check));
}
