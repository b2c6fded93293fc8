import type { Knex } from 'knex';
import { runScript } from '../src/db/statements.js';

// herald_add_jobs() (migration 0011, owned by src/jobs) becomes PL/pgSQL,
// with the same INSERT. As a SQL-language function, Postgres planned its
// INSERT again on every call, and every capability's outbox trigger calls it:
// a third of the invoice request submit statement's time (five requests:
// 916-980 us; with this function 730-824 us, alternating runs; decision 0020).
// PL/pgSQL keeps the plan for the session. The INSERT reads no table (its
// rows come from unnest, its conflicts from the unique index), so a kept plan
// cannot go stale as jobs grows.

export async function up(knex: Knex): Promise<void> {
  await runScript(knex, `
    CREATE OR REPLACE FUNCTION herald_add_jobs(job_kind text, payloads jsonb[], job_subject_type text, subject_ids text[], dedupe_keys text[] DEFAULT NULL)
    RETURNS void LANGUAGE plpgsql AS $$
    BEGIN
      INSERT INTO jobs (kind, payload, subject_type, subject_id, dedupe_key)
      SELECT job_kind, p, job_subject_type, s, d
        FROM unnest(payloads, subject_ids, coalesce(dedupe_keys, array_fill(NULL::text, ARRAY[cardinality(payloads)]))) AS t (p, s, d)
      ON CONFLICT ON CONSTRAINT ux_jobs_dedupe_key DO NOTHING;
    END;
    $$;
  `);
}
