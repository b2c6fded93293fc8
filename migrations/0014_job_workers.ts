import type { Knex } from 'knex';
import { runScript } from '../src/db/statements.js';

// The worker registry (owned by src/jobs; decision 0015). Each process that
// claims job rows (`herald worker`, serve's embedded runner, an inline run)
// has a row here and refreshes heartbeat_at every JOBS_WORKER_HEARTBEAT_MS.
// A claimed job names its worker (jobs.worker_id), so when a worker stops
// heartbeating (SIGKILL, OOM, a lost host) any other worker puts its
// processing jobs back to pending within seconds, in one statement, instead
// of waiting 3x the kind's timeout (30 min for an export).
//
// jobs.worker_id has no foreign key on purpose: it stays on a row after the
// run ends (which worker ran it last; job_attempts keeps each run's), and a
// key would make every claim lock the worker's row and every deregistration
// rewrite the rows that name it.

export async function up(knex: Knex): Promise<void> {
  await runScript(knex, `
    CREATE TABLE job_workers (
      id            bigserial PRIMARY KEY,
      pid           integer NOT NULL,
      host          text NOT NULL,
      -- 'worker' (a runner answering bells) or 'inline' (runJobsInline in a CLI command)
      runner        text NOT NULL CHECK (runner IN ('worker', 'inline')),
      started_at    timestamptz NOT NULL DEFAULT now(),
      heartbeat_at  timestamptz NOT NULL DEFAULT now()
    );

    -- No index of its own: the reset of dead workers' jobs reads processing
    -- rows only (ix_jobs_processing, a few per worker), and every index on
    -- jobs is one more insert per claim.
    ALTER TABLE jobs ADD COLUMN worker_id bigint;

    ALTER TABLE job_attempts ADD COLUMN worker_id bigint;
    ALTER TABLE job_attempts DROP CONSTRAINT job_attempts_outcome_check;
    ALTER TABLE job_attempts ADD CONSTRAINT job_attempts_outcome_check
      CHECK (outcome IN ('completed', 'failed', 'failed_permanent', 'snoozed', 'stalled', 'interrupted', 'worker_lost'));
  `);
}

export async function down(knex: Knex): Promise<void> {
  await runScript(knex, `
    UPDATE job_attempts SET outcome = 'stalled' WHERE outcome = 'worker_lost';
    ALTER TABLE job_attempts DROP CONSTRAINT job_attempts_outcome_check;
    ALTER TABLE job_attempts ADD CONSTRAINT job_attempts_outcome_check
      CHECK (outcome IN ('completed', 'failed', 'failed_permanent', 'snoozed', 'stalled', 'interrupted'));
    ALTER TABLE job_attempts DROP COLUMN worker_id;
    ALTER TABLE jobs DROP COLUMN worker_id;
    DROP TABLE job_workers;
  `);
}
