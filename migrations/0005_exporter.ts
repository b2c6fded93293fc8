import type { Knex } from 'knex';
import { runScript } from '../src/db/statements.js';

// Trigger (2) of the upload pipeline: whoever moves a workbasket to
// READY_FOR_EXPORT (API, CLI or plain SQL) schedules an upload in the same
// transaction, as a row of the job ledger. The jobs table's own NOTIFY trigger
// rings the workers when that transaction commits. Several workbaskets made
// ready at once give several rows; each run exports whatever is ready under
// the envelope lock, so the later ones find nothing left and finish at once.

export async function up(knex: Knex): Promise<void> {
  await runScript(knex, `
    CREATE FUNCTION workbaskets_schedule_upload() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF NEW.status = 'READY_FOR_EXPORT' AND (TG_OP = 'INSERT' OR OLD.status IS DISTINCT FROM NEW.status) THEN
        INSERT INTO jobs (kind, payload, subject_type, subject_id)
        VALUES ('upload-workbaskets', '{}'::jsonb, 'workbasket', NEW.id::text);
      END IF;
      RETURN NULL;
    END;
    $$;

    CREATE TRIGGER tr_workbaskets_schedule_upload
      AFTER INSERT OR UPDATE OF status ON workbaskets
      FOR EACH ROW EXECUTE FUNCTION workbaskets_schedule_upload();

    CREATE INDEX ix_uploads_unsent ON uploads (id) WHERE notification_sent IS NULL;
  `);
}

export async function down(knex: Knex): Promise<void> {
  await runScript(knex, `
    DROP INDEX ix_uploads_unsent;
    DROP TRIGGER tr_workbaskets_schedule_upload ON workbaskets;
    DROP FUNCTION workbaskets_schedule_upload();
  `);
}
