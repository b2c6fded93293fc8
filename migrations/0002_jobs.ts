import type { Knex } from 'knex';
import { runScript } from '../src/db/statements.js';

// The durable-job ledger (owned by src/jobs; see src/jobs/README.md).
// Every retriable unit of outbound work is a row here, written in the
// caller's transaction. Redis only rings a bell carrying the row id; these
// constraints are what make "never lost, never run twice at once" hold.

export async function up(knex: Knex): Promise<void> {
  await runScript(knex, `
    CREATE TABLE jobs (
      id            bigserial PRIMARY KEY,
      kind          text NOT NULL,
      status        text NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'processing', 'failed', 'failed_permanent', 'completed')),
      subject_type  text,
      subject_id    text,
      payload       jsonb NOT NULL DEFAULT '{}',
      dedupe_key    text,
      attempts      integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
      -- NULL: the kind's JobDefinition.maxAttempts (enqueueJob knows no definitions).
      max_attempts  integer CHECK (max_attempts >= 1),
      scheduled_at  timestamptz NOT NULL DEFAULT now(),
      started_at    timestamptz,
      heartbeat_at  timestamptz,
      finished_at   timestamptz,
      last_error    text,
      error_class   text CHECK (error_class IN ('transient', 'rate_limited', 'auth', 'permanent', 'stalled')),
      stall_count   integer NOT NULL DEFAULT 0 CHECK (stall_count >= 0),
      claim_token   uuid,
      created_at    timestamptz NOT NULL DEFAULT now(),
      -- true: the writer (enqueueJob) NOTIFYs after its commit, so the insert
      -- trigger stays quiet (see jobs_notify below for why that matters).
      writer_announces boolean NOT NULL DEFAULT false,
      CONSTRAINT ux_jobs_dedupe_key UNIQUE (dedupe_key),
      -- Terminal states are exactly the ones with finished_at.
      CONSTRAINT ck_jobs_terminal_finished
        CHECK ((status IN ('completed', 'failed_permanent')) = (finished_at IS NOT NULL)),
      -- Only a processing row has a claimant, so only a claimant can finish it.
      CONSTRAINT ck_jobs_processing_claimed
        CHECK ((status = 'processing') = (claim_token IS NOT NULL))
    );

    -- Due lookups (claim-next, sweeper re-ring) walk this in (scheduled_at, id) order.
    CREATE INDEX ix_jobs_due ON jobs (scheduled_at, id) WHERE status IN ('pending', 'failed');
    -- Stuck lookups only ever look at processing rows.
    CREATE INDEX ix_jobs_processing ON jobs (heartbeat_at) WHERE status = 'processing';
    CREATE INDEX ix_jobs_subject ON jobs (subject_type, subject_id);
    CREATE INDEX ix_jobs_kind_status ON jobs (kind, status);
    CREATE INDEX ix_jobs_status_kind ON jobs (status, kind);

    -- One row per run of a job, for the admin page. attempt is the job's
    -- attempt number during that run; a stalled, snoozed or interrupted run
    -- gives its attempt back, so the next run repeats the number.
    CREATE TABLE job_attempts (
      id           bigserial PRIMARY KEY,
      job_id       bigint NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
      attempt      integer NOT NULL,
      started_at   timestamptz NOT NULL,
      finished_at  timestamptz NOT NULL,
      outcome      text NOT NULL
                   CHECK (outcome IN ('completed', 'failed', 'failed_permanent', 'snoozed', 'stalled', 'interrupted')),
      error_class  text CHECK (error_class IN ('transient', 'rate_limited', 'auth', 'permanent', 'stalled')),
      error        text,
      duration_ms  integer NOT NULL CHECK (duration_ms >= 0)
    );
    CREATE INDEX ix_job_attempts_job ON job_attempts (job_id, id);

    -- Ring after commit: NOTIFY is delivered only when the inserting (or
    -- retrying) transaction commits, so rows written by a caller's transaction
    -- or by another trigger in plain SQL reach the workers without any code
    -- on the writer's side. Payload "id:ms-until-due" lets a listener time
    -- future rings without another query.
    -- Cost: Postgres serialises the commits of all NOTIFYing transactions
    -- that wrote data (one cluster-wide lock held through the WAL flush), so
    -- one-row enqueues through this trigger top out near 1/fsync per second.
    -- enqueueJob therefore sets writer_announces and sends the NOTIFY itself,
    -- from another connection, right after the caller's commit: a
    -- transaction that only notifies writes no WAL and holds that lock for
    -- microseconds. Plain-SQL inserts keep the trigger.
    CREATE FUNCTION jobs_notify() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      PERFORM pg_notify('herald_jobs', format('%s:%s', NEW.id,
        greatest(0, ceil(extract(epoch FROM (NEW.scheduled_at - clock_timestamp())) * 1000))::bigint));
      RETURN NULL;
    END;
    $$;

    CREATE TRIGGER tr_jobs_notify_insert AFTER INSERT ON jobs
      FOR EACH ROW WHEN (NOT NEW.writer_announces) EXECUTE FUNCTION jobs_notify();

    -- A row becomes claimable again (retry, snooze, admin retry, stall reset).
    CREATE TRIGGER tr_jobs_notify_claimable AFTER UPDATE OF status, scheduled_at ON jobs
      FOR EACH ROW
      WHEN (NEW.status IN ('pending', 'failed')
            AND (OLD.status IS DISTINCT FROM NEW.status OR OLD.scheduled_at IS DISTINCT FROM NEW.scheduled_at))
      EXECUTE FUNCTION jobs_notify();
  `);
}

export async function down(knex: Knex): Promise<void> {
  await runScript(knex, `
    DROP TABLE job_attempts;
    DROP TABLE jobs;
    DROP FUNCTION jobs_notify();
  `);
}
