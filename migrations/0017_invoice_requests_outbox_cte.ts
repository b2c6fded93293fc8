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
// has), so a request never gets two. Cost: one probe of ix_jobs_subject per
// new row, 60-100 us for five rows, against 350 us saved.
//
// The probe must stay an index probe however small jobs looked when a session
// first ran it: PL/pgSQL keeps a query's plan for the session, and a plan
// made while the statistics said jobs was empty (analysed on a fresh install,
// after a purge or a TRUNCATE) scanned
// the whole table for every statement from then on: 1 -> 4 -> 9 -> 13 ms per
// statement over the first 15,000 jobs of one connection. A LATERAL with
// LIMIT 1 keeps it a per-row probe, and enable_seqscan off for this
// function's queries leaves the index as the only way in, as the claim's
// SET does in migration 0016 (test/invoices/request-routes.test.ts reads the
// plan Postgres ran).

export async function up(knex: Knex): Promise<void> {
  await runScript(knex, `
    CREATE OR REPLACE FUNCTION invoice_requests_enqueue() RETURNS trigger LANGUAGE plpgsql
      SET enable_seqscan = off AS $$
    BEGIN
      PERFORM herald_add_jobs('invoice-request', array_agg(jsonb_build_object('requestId', n.id)), 'invoice_request', array_agg(n.id::text))
         FROM new_requests n
         LEFT JOIN LATERAL (SELECT 1 AS found FROM jobs j
                             WHERE j.subject_type = 'invoice_request' AND j.subject_id = n.id::text AND j.kind = 'invoice-request'
                             LIMIT 1) f ON true
        WHERE f.found IS NULL
       HAVING count(*) > 0;
      RETURN NULL;
    END;
    $$;
  `);
}
