import type { Knex } from 'knex';
import { runScript } from '../src/db/statements.js';

// Invoice tables (owned by src/invoices).
// Numbers are assigned by generateInvoice under the supplier row lock
// (SELECT ... FOR NO KEY UPDATE on parties); ux_invoices_supplier_number and
// ux_invoices_supplier_number_int are the backstop that turns a numbering bug
// into an error instead of a duplicate. ux_invoices_request makes "one
// request, one invoice" a database invariant, whatever a worker retries.
// Money is numeric (exact); never a float.

export async function up(knex: Knex): Promise<void> {
  await runScript(knex, `
    CREATE TABLE parties (
      id                   serial PRIMARY KEY,
      role                 text NOT NULL CHECK (role IN ('supplier', 'client')),
      name                 text NOT NULL CHECK (name <> ''),
      tax_id               text,
      vat_id               text,
      address              text NOT NULL DEFAULT '',
      email                text,
      currency             text NOT NULL DEFAULT 'EUR' CHECK (currency ~ '^[A-Z]{3}$'),
      default_tax_rate     numeric(7, 4) NOT NULL DEFAULT 0 CHECK (default_tax_rate BETWEEN 0 AND 100),
      invoice_prefix       text NOT NULL DEFAULT '',
      invoice_digits       smallint NOT NULL DEFAULT 6 CHECK (invoice_digits BETWEEN 1 AND 18),
      invoice_start_number bigint NOT NULL DEFAULT 1 CHECK (invoice_start_number >= 1),
      last_invoice_number  bigint NOT NULL DEFAULT 0 CHECK (last_invoice_number >= 0),
      created_at           timestamptz NOT NULL DEFAULT now()
    );

    CREATE TABLE invoice_requests (
      id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      caller            text NOT NULL,
      idempotency_key   text,
      body_hash         text NOT NULL,
      payload           jsonb NOT NULL,
      supplier_party_id integer NOT NULL,
      client_party_id   integer NOT NULL,
      status            text NOT NULL DEFAULT 'pending'
                        CHECK (status IN ('pending', 'processing', 'completed', 'failed')),
      invoice_id        integer,
      error_message     text,
      created_at        timestamptz NOT NULL DEFAULT now(),
      started_at        timestamptz,
      completed_at      timestamptz,
      CONSTRAINT fk_invoice_requests_supplier FOREIGN KEY (supplier_party_id) REFERENCES parties (id),
      CONSTRAINT fk_invoice_requests_client FOREIGN KEY (client_party_id) REFERENCES parties (id),
      CONSTRAINT ux_invoice_requests_idempotency UNIQUE (caller, idempotency_key),
      CONSTRAINT ck_invoice_requests_completed_has_invoice CHECK ((status = 'completed') = (invoice_id IS NOT NULL)),
      CONSTRAINT ck_invoice_requests_failed_has_message CHECK ((status = 'failed') = (error_message IS NOT NULL)),
      CONSTRAINT ck_invoice_requests_terminal_has_completed_at
        CHECK ((status IN ('completed', 'failed')) = (completed_at IS NOT NULL))
    );

    -- Batch numbering takes a supplier's newest pending requests.
    CREATE INDEX ix_invoice_requests_pending ON invoice_requests (supplier_party_id, created_at, id) WHERE status = 'pending';
    CREATE INDEX ix_invoice_requests_open ON invoice_requests (status) WHERE status IN ('pending', 'processing');

    CREATE TABLE invoices (
      id                 serial PRIMARY KEY,
      supplier_party_id  integer NOT NULL REFERENCES parties (id),
      client_party_id    integer NOT NULL REFERENCES parties (id),
      invoice_number     text NOT NULL,
      invoice_number_int bigint NOT NULL CHECK (invoice_number_int >= 1),
      issue_date         date NOT NULL,
      due_date           date NOT NULL,
      currency           text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
      -- Later capabilities (provider submission) follow legal status in
      -- their own tables; an invoice row is immutable once issued.
      status             text NOT NULL DEFAULT 'issued' CHECK (status IN ('issued')),
      supplier_name      text NOT NULL,
      supplier_tax_id    text,
      supplier_vat_id    text,
      supplier_address   text NOT NULL,
      supplier_email     text,
      client_name        text NOT NULL,
      client_tax_id      text,
      client_vat_id      text,
      client_address     text NOT NULL,
      client_email       text,
      notes              text,
      subtotal           numeric(24, 2) NOT NULL,
      tax_total          numeric(24, 2) NOT NULL,
      total              numeric(24, 2) NOT NULL CHECK (total = subtotal + tax_total),
      request_id         uuid REFERENCES invoice_requests (id),
      created_at         timestamptz NOT NULL DEFAULT now(),
      CONSTRAINT ck_invoices_due_after_issue CHECK (due_date >= issue_date),
      CONSTRAINT ux_invoices_supplier_number UNIQUE (supplier_party_id, invoice_number),
      CONSTRAINT ux_invoices_supplier_number_int UNIQUE (supplier_party_id, invoice_number_int),
      CONSTRAINT ux_invoices_request UNIQUE (request_id)
    );

    CREATE INDEX ix_invoices_invoice_number ON invoices (invoice_number);

    ALTER TABLE invoice_requests
      ADD CONSTRAINT fk_invoice_requests_invoice FOREIGN KEY (invoice_id) REFERENCES invoices (id);

    -- The outbox write for the async queue: every new request gets its
    -- invoice-request job (src/jobs' jobs table) in the same INSERT statement.
    -- One statement instead of BEGIN/INSERT/INSERT/COMMIT: a quarter of the
    -- round trips on POST /api/v1/invoice-requests, and no code path can
    -- store a request without its job. ON CONFLICT DO NOTHING (a repeated
    -- Idempotency-Key) inserts no row, so no job either. The jobs_notify
    -- trigger rings the workers when the statement commits.
    CREATE FUNCTION invoice_requests_enqueue() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      INSERT INTO jobs (kind, payload, subject_type, subject_id)
      VALUES ('invoice-request', jsonb_build_object('requestId', NEW.id), 'invoice_request', NEW.id::text);
      RETURN NULL;
    END;
    $$;

    CREATE TRIGGER tr_invoice_requests_enqueue AFTER INSERT ON invoice_requests
      FOR EACH ROW EXECUTE FUNCTION invoice_requests_enqueue();

    CREATE TABLE invoice_items (
      id           serial PRIMARY KEY,
      invoice_id   integer NOT NULL REFERENCES invoices (id) ON DELETE CASCADE,
      line_number  integer NOT NULL CHECK (line_number >= 1),
      description  text NOT NULL CHECK (description <> ''),
      quantity     numeric(18, 4) NOT NULL CHECK (quantity > 0),
      unit_price   numeric(18, 4) NOT NULL CHECK (unit_price >= 0),
      discount     numeric(24, 2) NOT NULL DEFAULT 0 CHECK (discount >= 0),
      tax_rate     numeric(7, 4) NOT NULL CHECK (tax_rate BETWEEN 0 AND 100),
      subtotal     numeric(24, 2) NOT NULL CHECK (subtotal >= 0),
      tax          numeric(24, 2) NOT NULL CHECK (tax >= 0),
      total        numeric(24, 2) NOT NULL CHECK (total = subtotal + tax),
      CONSTRAINT ux_invoice_items_line UNIQUE (invoice_id, line_number)
    );
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('ALTER TABLE invoice_requests DROP CONSTRAINT fk_invoice_requests_invoice');
  await knex.raw('DROP TABLE invoice_items, invoices, invoice_requests, parties');
  await knex.raw('DROP FUNCTION invoice_requests_enqueue()');
}
