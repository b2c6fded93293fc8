import crypto from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Knex } from 'knex';
import { hashApiKey } from '../http/api-keys.js';
import { burnPasswordCheck, verifyPassword } from './passwords.js';
import { findActiveAdminUser, findAdminApiKeyByHash, getActiveAdminUser, isAdminApiKeyActive } from './store.js';

// /admin sessions: a signed cookie (@fastify/cookie, HMAC with
// ADMIN_SESSION_SECRET) holding who logged in and until when. Nothing is
// stored server-side; each request re-checks that the user or key is still
// active, so disabling a user or revoking a key ends their sessions at once.

export const SESSION_COOKIE = 'herald_admin';

export interface AdminPrincipal {
  kind: 'user' | 'key';
  id: number;
  name: string;
}

/** A random secret when none is configured: sessions then end with the process. */
export function sessionSecret(configured: string | undefined): string {
  return configured ?? crypto.randomBytes(32).toString('hex');
}

export async function checkLogin(db: Knex, form: { name?: string; password?: string; apiKey?: string }): Promise<AdminPrincipal | null> {
  if (form.apiKey) {
    const key = await findAdminApiKeyByHash(db, hashApiKey(form.apiKey.trim()));
    return key ? { kind: 'key', id: key.id, name: `key ${key.name}` } : null;
  }
  if (!form.name || !form.password) return null;
  const user = await findActiveAdminUser(db, form.name);
  if (!user) {
    await burnPasswordCheck(form.password);
    return null;
  }
  return (await verifyPassword(form.password, user.password_hash)) ? { kind: 'user', id: user.id, name: user.name } : null;
}

export function startSession(reply: FastifyReply, who: AdminPrincipal, ttlMs: number, now: Date): void {
  const until = now.getTime() + ttlMs;
  reply.setCookie(SESSION_COOKIE, `${who.kind}:${who.id}:${until}`, {
    signed: true, httpOnly: true, sameSite: 'lax', path: '/admin', maxAge: Math.floor(ttlMs / 1000),
  });
}

export function endSession(reply: FastifyReply): void {
  reply.clearCookie(SESSION_COOKIE, { path: '/admin' });
}

export async function readSession(db: Knex, req: FastifyRequest, now: Date): Promise<AdminPrincipal | null> {
  const raw = req.cookies[SESSION_COOKIE];
  if (!raw) return null;
  const unsigned = req.unsignCookie(raw);
  if (!unsigned.valid || !unsigned.value) return null;
  const [kind, id, until] = unsigned.value.split(':');
  if (Number(until) <= now.getTime()) return null;
  if (kind === 'user') {
    const user = await getActiveAdminUser(db, Number(id));
    return user ? { kind: 'user', id: user.id, name: user.name } : null;
  }
  if (kind === 'key' && (await isAdminApiKeyActive(db, Number(id)))) return { kind: 'key', id: Number(id), name: `key ${id}` };
  return null;
}
