import { isIPv6 } from 'node:net';
import type { Knex } from 'knex';
import type { Config } from '../config.js';

// The /admin login throttle (admin_login_throttle, migrations/0013): failed
// logins counted per user name and per client address, in Postgres so that
// every `herald serve` process sees the same counts. An attempt is charged
// BEFORE its password is hashed (one transaction with the rows locked), so
// a burst of concurrent guesses gets no more checks than a slow sequence of
// them; a successful login deletes its rows again. Decision 0012.

type Db = Knex | Knex.Transaction;

export interface ThrottleSettings {
  freeFailures: number;
  delayMs: number;
  lockoutFailures: number;
  lockoutMs: number;
  forgetMs: number;
}

export function throttleSettings(config: Config): ThrottleSettings {
  return {
    freeFailures: config.ADMIN_LOGIN_FREE_FAILURES,
    delayMs: config.ADMIN_LOGIN_DELAY_MS,
    lockoutFailures: config.ADMIN_LOGIN_LOCKOUT_FAILURES,
    lockoutMs: config.ADMIN_LOGIN_LOCKOUT_MS,
    forgetMs: config.ADMIN_LOGIN_FORGET_MS,
  };
}

export type ThrottleScope = 'user' | 'address';

export interface ThrottleKey {
  scope: ThrottleScope;
  key: string;
}

/** How long the next attempt waits after `failures` failures in a row. */
export function waitAfter(failures: number, s: ThrottleSettings): { ms: number; lockout: boolean } {
  if (failures >= s.lockoutFailures) return { ms: s.lockoutMs, lockout: true };
  if (failures < s.freeFailures) return { ms: 0, lockout: false };
  return { ms: Math.min(s.delayMs * 2 ** (failures - s.freeFailures), s.lockoutMs), lockout: false };
}

/**
 * The throttle's key for a client address: IPv4 as is (also when it arrives
 * IPv4-mapped), IPv6 by its /64, because one host gets a whole /64 and could
 * otherwise take a fresh address per guess.
 */
export function addressKey(ip: string): string {
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(ip);
  if (mapped) return mapped[1]!;
  if (!isIPv6(ip)) return ip.slice(0, 100) || 'unknown';
  const [head = '', tail] = ip.split('%')[0]!.split('::');
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const groups = tail === undefined ? left : [...left, ...Array<string>(Math.max(8 - left.length - right.length, 0)).fill('0'), ...right];
  return `${groups.slice(0, 4).map((g) => parseInt(g, 16).toString(16)).join(':')}::/64`;
}

export type Charge =
  | { allowed: true; /** after this attempt, if it fails */ failures: { scope: ThrottleScope; key: string; failures: number; lockedUntil: Date | null }[] }
  | { allowed: false; scope: ThrottleScope; retryAfterMs: number; lockedOut: boolean };

interface Row {
  scope: ThrottleScope;
  key: string;
  failures: number;
  last_failure_at: Date | null;
  blocked_until: Date | null;
}

const pairs = (keys: ThrottleKey[]) => ({ sql: keys.map(() => '(?, ?)').join(', '), values: keys.flatMap((k) => [k.scope, k.key]) });

function refusal(rows: Row[], now: Date, s: ThrottleSettings): Charge | null {
  const blocked = rows
    .filter((r) => r.blocked_until && r.blocked_until.getTime() > now.getTime())
    .sort((a, b) => b.blocked_until!.getTime() - a.blocked_until!.getTime())[0];
  if (!blocked) return null;
  return { allowed: false, scope: blocked.scope, retryAfterMs: blocked.blocked_until!.getTime() - now.getTime(), lockedOut: blocked.failures >= s.lockoutFailures };
}

/**
 * Charges one attempt to every key, unless one of them is still blocked:
 * then nothing is charged and the answer says how long to wait. A blocked
 * key is first looked for without a lock, so a flood against a locked name
 * or address costs one indexed read each and holds no connection waiting on
 * a row lock. Rows are locked user first, then address (the order every
 * caller uses), so two attempts never wait on each other in a circle; the
 * lock is held for one UPDATE and the commit.
 */
export async function chargeAttempt(db: Knex, keys: ThrottleKey[], now: Date, s: ThrottleSettings): Promise<Charge> {
  const { sql, values } = pairs(keys);
  const { rows: seen } = (await db.raw(
    `SELECT scope, key, failures, last_failure_at, blocked_until FROM admin_login_throttle WHERE (scope, key) IN (${sql}) AND blocked_until > ?`,
    [...values, now],
  )) as { rows: Row[] };
  const early = refusal(seen, now, s);
  if (early) return early;
  return db.transaction(async (trx) => {
    // Inserts the missing rows and locks all of them in one statement, in the order given.
    const { rows } = (await trx.raw(
      `INSERT INTO admin_login_throttle AS t (scope, key) VALUES ${sql}
         ON CONFLICT (scope, key) DO UPDATE SET failures = t.failures
       RETURNING scope, key, failures, last_failure_at, blocked_until`,
      values,
    )) as { rows: Row[] };
    const refused = refusal(rows, now, s);
    if (refused) return refused;
    const failures = rows.map((r) => {
      const forgotten = !r.last_failure_at || now.getTime() - r.last_failure_at.getTime() > s.forgetMs;
      const count = (forgotten ? 0 : r.failures) + 1;
      const wait = waitAfter(count, s);
      const until = wait.ms > 0 ? new Date(now.getTime() + wait.ms) : null;
      return { scope: r.scope, key: r.key, failures: count, until, lockedUntil: wait.lockout ? until : null };
    });
    await trx.raw(
      `UPDATE admin_login_throttle AS t SET failures = v.failures, last_failure_at = ?, blocked_until = v.until
         FROM (VALUES ${failures.map(() => '(?, ?, ?::int, ?::timestamptz)').join(', ')}) AS v (scope, key, failures, until)
        WHERE t.scope = v.scope AND t.key = v.key`,
      [now, ...failures.flatMap((f) => [f.scope, f.key, f.failures, f.until])],
    );
    return { allowed: true as const, failures: failures.map(({ until: _until, ...f }) => f) };
  });
}

/** A successful login: its name and address start again from zero. */
export async function clearAttempts(db: Db, keys: ThrottleKey[]): Promise<void> {
  const { sql, values } = pairs(keys);
  await db.raw(`DELETE FROM admin_login_throttle WHERE (scope, key) IN (${sql})`, values);
}

/** Rows neither blocking nor remembered any more. */
export async function deleteStaleAttempts(db: Db, now: Date, s: ThrottleSettings): Promise<number> {
  const { rowCount } = await db.raw(
    `DELETE FROM admin_login_throttle WHERE (blocked_until IS NULL OR blocked_until <= ?) AND (last_failure_at IS NULL OR last_failure_at < ?)`,
    [now, new Date(now.getTime() - s.forgetMs)],
  );
  return rowCount as number;
}

/** Each user's lock, for `herald admin list-users`. */
export async function userLocks(db: Db, now: Date): Promise<Map<string, { failures: number; blockedUntil: Date | null }>> {
  const { rows } = (await db.raw(
    `SELECT key, failures, blocked_until FROM admin_login_throttle WHERE scope = 'user' AND blocked_until > ?`,
    [now],
  )) as { rows: { key: string; failures: number; blocked_until: Date }[] };
  return new Map(rows.map((r) => [r.key, { failures: r.failures, blockedUntil: r.blocked_until }]));
}
