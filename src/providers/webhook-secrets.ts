import crypto from 'node:crypto';
import type { DbOrTrx } from '../db/index.js';
import { digestMatches, sha256Hex } from '../lib/digest.js';

// Per-company webhook secrets (provider_webhook_secrets, migration 0015).
// Only SHA-256 digests are stored: the PAC presents the secret on every
// delivery and Herald compares digests, so a database dump does not let
// anyone sign a webhook. Secrets Herald generates are 32 random bytes, so a
// fast hash is enough (no dictionary to search); operator-supplied ones
// must be at least MIN_SECRET_LENGTH characters, as PROVIDER_WEBHOOK_SECRET.

export const MIN_SECRET_LENGTH = 16;
export const MAX_SECRET_LENGTH = 1000;

export interface WebhookSecretRow {
  company_id: string;
  secret_sha256: string;
  previous_secret_sha256: string | null;
  previous_valid_until: Date | null;
  created_at: Date;
  updated_at: Date;
}

/** What an operator may see of a company's secret: never the digest. */
export interface WebhookSecretInfo {
  companyId: string;
  previousValidUntil: Date | null;
  createdAt: Date;
  updatedAt: Date;
}

export function toInfo(r: WebhookSecretRow): WebhookSecretInfo {
  const previousValidUntil = r.previous_valid_until && r.previous_valid_until.getTime() > Date.now() ? r.previous_valid_until : null;
  return { companyId: r.company_id, previousValidUntil, createdAt: r.created_at, updatedAt: r.updated_at };
}

/** 32 random bytes, base64url: what `herald webhooks set-secret` hands out unless given one. */
export function generateSecret(): string {
  return crypto.randomBytes(32).toString('base64url');
}

/**
 * Sets a company's secret. keepPreviousMs > 0 on a company that had one
 * keeps the old secret valid that long (rotation without refused deliveries);
 * 0 replaces it at once.
 */
export async function setWebhookSecret(db: DbOrTrx, companyId: string, secret: string, keepPreviousMs = 0): Promise<WebhookSecretRow> {
  const { rows } = await db.raw(
    `INSERT INTO provider_webhook_secrets AS s (company_id, secret_sha256)
     VALUES (?, ?)
     ON CONFLICT (company_id) DO UPDATE
       SET secret_sha256 = EXCLUDED.secret_sha256,
           previous_secret_sha256 = CASE WHEN ?::bigint > 0 THEN s.secret_sha256 END,
           previous_valid_until = CASE WHEN ?::bigint > 0 THEN now() + make_interval(secs => ?::bigint / 1000.0) END,
           updated_at = now()
     RETURNING *`,
    [companyId, sha256Hex(secret), keepPreviousMs, keepPreviousMs, keepPreviousMs],
  );
  return rows[0] as WebhookSecretRow;
}

export async function removeWebhookSecret(db: DbOrTrx, companyId: string): Promise<boolean> {
  const { rowCount } = await db.raw(`DELETE FROM provider_webhook_secrets WHERE company_id = ?`, [companyId]);
  return (rowCount ?? 0) > 0;
}

export async function listWebhookSecrets(db: DbOrTrx): Promise<WebhookSecretRow[]> {
  const { rows } = await db.raw(`SELECT * FROM provider_webhook_secrets ORDER BY company_id`);
  return rows as WebhookSecretRow[];
}

/**
 * Whether `given` may deliver webhooks for the company: its own secret (or
 * the previous one within its grace) when it has a row, else the global one.
 */
export async function webhookSecretAccepted(db: DbOrTrx, companyId: string | null, given: string | undefined, globalSecret: string | undefined): Promise<boolean> {
  if (!given) return false;
  if (companyId !== null) {
    // The database's clock decides the grace, as it set it.
    const { rows } = await db.raw(
      `SELECT secret_sha256, CASE WHEN previous_valid_until > now() THEN previous_secret_sha256 END AS previous
         FROM provider_webhook_secrets WHERE company_id = ?`,
      [companyId],
    );
    const row = rows[0] as { secret_sha256: string; previous: string | null } | undefined;
    // Both compared, so the timing does not tell which one matched.
    if (row) return [digestMatches(given, row.secret_sha256), digestMatches(given, row.previous)].some(Boolean);
  }
  return !!globalSecret && digestMatches(given, sha256Hex(globalSecret));
}
