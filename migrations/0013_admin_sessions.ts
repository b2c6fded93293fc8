import type { Knex } from 'knex';
import { runScript } from '../src/db/statements.js';

// /admin sessions and login throttling (src/admin; issue 12; decision 0012).
//
// admin_sessions: one row per logged-in browser. The cookie holds a random
// 256-bit token; only its SHA-256 is stored, so a copy of this table logs no
// one in. A session belongs to a user or to an admin API key; deleting the
// row (logout, password change, user disabled) ends it at the next request.
// Expired rows are deleted when someone logs in.
//
// admin_login_throttle: failed-login counters per user name and per client
// address (IPv6 by /64), shared by every `herald serve` process. A row is
// charged before the password hash runs; blocked_until is when its next
// attempt may run (growing delay, then a lockout).

export async function up(knex: Knex): Promise<void> {
  await runScript(knex, `
    CREATE TABLE admin_sessions (
      token_hash   text PRIMARY KEY CHECK (token_hash ~ '^[0-9a-f]{64}$'),
      user_id      integer REFERENCES admin_users (id) ON DELETE CASCADE,
      api_key_id   integer REFERENCES api_keys (id) ON DELETE CASCADE,
      address      text,
      created_at   timestamptz NOT NULL,
      expires_at   timestamptz NOT NULL,
      CONSTRAINT ck_admin_sessions_one_principal CHECK ((user_id IS NULL) <> (api_key_id IS NULL))
    );
    CREATE INDEX ix_admin_sessions_user ON admin_sessions (user_id) WHERE user_id IS NOT NULL;
    CREATE INDEX ix_admin_sessions_api_key ON admin_sessions (api_key_id) WHERE api_key_id IS NOT NULL;
    CREATE INDEX ix_admin_sessions_expires ON admin_sessions (expires_at);

    CREATE TABLE admin_login_throttle (
      scope            text NOT NULL CHECK (scope IN ('user', 'address')),
      key              text NOT NULL CHECK (key <> ''),
      failures         integer NOT NULL DEFAULT 0 CHECK (failures >= 0),
      last_failure_at  timestamptz,
      blocked_until    timestamptz,
      PRIMARY KEY (scope, key)
    );
    CREATE INDEX ix_admin_login_throttle_last_failure ON admin_login_throttle (last_failure_at);
  `);
}

export async function down(knex: Knex): Promise<void> {
  await runScript(knex, `
    DROP TABLE admin_login_throttle;
    DROP TABLE admin_sessions;
  `);
}
