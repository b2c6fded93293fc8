import type { Knex } from 'knex';

// Every SQL statement on api_keys.

type Db = Knex | Knex.Transaction;

export interface ApiKeyRow {
  id: number;
  name: string;
  key_prefix: string;
  key_hash: string;
  created_at: Date;
  revoked_at: Date | null;
}

export async function insertApiKey(db: Db, key: { name: string; key_prefix: string; key_hash: string }): Promise<ApiKeyRow> {
  const { rows } = await db.raw(`INSERT INTO api_keys (name, key_prefix, key_hash) VALUES (?, ?, ?) RETURNING *`, [
    key.name,
    key.key_prefix,
    key.key_hash,
  ]);
  return rows[0] as ApiKeyRow;
}

export async function findActiveApiKeyByHash(db: Db, keyHash: string): Promise<ApiKeyRow | null> {
  const { rows } = await db.raw(`SELECT * FROM api_keys WHERE key_hash = ? AND revoked_at IS NULL`, [keyHash]);
  return (rows[0] as ApiKeyRow | undefined) ?? null;
}

export async function listApiKeys(db: Db): Promise<ApiKeyRow[]> {
  const { rows } = await db.raw(`SELECT * FROM api_keys ORDER BY id`);
  return rows as ApiKeyRow[];
}

/** Active -> revoked; null when no active key has that name. */
export async function revokeApiKey(db: Db, name: string): Promise<ApiKeyRow | null> {
  const { rows } = await db.raw(`UPDATE api_keys SET revoked_at = now() WHERE name = ? AND revoked_at IS NULL RETURNING *`, [name]);
  return (rows[0] as ApiKeyRow | undefined) ?? null;
}
