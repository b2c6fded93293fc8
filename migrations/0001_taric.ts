import type { Knex } from 'knex';
import { runScript } from '../src/db/statements.js';

// TARIC export tables (owned by src/taric and src/exporter).
// Envelope ids and TARIC transaction ids are allocated under a lock on
// envelopes (src/taric/envelope/allocate.ts); the unique constraints here are the
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
    CREATE INDEX ix_envelope_transactions_workbasket ON envelope_transactions (workbasket_id);

    -- A workbasket's transactions and records are what its envelopes are
    -- re-rendered from (an upload retried after a crash must send the same
    -- bytes), so they may change only while the workbasket is EDITING. The
    -- guard locks the workbaskets it checks FOR SHARE, so a concurrent status
    -- change waits for the writing transaction instead of slipping past it.
    -- Statement-level triggers with transition tables: one check per bulk
    -- insert of 1,000 rows, not one per row. SQLSTATE HT001 (src/taric/errors.ts).
    CREATE FUNCTION taric_assert_workbaskets_editing(ids integer[]) RETURNS void
    LANGUAGE plpgsql AS $$
    DECLARE
      frozen record;
    BEGIN
      PERFORM 1 FROM workbaskets WHERE id = ANY (ids) ORDER BY id FOR SHARE;
      SELECT id, status INTO frozen FROM workbaskets
       WHERE id = ANY (ids) AND status <> 'EDITING' ORDER BY id LIMIT 1;
      IF FOUND THEN
        RAISE EXCEPTION 'workbasket % is %: its transactions and records can no longer change', frozen.id, frozen.status
          USING ERRCODE = 'HT001';
      END IF;
    END;
    $$;

    CREATE FUNCTION taric_guard_transactions() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
      IF TG_OP = 'INSERT' THEN
        PERFORM taric_assert_workbaskets_editing(ARRAY(SELECT DISTINCT workbasket_id FROM new_rows));
      ELSIF TG_OP = 'UPDATE' THEN
        PERFORM taric_assert_workbaskets_editing(ARRAY(
          SELECT workbasket_id FROM new_rows UNION SELECT workbasket_id FROM old_rows));
      ELSE
        PERFORM taric_assert_workbaskets_editing(ARRAY(SELECT DISTINCT workbasket_id FROM old_rows));
      END IF;
      RETURN NULL;
    END;
    $$;

    CREATE TRIGGER transactions_guard_insert AFTER INSERT ON transactions
      REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION taric_guard_transactions();
    CREATE TRIGGER transactions_guard_update AFTER UPDATE ON transactions
      REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION taric_guard_transactions();
    CREATE TRIGGER transactions_guard_delete AFTER DELETE ON transactions
      REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION taric_guard_transactions();

    CREATE FUNCTION taric_guard_records() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
      IF TG_OP = 'INSERT' THEN
        PERFORM taric_assert_workbaskets_editing(ARRAY(
          SELECT DISTINCT t.workbasket_id FROM new_rows r JOIN transactions t ON t.id = r.transaction_id));
      ELSIF TG_OP = 'UPDATE' THEN
        PERFORM taric_assert_workbaskets_editing(ARRAY(
          SELECT t.workbasket_id FROM new_rows r JOIN transactions t ON t.id = r.transaction_id
          UNION
          SELECT t.workbasket_id FROM old_rows r JOIN transactions t ON t.id = r.transaction_id));
      ELSE
        PERFORM taric_assert_workbaskets_editing(ARRAY(
          SELECT DISTINCT t.workbasket_id FROM old_rows r JOIN transactions t ON t.id = r.transaction_id));
      END IF;
      RETURN NULL;
    END;
    $$;

    CREATE TRIGGER records_guard_insert AFTER INSERT ON records
      REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION taric_guard_records();
    CREATE TRIGGER records_guard_update AFTER UPDATE ON records
      REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION taric_guard_records();
    CREATE TRIGGER records_guard_delete AFTER DELETE ON records
      REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION taric_guard_records();

    -- A workbasket leaves EDITING for good once any of its transactions is in
    -- an envelope, and only an EDITING workbasket may be deleted (a cascade
    -- would otherwise remove records the guard above cannot see any more).
    CREATE FUNCTION taric_guard_workbaskets() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
      IF TG_OP = 'DELETE' THEN
        IF OLD.status <> 'EDITING' THEN
          RAISE EXCEPTION 'workbasket % is %: only an EDITING workbasket can be deleted', OLD.id, OLD.status
            USING ERRCODE = 'HT001';
        END IF;
        RETURN OLD;
      END IF;
      IF NEW.status = 'EDITING' AND OLD.status <> 'EDITING'
         AND EXISTS (SELECT 1 FROM envelope_transactions WHERE workbasket_id = OLD.id) THEN
        RAISE EXCEPTION 'workbasket % has exported transactions: it cannot go back to EDITING', OLD.id
          USING ERRCODE = 'HT001';
      END IF;
      RETURN NEW;
    END;
    $$;

    CREATE TRIGGER workbaskets_guard BEFORE UPDATE OF status OR DELETE ON workbaskets
      FOR EACH ROW EXECUTE FUNCTION taric_guard_workbaskets();

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
  await knex.raw('DROP FUNCTION taric_guard_workbaskets(), taric_guard_records(), taric_guard_transactions(), taric_assert_workbaskets_editing(integer[])');
}
