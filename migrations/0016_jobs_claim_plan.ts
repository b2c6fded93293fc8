import type { Knex } from 'knex';
import { runScript } from '../src/db/statements.js';

// The claim of due rows (owned by src/jobs: claimDueJobs in
// src/jobs/store/runs.ts calls it) as a function so that its plan cannot
// depend on stale statistics. A jobs table whose statistics say "few rows
// are pending" (a fresh install, or the usual state of a long-lived table)
// meets a burst of 10,000 pending rows: the planner, estimating ~10 rows,
// sorts every pending row per claim (a bitmap or (status, kind) index scan
// and a sort: 5-10 ms a claim) instead of walking ix_jobs_due in
// (scheduled_at, id) order and stopping after LIMIT rows (under 1 ms). Until
// autovacuum's next ANALYZE that capped one worker near 2,000 jobs/s
// (decision 0017). Postgres has no plan hints; a function's SET clause is
// the supported way to scope a planner setting to one statement: with sorts
// off, the ordered index walk is the only plan left.
//
// The due rows are picked in a MATERIALIZED CTE, not in `WHERE id IN
// (SELECT ... LIMIT n FOR UPDATE SKIP LOCKED)` as before: with those same
// statistics Postgres ran the IN as a nested-loop semi join that re-ran the
// LIMIT subquery for every candidate row, so one claim of 5 rows moved all
// 3,000 pending rows to processing and took 2 s (test/jobs/claim-plan.test.ts).
// A materialized CTE runs once: at most max_rows rows, whatever the plan.
//
// Also: ix_jobs_kind_status goes. ix_jobs_status_kind has the same columns,
// serves every query the other did (status and kind are both equalities in
// the purge, GROUP BY kind, status reads either), and each index on jobs is
// one more insert per enqueue, claim and end of a run.

export async function up(knex: Knex): Promise<void> {
  await runScript(knex, `
    CREATE FUNCTION herald_claim_due_jobs(at timestamptz, claimer bigint, kinds text[], max_rows integer)
    RETURNS SETOF jobs LANGUAGE sql SET enable_sort = off AS $$
      WITH due AS MATERIALIZED (
        SELECT id FROM jobs
         WHERE status IN ('pending', 'failed') AND scheduled_at <= coalesce(at, now())
           AND (kinds IS NULL OR kind = ANY (kinds))
         ORDER BY scheduled_at, id LIMIT max_rows
         FOR UPDATE SKIP LOCKED
      )
      UPDATE jobs j
         SET status = 'processing', claim_token = gen_random_uuid(), attempts = j.attempts + 1,
             started_at = coalesce(at, now()), heartbeat_at = coalesce(at, now()), worker_id = claimer
        FROM due
       WHERE j.id = due.id AND j.status IN ('pending', 'failed')
      RETURNING j.*
    $$;
    DROP INDEX ix_jobs_kind_status;
  `);
}

export async function down(knex: Knex): Promise<void> {
  await runScript(knex, `
    CREATE INDEX ix_jobs_kind_status ON jobs (kind, status);
    DROP FUNCTION herald_claim_due_jobs(timestamptz, bigint, text[], integer);
  `);
}
