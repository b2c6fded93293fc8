import type { Knex } from 'knex';
import { runScript } from '../src/db/statements.js';

// POST /api/v1/invoice-requests stores concurrent requests in one multi-row
// INSERT (src/invoices/requests.ts). The outbox trigger of migration 0003 ran
// once per row (one INSERT into jobs per request); this one runs once per
// statement and writes every job of the batch in one INSERT ... SELECT from
// the statement's transition table. Same guarantee: rows and jobs commit
// together, and ON CONFLICT DO NOTHING rows (a repeated Idempotency-Key) are
// not in the transition table, so they get no job.
//
// body_hash only serves the Idempotency-Key replay check, so a request
// without a key need not pay for hashing its body.

export async function up(knex: Knex): Promise<void> {
  await runScript(knex, `
    DROP TRIGGER tr_invoice_requests_enqueue ON invoice_requests;
    DROP FUNCTION invoice_requests_enqueue();

    CREATE FUNCTION invoice_requests_enqueue() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      INSERT INTO jobs (kind, payload, subject_type, subject_id)
      SELECT 'invoice-request', jsonb_build_object('requestId', n.id), 'invoice_request', n.id::text
        FROM new_requests n;
      RETURN NULL;
    END;
    $$;

    CREATE TRIGGER tr_invoice_requests_enqueue AFTER INSERT ON invoice_requests
      REFERENCING NEW TABLE AS new_requests
      FOR EACH STATEMENT EXECUTE FUNCTION invoice_requests_enqueue();

    ALTER TABLE invoice_requests ALTER COLUMN body_hash DROP NOT NULL;
    ALTER TABLE invoice_requests ADD CONSTRAINT ck_invoice_requests_key_hashed
      CHECK (idempotency_key IS NULL OR body_hash IS NOT NULL);
  `);
}

export async function down(knex: Knex): Promise<void> {
  await runScript(knex, `
    ALTER TABLE invoice_requests DROP CONSTRAINT ck_invoice_requests_key_hashed;
    UPDATE invoice_requests SET body_hash = '' WHERE body_hash IS NULL;
    ALTER TABLE invoice_requests ALTER COLUMN body_hash SET NOT NULL;
    DROP TRIGGER tr_invoice_requests_enqueue ON invoice_requests;
    DROP FUNCTION invoice_requests_enqueue();
    CREATE FUNCTION invoice_requests_enqueue() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      INSERT INTO jobs (kind, payload, subject_type, subject_id)
      VALUES ('invoice-request', jsonb_build_object('requestId', NEW.id), 'invoice_request', NEW.id::text);
      RETURN NULL;
    END;
    $$;
    CREATE TRIGGER tr_invoice_requests_enqueue AFTER INSERT ON invoice_requests
      FOR EACH ROW EXECUTE FUNCTION invoice_requests_enqueue();
  `);
}
