import type { Knex } from 'knex';
import { runScript } from '../src/db/statements.js';

// The invoice request's job row is now written by the submit statement
// itself (a data-modifying CTE, INSERT_INVOICE_REQUESTS_SQL in
// src/invoices/request-store.ts): its INSERT is planned once with the
// prepared statement, where the trigger's call of herald_add_jobs(), a
// SQL-language function, was planned again on every call (decision 0020).
//
// The trigger stays, as a safety net that writes a job only for new rows
// that have none: rows stored by the previous release's statement while an
// upgrade runs (docs/deploy.md: the previous release must keep working on
// the new schema), or by any other INSERT. It sees the jobs the statement's
// own CTE wrote (an AFTER STATEMENT trigger runs once the whole statement
// has), so a request never gets two. Cost: one anti-join per statement on
// ix_jobs_subject, 60-100 us for five rows, against 350 us saved.

export async function up(knex: Knex): Promise<void> {
  await runScript(knex, `
    CREATE OR REPLACE FUNCTION invoice_requests_enqueue() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      PERFORM herald_add_jobs('invoice-request', array_agg(jsonb_build_object('requestId', n.id)), 'invoice_request', array_agg(n.id::text))
         FROM new_requests n
        WHERE NOT EXISTS (SELECT 1 FROM jobs j
                           WHERE j.subject_type = 'invoice_request' AND j.subject_id = n.id::text AND j.kind = 'invoice-request')
       HAVING count(*) > 0;
      RETURN NULL;
    END;
    $$;
  `);
}
