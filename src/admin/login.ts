import type { FastifyBaseLogger } from 'fastify';
import type { Knex } from 'knex';
import { hashApiKey } from '../http/api-keys.js';
import { burnPasswordCheck, verifyPassword } from './passwords.js';
import { HashingBusy, type HashingGate } from './hashing-gate.js';
import type { AdminPrincipal } from './session.js';
import { deleteExpiredSessions } from './session-store.js';
import { findActiveAdminUser, findAdminApiKeyByHash } from './store.js';
import { addressKey, chargeAttempt, clearAttempts, deleteStaleAttempts, type ThrottleKey, type ThrottleSettings } from './throttle.js';

// One /admin login attempt: throttle first (src/admin/throttle.ts), then the
// password check through the hashing gate, then the answer. Every refusal is
// logged with the user name and client address, never the password or key.

export interface LoginForm {
  name?: string;
  password?: string;
  apiKey?: string;
}

export type LoginOutcome =
  | { kind: 'ok'; who: AdminPrincipal }
  | { kind: 'refused' }
  | { kind: 'throttled'; retryAfterS: number; scope: 'user' | 'address'; lockedOut: boolean }
  | { kind: 'busy' };

export interface LoginContext {
  db: Knex;
  log: FastifyBaseLogger;
  gate: HashingGate;
  settings: ThrottleSettings;
  now: Date;
  /** When this server last deleted expired rows (see cleanup). */
  cleaned: { at: number };
}

// Expired sessions and forgotten throttle rows are deleted on a login that
// passes the throttle, at most once a minute per server.
const CLEANUP_EVERY_MS = 60_000;

async function cleanup(ctx: LoginContext): Promise<void> {
  if (Math.abs(ctx.now.getTime() - ctx.cleaned.at) < CLEANUP_EVERY_MS) return;
  ctx.cleaned.at = ctx.now.getTime();
  const [sessions, rows] = await Promise.all([deleteExpiredSessions(ctx.db, ctx.now), deleteStaleAttempts(ctx.db, ctx.now, ctx.settings)]);
  if (sessions + rows > 0) ctx.log.info({ expiredSessions: sessions, throttleRows: rows }, 'admin: expired sessions and old login failures deleted');
}

async function checkCredentials(ctx: LoginContext, form: LoginForm): Promise<AdminPrincipal | null> {
  if (form.apiKey) {
    const key = await findAdminApiKeyByHash(ctx.db, hashApiKey(form.apiKey.trim()));
    return key ? { kind: 'key', id: key.id, name: `key ${key.name}` } : null;
  }
  const user = await findActiveAdminUser(ctx.db, form.name!);
  if (!user) {
    await ctx.gate(() => burnPasswordCheck(form.password!));
    return null;
  }
  return (await ctx.gate(() => verifyPassword(form.password!, user.password_hash))) ? { kind: 'user', id: user.id, name: user.name } : null;
}

export async function attemptLogin(ctx: LoginContext, form: LoginForm, ip: string): Promise<LoginOutcome> {
  const address = addressKey(ip);
  const byKey = Boolean(form.apiKey);
  // Nothing to check, nothing to hash: not an attempt.
  if (!byKey && (!form.name || !form.password)) return { kind: 'refused' };
  const user = byKey ? undefined : form.name!;
  // An admin key is 256 random bits: only the address is counted for it.
  const keys: ThrottleKey[] = [...(user ? [{ scope: 'user' as const, key: user }] : []), { scope: 'address', key: address }];
  const logged = { user, address, byKey };

  const charge = await chargeAttempt(ctx.db, keys, ctx.now, ctx.settings);
  if (!charge.allowed) {
    const retryAfterS = Math.max(1, Math.ceil(charge.retryAfterMs / 1000));
    ctx.log.warn({ ...logged, throttledBy: charge.scope, lockedOut: charge.lockedOut, retryAfterS }, 'admin login throttled (not checked)');
    return { kind: 'throttled', retryAfterS, scope: charge.scope, lockedOut: charge.lockedOut };
  }
  await cleanup(ctx);

  let who: AdminPrincipal | null;
  try {
    who = await checkCredentials(ctx, form);
  } catch (err) {
    if (!(err instanceof HashingBusy)) throw err;
    ctx.log.warn(logged, 'admin login refused: too many password checks at once');
    return { kind: 'busy' };
  }
  if (who) {
    await clearAttempts(ctx.db, keys);
    ctx.log.info({ ...logged, who: who.name }, 'admin login');
    return { kind: 'ok', who };
  }
  const failures = Object.fromEntries(charge.failures.map((f) => [f.scope, f.failures]));
  ctx.log.warn({ ...logged, failures }, 'admin login refused');
  for (const f of charge.failures) {
    if (f.lockedUntil) ctx.log.warn({ ...logged, lockedScope: f.scope, failures: f.failures, lockedUntil: f.lockedUntil.toISOString() }, `admin login locked out: ${f.scope} ${f.key}`);
  }
  return { kind: 'refused' };
}
