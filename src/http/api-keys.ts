import crypto from 'node:crypto';
import type { Knex } from 'knex';
import { isUniqueViolation } from '../db/errors.js';
import { sha256Hex } from '../lib/digest.js';
import { findActiveApiKeyByHash, insertApiKey } from './store.js';

// API keys: "hk_" + 32 random bytes (base64url). Only the SHA-256 is stored.
// A fast hash is right here: the key has 256 bits of entropy, so there is no
// dictionary to try, and a slow KDF (bcrypt, argon2) would cost milliseconds
// on every request against the p99 < 10 ms target.

const KEY_PREFIX = 'hk_';

export interface ApiKeyPrincipal {
  id: number;
  name: string;
}

export class ApiKeyNameTaken extends Error {
  constructor(name: string, options?: { cause?: unknown }) {
    super(`an API key named "${name}" already exists`, options);
    this.name = 'ApiKeyNameTaken';
  }
}

export function hashApiKey(key: string): string {
  return sha256Hex(key);
}

/** Creates a key; the plain key is returned once and never stored. */
export async function createApiKey(db: Knex, name: string): Promise<ApiKeyPrincipal & { key: string; prefix: string }> {
  const key = `${KEY_PREFIX}${crypto.randomBytes(32).toString('base64url')}`;
  const prefix = key.slice(0, KEY_PREFIX.length + 8);
  try {
    const row = await insertApiKey(db, { name, key_prefix: prefix, key_hash: hashApiKey(key) });
    return { id: row.id, name: row.name, key, prefix };
  } catch (err) {
    if (isUniqueViolation(err, 'ux_api_keys_name')) throw new ApiKeyNameTaken(name, { cause: err });
    throw err;
  }
}

/**
 * Checks keys against api_keys, remembering good ones for ttlMs so a busy
 * client costs one lookup per ttl instead of one per request. A revoked key
 * therefore keeps working for at most ttlMs in a process that saw it.
 * Unknown keys are never cached (a flood of them cannot fill memory).
 */
export class ApiKeyVerifier {
  private readonly cache = new Map<string, { principal: ApiKeyPrincipal; until: number }>();
  constructor(
    private readonly db: Knex,
    private readonly opts: { ttlMs: number; maxEntries?: number; now?: () => number } = { ttlMs: 30_000 },
  ) {}

  async verify(key: string): Promise<ApiKeyPrincipal | null> {
    if (!key.startsWith(KEY_PREFIX)) return null;
    const hash = hashApiKey(key);
    const now = (this.opts.now ?? Date.now)();
    const hit = this.cache.get(hash);
    if (hit && hit.until > now) return hit.principal;
    const row = await findActiveApiKeyByHash(this.db, hash);
    if (!row) {
      this.cache.delete(hash);
      return null;
    }
    const principal = { id: row.id, name: row.name };
    if (this.cache.size >= (this.opts.maxEntries ?? 10_000)) this.cache.clear();
    if (this.opts.ttlMs > 0) this.cache.set(hash, { principal, until: now + this.opts.ttlMs });
    return principal;
  }
}

/**
 * The key from "Authorization: Bearer <key>", or from Basic credentials
 * (any user name, the key as password) so a browser can use the UI form.
 */
export function apiKeyFromHeader(header: string | undefined): string | null {
  if (!header) return null;
  const [scheme, value] = header.split(' ', 2);
  if (!value) return null;
  if (/^bearer$/i.test(scheme!)) return value.trim();
  if (/^basic$/i.test(scheme!)) {
    const decoded = Buffer.from(value, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    return colon >= 0 ? decoded.slice(colon + 1) : null;
  }
  return null;
}
