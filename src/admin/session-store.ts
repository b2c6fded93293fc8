import type { Knex } from 'knex';

// Every SQL statement on admin_sessions (migrations/0013_admin_sessions.ts).
// Sessions are found by the SHA-256 of the cookie's token; the principal is
// joined in the same query, so a disabled user or a revoked key has no
// session from that moment on even before its rows are deleted.

type Db = Knex | Knex.Transaction;

export interface NewSession {
  tokenHash: string;
  userId?: number;
  apiKeyId?: number;
  address: string;
  createdAt: Date;
  expiresAt: Date;
}

export async function insertSession(db: Db, s: NewSession): Promise<void> {
  await db.raw(
    `INSERT INTO admin_sessions (token_hash, user_id, api_key_id, address, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)`,
    [s.tokenHash, s.userId ?? null, s.apiKeyId ?? null, s.address, s.createdAt, s.expiresAt],
  );
}

export interface SessionRow {
  user_id: number | null;
  api_key_id: number | null;
  user_name: string | null;
  key_name: string | null;
}

/** A session that has not expired and whose user is active / key unrevoked with the admin scope. */
export async function findLiveSession(db: Db, tokenHash: string, now: Date): Promise<SessionRow | null> {
  const { rows } = await db.raw(
    `SELECT s.user_id, s.api_key_id, u.name AS user_name, k.name AS key_name
       FROM admin_sessions s
       LEFT JOIN admin_users u ON u.id = s.user_id AND u.disabled_at IS NULL
       LEFT JOIN api_keys k ON k.id = s.api_key_id AND k.revoked_at IS NULL AND 'admin' = ANY(k.scopes)
      WHERE s.token_hash = ? AND s.expires_at > ? AND (u.id IS NOT NULL OR k.id IS NOT NULL)`,
    [tokenHash, now],
  );
  return (rows[0] as SessionRow | undefined) ?? null;
}

export async function deleteSession(db: Db, tokenHash: string): Promise<void> {
  await db.raw(`DELETE FROM admin_sessions WHERE token_hash = ?`, [tokenHash]);
}

export async function deleteUserSessions(db: Db, userId: number): Promise<number> {
  const { rowCount } = await db.raw(`DELETE FROM admin_sessions WHERE user_id = ?`, [userId]);
  return rowCount as number;
}

export async function deleteExpiredSessions(db: Db, now: Date): Promise<number> {
  const { rowCount } = await db.raw(`DELETE FROM admin_sessions WHERE expires_at <= ?`, [now]);
  return rowCount as number;
}

/** Live sessions per user id, for `herald admin list-users`. */
export async function countUserSessions(db: Db, now: Date): Promise<Map<number, number>> {
  const { rows } = await db.raw(`SELECT user_id, count(*)::int AS n FROM admin_sessions WHERE user_id IS NOT NULL AND expires_at > ? GROUP BY user_id`, [now]);
  return new Map((rows as { user_id: number; n: number }[]).map((r) => [r.user_id, r.n]));
}
