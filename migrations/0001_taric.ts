import type { Knex } from 'knex';
import { runScript } from '../src/db/statements.js';

// TARIC export tables (owned by src/taric and src/exporter).
// Envelope ids and TARIC transaction ids are allocated under a lock on
// envelopes (src/taric/allocate.ts); the unique constraints here are the
// backstop that turns any allocation bug into an error instead of a duplicate.

export async function up(knex: Knex): Promise<void> {
  await runScript(knex, `
    CREATE TABLE workbaskets (
      id                serial PRIMARY KEY,
      title             text NOT NULL,
      reason            text NOT NULL DEFAULT '',
      status            text NOT NULL DEFAULT 'EDITING'
                        CHECK (status IN ('EDITING', 'READY_FOR_EXPORT', 'SENT', 'PUBLISHED', 'ERRORED')),
      created_at        timestamptz NOT NULL DEFAULT now(),
      status_changed_at timestamptz NOT NULL DEFAULT now()
    );

    CREATE TABLE transactions (
      id            serial PRIMARY KEY,
      workbasket_id integer NOT NULL REFERENCES workbaskets (id) ON DELETE CASCADE,
      position      integer NOT NULL CHECK (position >= 1),
      CONSTRAINT ux_transactions_workbasket_position UNIQUE (workbasket_id, position)
    );

    CREATE TABLE records (
      id             bigserial PRIMARY KEY,
      transaction_id integer NOT NULL REFERENCES transactions (id) ON DELETE CASCADE,
      position       integer NOT NULL CHECK (position >= 1),
      record_type    text NOT NULL,
      update_type    smallint NOT NULL CHECK (update_type IN (1, 2, 3)),
      fields         jsonb NOT NULL,
      CONSTRAINT ux_records_transaction_position UNIQUE (transaction_id, position)
    );

    CREATE TABLE envelopes (
      id          serial PRIMARY KEY,
      envelope_id text NOT NULL CHECK (envelope_id ~ '^[0-9]{6}$'),
      year        smallint NOT NULL CHECK (year BETWEEN 0 AND 99),
      counter     integer NOT NULL CHECK (counter BETWEEN 1 AND 9999),
      size_bytes  bigint NOT NULL,
      md5         text NOT NULL,
      created_at  timestamptz NOT NULL DEFAULT now(),
      CONSTRAINT ux_envelopes_envelope_id UNIQUE (envelope_id),
      CONSTRAINT ux_envelopes_year_counter UNIQUE (year, counter)
    );

    CREATE TABLE envelope_transactions (
      id                   serial PRIMARY KEY,
      envelope_id          integer NOT NULL REFERENCES envelopes (id),
      transaction_id       integer NOT NULL REFERENCES transactions (id),
      workbasket_id        integer NOT NULL REFERENCES workbaskets (id),
      taric_transaction_id integer NOT NULL CHECK (taric_transaction_id BETWEEN 1 AND 99999999),
      position             integer NOT NULL CHECK (position >= 1),
      CONSTRAINT ux_envelope_transactions_transaction UNIQUE (transaction_id),
      CONSTRAINT ux_envelope_transactions_taric_id UNIQUE (taric_transaction_id),
      CONSTRAINT ux_envelope_transactions_position UNIQUE (envelope_id, position)
    );

    CREATE TABLE uploads (
      id                serial PRIMARY KEY,
      envelope_id       integer NOT NULL REFERENCES envelopes (id),
      bucket            text NOT NULL,
      key               text NOT NULL,
      file_name         text NOT NULL,
      file_size         bigint NOT NULL,
      checksum          text NOT NULL,
      correlation_id    uuid NOT NULL,
      uploaded_at       timestamptz,
      notification_sent timestamptz,
      created_at        timestamptz NOT NULL DEFAULT now(),
      CONSTRAINT ux_uploads_envelope UNIQUE (envelope_id),
      CONSTRAINT ux_uploads_correlation UNIQUE (correlation_id)
    );
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('DROP TABLE uploads, envelope_transactions, envelopes, records, transactions, workbaskets');
}
