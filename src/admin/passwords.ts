import crypto from 'node:crypto';
import { promisify } from 'node:util';

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
