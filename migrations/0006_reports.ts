import type { Knex } from 'knex';
import { runScript } from '../src/db/statements.js';

// Report records (owned by src/reports). A report is RUNNING until exactly one
// compare-and-set moves it to SUCCESS (with its file) or FAIL (with a
// message, "timed out" included); the CHECKs make "terminal <=> finished_at
// set", "SUCCESS <=> file" and "FAIL <=> message" database invariants.
//
// ux_reports_running_request: at most one RUNNING report per (creator, type,
// params) at any instant, whatever runs concurrently; a repeat request
// inserts with ON CONFLICT DO NOTHING and reads the RUNNING one back.
// A partial index cannot say "or SUCCESS within the last N minutes" (now() is
// not immutable); src/reports/create.ts explains how the reuse window is
// handled under concurrency.
//
// deadline_at is fixed at insert (created_at + the type's timeout then), so a
// later change of the timeout setting never moves an existing deadline, and
// the expire sweep is one indexed range scan.

export async function up(knex: Knex): Promise<void> {
  await runScript(knex, `
    CREATE TABLE reports (
      id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      report_type   text NOT NULL CHECK (report_type ~ '^[a-z][a-z0-9-]{0,39}$'),
      status        text NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'success', 'fail')),
      params        jsonb NOT NULL,
      params_hash   text NOT NULL CHECK (params_hash ~ '^[0-9a-f]{64}$'),
      creator       text NOT NULL CHECK (creator <> ''),
      timeout_ms    integer NOT NULL CHECK (timeout_ms > 0),
      deadline_at   timestamptz NOT NULL,
      file_key      text,
      file_name     text,
      file_size     bigint CHECK (file_size >= 0),
      row_count     integer CHECK (row_count >= 0),
      error_message text CHECK (char_length(error_message) BETWEEN 1 AND 1000),
      created_at    timestamptz NOT NULL DEFAULT now(),
      finished_at   timestamptz,
      CONSTRAINT ck_reports_terminal_has_finished_at CHECK ((status = 'running') = (finished_at IS NULL)),
      CONSTRAINT ck_reports_success_has_file
        CHECK ((status = 'success') = (file_key IS NOT NULL AND file_name IS NOT NULL AND file_size IS NOT NULL AND row_count IS NOT NULL)),
      CONSTRAINT ck_reports_fail_has_message CHECK ((status = 'fail') = (error_message IS NOT NULL)),
      CONSTRAINT ck_reports_deadline_after_created CHECK (deadline_at > created_at)
    );

    CREATE UNIQUE INDEX ux_reports_running_request ON reports (creator, report_type, params_hash) WHERE status = 'running';
    CREATE INDEX ix_reports_running_deadline ON reports (deadline_at) WHERE status = 'running';
    CREATE INDEX ix_reports_success_reuse ON reports (creator, report_type, params_hash, finished_at) WHERE status = 'success';
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('DROP TABLE reports');
}
