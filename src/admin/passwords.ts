import crypto from 'node:crypto';
import { promisify } from 'node:util';
import pLimit from 'p-limit';

// Admin passwords: node:crypto scrypt, stored as "scrypt$N$r$p$salt$hash"
// (base64url) so the cost can be raised later without breaking old hashes.
// N = 2^15 costs ~50-100 ms and 32 MB here: fine for a login, too slow for
// guessing.

const scrypt = promisify(crypto.scrypt) as (pw: string, salt: Buffer, len: number, opts: crypto.ScryptOptions) => Promise<Buffer>;
const N = 32768;
const R = 8;
const P = 1;
const KEY_LEN = 32;
const MAX_MEM = 64 * 1024 * 1024;

export const MIN_PASSWORD_LENGTH = 12;

export async function hashPassword(password: string): Promise<string> {
  const salt = crypto.randomBytes(16);
  const hash = await scrypt(password, salt, KEY_LEN, { N, r: R, p: P, maxmem: MAX_MEM });
  return `scrypt$${N}$${R}$${P}$${salt.toString('base64url')}$${hash.toString('base64url')}`;
}

export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const [tag, n, r, p, salt, hash] = stored.split('$');
  if (tag !== 'scrypt' || !salt || !hash) return false;
  const expected = Buffer.from(hash, 'base64url');
  const got = await scrypt(password, Buffer.from(salt, 'base64url'), expected.length, { N: Number(n), r: Number(r), p: Number(p), maxmem: MAX_MEM });
  return crypto.timingSafeEqual(got, expected);
}

/** Same cost as a real check, so a wrong user name takes as long as a wrong password. */
export async function burnPasswordCheck(password: string): Promise<void> {
  await scrypt(password, Buffer.alloc(16), KEY_LEN, { N, r: R, p: P, maxmem: MAX_MEM });
}

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
