import type { Knex } from 'knex';
import { runScript } from '../src/db/statements.js';

// Operations (src/admin, src/mail; issue 7).
//
// admin_users: people who log in to /admin. Only an scrypt hash of the
// password is stored ("scrypt$N$r$p$salt$hash", src/admin/passwords.ts).
//
// api_keys.scopes: what a key may do. Existing keys keep the API ('api');
// a key with 'admin' may also log in to /admin.
//
// failure_mails: one row per entry of a job into failed_permanent, written in
// the transaction that moved the job (only the compare-and-set winner gets
// there), so the unique (job_id, failed_at) is the "exactly one mail" marker.
// It keeps a snapshot of the failure (the job may be retried or cleared
// before the mail goes out) and no foreign key, so clearing a job keeps its
// mail history. status: pending -> sending (claimed) -> sent.

export async function up(knex: Knex): Promise<void> {
  await runScript(knex, `
    CREATE TABLE admin_users (
      id             serial PRIMARY KEY,
      name           text NOT NULL CHECK (name ~ '^[A-Za-z0-9_.@-]{1,100}$'),
      password_hash  text NOT NULL CHECK (password_hash LIKE 'scrypt$%'),
      created_at     timestamptz NOT NULL DEFAULT now(),
      disabled_at    timestamptz,
      CONSTRAINT ux_admin_users_name UNIQUE (name)
    );

    ALTER TABLE api_keys ADD COLUMN scopes text[] NOT NULL DEFAULT '{api}'
      CHECK (scopes <@ ARRAY['api', 'admin']::text[]);

    CREATE TABLE failure_mails (
      id            bigserial PRIMARY KEY,
      job_id        bigint NOT NULL,
      failed_at     timestamptz NOT NULL,
      job_kind      text NOT NULL,
      subject_type  text,
      subject_id    text,
      attempts      integer NOT NULL,
      error_class   text,
      last_error    text,
      status        text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sending', 'sent')),
      claimed_at    timestamptz,
      claim_token   uuid,
      sent_at       timestamptz,
      message_id    text,
      created_at    timestamptz NOT NULL DEFAULT now(),
      CONSTRAINT ux_failure_mails_job_failure UNIQUE (job_id, failed_at),
      CONSTRAINT ck_failure_mails_sent CHECK ((status = 'sent') = (sent_at IS NOT NULL))
    );
  `);
}

export async function down(knex: Knex): Promise<void> {
  await runScript(knex, `
    DROP TABLE failure_mails;
    ALTER TABLE api_keys DROP COLUMN scopes;
    DROP TABLE admin_users;
  `);
}
