import type { Knex } from 'knex';
import { runScript } from '../src/db/statements.js';

// provider_webhook_secrets (owned by src/providers): a PAC company's own
// webhook secret. POST /webhooks/pac/{companyId} for a company with a row
// accepts only that company's secret (the global PROVIDER_WEBHOOK_SECRET no
// longer), so one leaked secret moves one company's documents, not every
// company's. Only the SHA-256 of the secret is kept: the PAC sends it, Herald
// compares digests and never needs it back (docs/decisions/0013). A rotation
// may keep the previous digest valid until previous_valid_until, so the PAC
// can be switched without a window of refused deliveries.

export async function up(knex: Knex): Promise<void> {
  await runScript(knex, `
    CREATE TABLE provider_webhook_secrets (
      company_id             text PRIMARY KEY CHECK (company_id <> '' AND length(company_id) <= 200),
      secret_sha256          text NOT NULL CHECK (secret_sha256 ~ '^[0-9a-f]{64}$'),
      previous_secret_sha256 text CHECK (previous_secret_sha256 ~ '^[0-9a-f]{64}$'),
      previous_valid_until   timestamptz,
      created_at             timestamptz NOT NULL DEFAULT now(),
      updated_at             timestamptz NOT NULL DEFAULT now(),
      CONSTRAINT ck_provider_webhook_secrets_previous CHECK ((previous_secret_sha256 IS NULL) = (previous_valid_until IS NULL))
    );
  `);
}

export async function down(knex: Knex): Promise<void> {
  await runScript(knex, `DROP TABLE provider_webhook_secrets;`);
}
