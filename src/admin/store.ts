import type { Knex } from 'knex';

// Every SQL statement on admin_users and api_keys.scopes (migrations/0008_ops.ts);
// sessions are in session-store.ts, login failures in throttle.ts.

type Db = Knex | Knex.Transaction;

export interface AdminUserRow {
  id: number;
  name: string;
  password_hash: string;
  created_at: Date;
  disabled_at: Date | null;
}

export async function insertAdminUser(db: Db, name: string, passwordHash: string): Promise<AdminUserRow> {
  const { rows } = await db.raw(`INSERT INTO admin_users (name, password_hash) VALUES (?, ?) RETURNING *`, [name, passwordHash]);
  return rows[0] as AdminUserRow;
}

export async function findActiveAdminUser(db: Db, name: string): Promise<AdminUserRow | null> {
  const { rows } = await db.raw(`SELECT * FROM admin_users WHERE name = ? AND disabled_at IS NULL`, [name]);
  return (rows[0] as AdminUserRow | undefined) ?? null;
}

/** A user by name, active or not (for `herald admin` commands). */
export async function findAdminUserByName(db: Db, name: string): Promise<AdminUserRow | null> {
  const { rows } = await db.raw(`SELECT * FROM admin_users WHERE name = ?`, [name]);
  return (rows[0] as AdminUserRow | undefined) ?? null;
}

export async function setAdminPasswordHash(db: Db, id: number, passwordHash: string): Promise<void> {
  await db.raw(`UPDATE admin_users SET password_hash = ? WHERE id = ?`, [passwordHash, id]);
}

/** disabledAt null enables; an already disabled user keeps its first disabled_at. */
export async function setAdminUserDisabled(db: Db, id: number, disabledAt: Date | null): Promise<AdminUserRow> {
  const { rows } = await db.raw(`UPDATE admin_users SET disabled_at = CASE WHEN ?::timestamptz IS NULL THEN NULL ELSE coalesce(disabled_at, ?) END WHERE id = ? RETURNING *`, [
    disabledAt, disabledAt, id,
  ]);
  return rows[0] as AdminUserRow;
}

export async function listAdminUsers(db: Db): Promise<AdminUserRow[]> {
  const { rows } = await db.raw(`SELECT * FROM admin_users ORDER BY name`);
  return rows as AdminUserRow[];
}

export async function grantApiKeyScope(db: Db, keyId: number, scope: 'admin' | 'api'): Promise<boolean> {
  const { rows } = await db.raw(
    `UPDATE api_keys SET scopes = array_append(scopes, ?) WHERE id = ? AND NOT (? = ANY(scopes)) RETURNING id`,
    [scope, keyId, scope],
  );
  return rows.length > 0;
}

/** An active key with the admin scope, by its SHA-256. */
export async function findAdminApiKeyByHash(db: Db, keyHash: string): Promise<{ id: number; name: string } | null> {
  const { rows } = await db.raw(`SELECT id, name FROM api_keys WHERE key_hash = ? AND revoked_at IS NULL AND 'admin' = ANY(scopes)`, [keyHash]);
  return (rows[0] as { id: number; name: string } | undefined) ?? null;
}
