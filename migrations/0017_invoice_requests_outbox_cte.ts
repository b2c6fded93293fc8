import type { Knex } from 'knex';
import { runScript } from '../src/db/statements.js';

// The invoice request's job row is written by the submit statement itself
// (a data-modifying CTE, INSERT_INVOICE_REQUESTS_SQL in
// src/invoices/request-store.ts) instead of by the statement-level trigger
// tr_invoice_requests_enqueue. Same outbox guarantee (one statement, one
// commit), a third less time per batch: the trigger called
// herald_add_jobs(), a SQL-language function whose INSERT Postgres plans
// again on every call, while the CTE's INSERT is planned once with the
// prepared statement (decision 0020). That statement is the only INSERT
// into invoice_requests.

export async function up(knex: Knex): Promise<void> {
  await runScript(knex, `
    DROP TRIGGER tr_invoice_requests_enqueue ON invoice_requests;
    DROP FUNCTION invoice_requests_enqueue();
  `);
}

export async function down(knex: Knex): Promise<void> {
  await runScript(knex, `
    CREATE FUNCTION invoice_requests_enqueue() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      PERFORM herald_add_jobs('invoice-request', array_agg(jsonb_build_object('requestId', n.id)), 'invoice_request', array_agg(n.id::text))
        FROM new_requests n
      HAVING count(*) > 0;
      RETURN NULL;
    END;
    $$;

    CREATE TRIGGER tr_invoice_requests_enqueue AFTER INSERT ON invoice_requests
      REFERENCING NEW TABLE AS new_requests
      FOR EACH STATEMENT EXECUTE FUNCTION invoice_requests_enqueue();
  `);
}
