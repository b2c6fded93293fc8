import crypto from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Knex } from 'knex';
import { sha256Hex } from '../lib/digest.js';
import { deleteSession, findLiveSession, insertSession } from './session-store.js';

// /admin sessions, server-side (admin_sessions, decision 0012): the cookie
// holds a random 256-bit token and the table only its SHA-256. Logout
// deletes the row; a password change or a disabled user deletes all of that
// user's rows (src/admin/users.ts); a revoked key stops matching the join.
// The cookie is HttpOnly, SameSite=Lax (a link from a mail or an alert still
// opens /admin logged in; every POST also needs the CSRF token), path
// /admin, and Secure whenever the request came over TLS (request.protocol,
// which believes X-Forwarded-Proto only from HTTP_TRUST_PROXY).

export const SESSION_COOKIE = 'herald_admin';

export interface AdminPrincipal {
  kind: 'user' | 'key';
  id: number;
  name: string;
}

/** A random secret when none is configured: CSRF tokens then end with the process. */
export function sessionSecret(configured: string | undefined): string {
  return configured ?? crypto.randomBytes(32).toString('hex');
}

/** Cookie options: also for the CSRF cookie, so both get Secure over TLS. */
export const COOKIE_BASE = { httpOnly: true, path: '/admin', secure: 'auto' } as const;

export async function startSession(db: Knex, req: FastifyRequest, reply: FastifyReply, who: AdminPrincipal, ttlMs: number, now: Date): Promise<void> {
  // A fresh token on every login: one planted in the browser beforehand (session fixation) is never promoted.
  const old = req.cookies[SESSION_COOKIE];
  if (old) await deleteSession(db, sha256Hex(old));
  const token = crypto.randomBytes(32).toString('base64url');
  await insertSession(db, {
    tokenHash: sha256Hex(token),
    ...(who.kind === 'user' ? { userId: who.id } : { apiKeyId: who.id }),
    address: req.ip,
    createdAt: now,
    expiresAt: new Date(now.getTime() + ttlMs),
  });
  reply.setCookie(SESSION_COOKIE, token, { ...COOKIE_BASE, sameSite: 'lax', maxAge: Math.floor(ttlMs / 1000) });
}

export async function endSession(db: Knex, req: FastifyRequest, reply: FastifyReply): Promise<void> {
  const token = req.cookies[SESSION_COOKIE];
  if (token) await deleteSession(db, sha256Hex(token));
  reply.clearCookie(SESSION_COOKIE, { ...COOKIE_BASE, sameSite: 'lax' });
}

export async function readSession(db: Knex, req: FastifyRequest, now: Date): Promise<AdminPrincipal | null> {
  const token = req.cookies[SESSION_COOKIE];
  // 32 random bytes in base64url; anything else (an old signed cookie, junk) is no session.
  if (!token || !/^[A-Za-z0-9_-]{43}$/.test(token)) return null;
  const row = await findLiveSession(db, sha256Hex(token), now);
  if (!row) return null;
  if (row.user_id !== null) return { kind: 'user', id: row.user_id, name: row.user_name! };
  return { kind: 'key', id: row.api_key_id!, name: `key ${row.key_name!}` };
}
