import type { Knex } from 'knex';
import { runScript } from '../src/db/statements.js';

// Provider tables (owned by src/providers).
//
// supplier_providers: which e-invoicing provider a supplier uses. A supplier
// without a row is not submitted anywhere.
// provider_documents: one row per (invoice, document kind) sent to a
// provider; the idempotency key is fixed here, before any call, so every
// retry repeats it. legal_status only moves forward (provider_legal_status_rank),
// by compare-and-set; a terminal status sets final_at.
// provider_attachments: the authority's PDF, once per (invoice, kind):
// ux_provider_attachments_invoice_kind makes a webhook and a poller racing
// for the same document produce one row.
//
// invoices.legal_status (ALTER TABLE on src/invoices' table, agreed in the
// issue): a copy of the invoice document's legal status for reports and
// listings, written in the same statement as provider_documents.
//
// The outbox: tr_invoices_schedule_submission inserts the document row and
// its provider-submit job in the transaction that inserts the invoice, so no
// code path in src/invoices needs to know about providers.

export async function up(knex: Knex): Promise<void> {
  await runScript(knex, `
    CREATE FUNCTION provider_legal_status_rank(s text) RETURNS smallint LANGUAGE sql IMMUTABLE AS $$
      SELECT CASE s
        WHEN 'REGISTERED' THEN 1
        WHEN 'PAC_AUTHORIZED' THEN 2
        WHEN 'PAC_REJECTED' THEN 3
        WHEN 'DGI_AUTHORIZED' THEN 3
        WHEN 'DGI_REJECTED' THEN 3
        ELSE 0 END::smallint
    $$;

    CREATE TABLE supplier_providers (
      supplier_party_id integer PRIMARY KEY REFERENCES parties (id),
      provider_kind     text NOT NULL CHECK (provider_kind IN ('pac', 'invoicing_api')),
      company_id        text NOT NULL CHECK (company_id <> ''),
      credentials_ref   text NOT NULL DEFAULT 'default' CHECK (credentials_ref <> ''),
      created_at        timestamptz NOT NULL DEFAULT now(),
      updated_at        timestamptz NOT NULL DEFAULT now()
    );

    CREATE TABLE provider_documents (
      id                   serial PRIMARY KEY,
      invoice_id           integer NOT NULL REFERENCES invoices (id),
      document_kind        text NOT NULL DEFAULT 'invoice' CHECK (document_kind IN ('invoice')),
      provider_kind        text NOT NULL CHECK (provider_kind IN ('pac', 'invoicing_api')),
      company_id           text NOT NULL,
      credentials_ref      text NOT NULL,
      idempotency_key      text NOT NULL,
      status               text NOT NULL DEFAULT 'pending'
                           CHECK (status IN ('pending', 'submitted', 'rejected', 'failed')),
      provider_document_id text,
      cufe                 text,
      legal_status         text CHECK (legal_status IN ('REGISTERED', 'PAC_AUTHORIZED', 'DGI_AUTHORIZED', 'PAC_REJECTED', 'DGI_REJECTED')),
      submit_started_at    timestamptz,
      submitted_at         timestamptz,
      final_at             timestamptz,
      poll_generation      integer NOT NULL DEFAULT 0,
      poll_attempts        integer NOT NULL DEFAULT 0,
      needs_attention_at   timestamptz,
      error_kind           text,
      last_error           text,
      next_step            text,
      created_at           timestamptz NOT NULL DEFAULT now(),
      updated_at           timestamptz NOT NULL DEFAULT now(),
      CONSTRAINT ux_provider_documents_invoice_kind UNIQUE (invoice_id, document_kind),
      CONSTRAINT ux_provider_documents_idempotency UNIQUE (idempotency_key),
      CONSTRAINT ck_provider_documents_submitted_has_id CHECK ((status = 'submitted') = (submitted_at IS NOT NULL AND provider_document_id IS NOT NULL)),
      CONSTRAINT ck_provider_documents_final CHECK ((final_at IS NOT NULL) = (legal_status IN ('DGI_AUTHORIZED', 'PAC_REJECTED', 'DGI_REJECTED')))
    );
    CREATE INDEX ix_provider_documents_provider_id ON provider_documents (company_id, provider_document_id);
    CREATE INDEX ix_provider_documents_attention ON provider_documents (id) WHERE needs_attention_at IS NOT NULL;

    CREATE TABLE provider_attachments (
      id           serial PRIMARY KEY,
      document_id  integer NOT NULL REFERENCES provider_documents (id),
      invoice_id   integer NOT NULL REFERENCES invoices (id),
      kind         text NOT NULL CHECK (kind IN ('pdf')),
      bucket       text NOT NULL,
      key          text NOT NULL,
      size_bytes   integer NOT NULL CHECK (size_bytes >= 0),
      sha256       text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
      source       text NOT NULL CHECK (source IN ('webhook', 'poll', 'manual')),
      created_at   timestamptz NOT NULL DEFAULT now(),
      CONSTRAINT ux_provider_attachments_invoice_kind UNIQUE (invoice_id, kind)
    );

    ALTER TABLE invoices ADD COLUMN legal_status text
      CHECK (legal_status IN ('REGISTERED', 'PAC_AUTHORIZED', 'DGI_AUTHORIZED', 'PAC_REJECTED', 'DGI_REJECTED'));

    CREATE FUNCTION invoices_schedule_submission() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
      sp supplier_providers%ROWTYPE;
      doc_id integer;
    BEGIN
      SELECT * INTO sp FROM supplier_providers WHERE supplier_party_id = NEW.supplier_party_id;
      IF NOT FOUND THEN
        RETURN NULL;
      END IF;
      INSERT INTO provider_documents (invoice_id, document_kind, provider_kind, company_id, credentials_ref, idempotency_key)
      VALUES (NEW.id, 'invoice', sp.provider_kind, sp.company_id, sp.credentials_ref, 'herald-inv-' || NEW.id || '-invoice')
      ON CONFLICT ON CONSTRAINT ux_provider_documents_invoice_kind DO NOTHING
      RETURNING id INTO doc_id;
      IF doc_id IS NOT NULL THEN
        INSERT INTO jobs (kind, payload, subject_type, subject_id, dedupe_key)
        VALUES ('provider-submit', jsonb_build_object('documentId', doc_id), 'invoice', NEW.id::text, 'provider-submit:' || doc_id)
        ON CONFLICT ON CONSTRAINT ux_jobs_dedupe_key DO NOTHING;
      END IF;
      RETURN NULL;
    END;
    $$;

    CREATE TRIGGER tr_invoices_schedule_submission AFTER INSERT ON invoices
      FOR EACH ROW EXECUTE FUNCTION invoices_schedule_submission();
  `);
}

export async function down(knex: Knex): Promise<void> {
  await runScript(knex, `
    DROP TRIGGER tr_invoices_schedule_submission ON invoices;
    DROP FUNCTION invoices_schedule_submission();
    ALTER TABLE invoices DROP COLUMN legal_status;
    DROP TABLE provider_attachments, provider_documents, supplier_providers;
    DROP FUNCTION provider_legal_status_rank(text);
  `);
}
