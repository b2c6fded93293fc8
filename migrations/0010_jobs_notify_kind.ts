import type { Knex } from 'knex';
import { runScript } from '../src/db/statements.js';

// Notifications on herald_jobs carry the row's kind: "id:delayMs:kind".
// A worker wakes the scanning loop of a batched kind (src/jobs/batch-loop.ts)
// for those instead of ringing each row through the doorbell. Listeners read
// the first two fields as before.

const notify = (payload: string) => `
    CREATE OR REPLACE FUNCTION jobs_notify() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      PERFORM pg_notify('herald_jobs', ${payload});
      RETURN NULL;
    END;
    $$;
`;

const DELAY = `greatest(0, ceil(extract(epoch FROM (NEW.scheduled_at - clock_timestamp())) * 1000))::bigint`;

export async function up(knex: Knex): Promise<void> {
  await runScript(knex, notify(`format('%s:%s:%s', NEW.id, ${DELAY}, NEW.kind)`));
}

export async function down(knex: Knex): Promise<void> {
  await runScript(knex, notify(`format('%s:%s', NEW.id, ${DELAY})`));
}
