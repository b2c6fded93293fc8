import type { Knex } from 'knex';
import { runScript } from '../src/db/statements.js';

// The jobs table is src/jobs' own: capabilities' triggers (the outboxes of
// workbaskets, invoice requests and invoices) used to INSERT into it with the
// kind as a literal and its columns spelled out, four copies of the job-row
// shape outside the mechanism. They now call one function owned by the jobs
// migrations, as graphile-worker's add_job: a row per (payload, subject id,
// dedupe key), in the caller's transaction; a dedupe key already present
// adds nothing. Arrays, so a statement-level trigger writes a whole batch in
// one INSERT (invoice requests arrive in multi-row INSERTs).

export async function up(knex: Knex): Promise<void> {
  await runScript(knex, `
    CREATE FUNCTION herald_add_jobs(job_kind text, payloads jsonb[], job_subject_type text, subject_ids text[], dedupe_keys text[] DEFAULT NULL)
    RETURNS void LANGUAGE sql AS $$
      INSERT INTO jobs (kind, payload, subject_type, subject_id, dedupe_key)
      SELECT job_kind, p, job_subject_type, s, d
        FROM unnest(payloads, subject_ids, coalesce(dedupe_keys, array_fill(NULL::text, ARRAY[cardinality(payloads)]))) AS t (p, s, d)
      ON CONFLICT ON CONSTRAINT ux_jobs_dedupe_key DO NOTHING
    $$;

    CREATE OR REPLACE FUNCTION workbaskets_schedule_upload() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF NEW.status = 'READY_FOR_EXPORT' AND (TG_OP = 'INSERT' OR OLD.status IS DISTINCT FROM NEW.status) THEN
        PERFORM herald_add_jobs('upload-workbaskets', ARRAY['{}'::jsonb], 'workbasket', ARRAY[NEW.id::text]);
      END IF;
      RETURN NULL;
    END;
    $$;

    CREATE OR REPLACE FUNCTION invoice_requests_enqueue() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      PERFORM herald_add_jobs('invoice-request', array_agg(jsonb_build_object('requestId', n.id)), 'invoice_request', array_agg(n.id::text))
        FROM new_requests n
      HAVING count(*) > 0;
      RETURN NULL;
    END;
    $$;

    CREATE OR REPLACE FUNCTION invoices_schedule_submission() RETURNS trigger LANGUAGE plpgsql AS $$
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
        PERFORM herald_add_jobs('provider-submit', ARRAY[jsonb_build_object('documentId', doc_id)], 'invoice', ARRAY[NEW.id::text], ARRAY['provider-submit:' || doc_id]);
      END IF;
      RETURN NULL;
    END;
    $$;
  `);
}

export async function down(knex: Knex): Promise<void> {
  await runScript(knex, `
    CREATE OR REPLACE FUNCTION workbaskets_schedule_upload() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF NEW.status = 'READY_FOR_EXPORT' AND (TG_OP = 'INSERT' OR OLD.status IS DISTINCT FROM NEW.status) THEN
        INSERT INTO jobs (kind, payload, subject_type, subject_id)
        VALUES ('upload-workbaskets', '{}'::jsonb, 'workbasket', NEW.id::text);
      END IF;
      RETURN NULL;
    END;
    $$;

    CREATE OR REPLACE FUNCTION invoice_requests_enqueue() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      INSERT INTO jobs (kind, payload, subject_type, subject_id)
      SELECT 'invoice-request', jsonb_build_object('requestId', n.id), 'invoice_request', n.id::text
        FROM new_requests n;
      RETURN NULL;
    END;
    $$;

    CREATE OR REPLACE FUNCTION invoices_schedule_submission() RETURNS trigger LANGUAGE plpgsql AS $$
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

    DROP FUNCTION herald_add_jobs(text, jsonb[], text, text[], text[]);
  `);
}
