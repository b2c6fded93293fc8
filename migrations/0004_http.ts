import type { Knex } from 'knex';
import { runScript } from '../src/db/statements.js';

// API keys for the HTTP API (owned by src/http). Only a SHA-256 of each key is
// stored: keys are 32 random bytes, so a fast hash is enough (no dictionary to
// guess from) and keeps authentication off the request's critical path.
// key_prefix is the non-secret head shown in listings so an operator can tell
// keys apart.

export async function up(knex: Knex): Promise<void> {
  await runScript(knex, `
    CREATE TABLE api_keys (
      id           serial PRIMARY KEY,
      name         text NOT NULL CHECK (name <> ''),
      key_prefix   text NOT NULL,
      key_hash     text NOT NULL CHECK (key_hash ~ '^[0-9a-f]{64}$'),
      created_at   timestamptz NOT NULL DEFAULT now(),
      revoked_at   timestamptz,
      CONSTRAINT ux_api_keys_name UNIQUE (name),
      CONSTRAINT ux_api_keys_hash UNIQUE (key_hash)
    );
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('DROP TABLE api_keys');
}
