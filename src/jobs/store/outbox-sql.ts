// A capability's statement can write the job rows for the rows it inserts
// in the same statement, as a data-modifying CTE, instead of through a
// trigger calling herald_add_jobs(): the outbox without the trigger's cost.
// Measured (decision 0020) on the invoice request submit, five requests per
// statement: 548-605 us against 916-980 us when a statement-level trigger
// wrote them, whose call of a SQL-language function plans its INSERT again
// on every call.
// The text is built here so that the jobs table's columns stay spelled out
// only in src/jobs; the caller supplies names from its own code, never input.

const IDENTIFIER = /^[a-z_][a-z0-9_]*$/;
const LITERAL = /^[a-z0-9_-]+$/;

export interface OutboxJobs {
  /** The job kind (a literal such as 'invoice-request'). */
  kind: string;
  /** The CTE (or table) holding one row per job to write. */
  from: string;
  /** Its column with the subject's id: the job's subject_id, and the payload's `payloadKey`. */
  idColumn: string;
  /** The payload member holding the id ({ requestId: ... }). */
  payloadKey: string;
  subjectType: string;
}

/**
 * `INSERT INTO jobs ... SELECT ... FROM <from>`: one pending job per row, due
 * now, announced by the jobs table's insert trigger when its transaction
 * commits (writer_announces false), as herald_add_jobs() writes them.
 */
export function outboxJobsSql(o: OutboxJobs): string {
  for (const [name, value, shape] of [
    ['from', o.from, IDENTIFIER], ['idColumn', o.idColumn, IDENTIFIER], ['payloadKey', o.payloadKey, /^[A-Za-z][A-Za-z0-9]*$/],
    ['kind', o.kind, LITERAL], ['subjectType', o.subjectType, LITERAL],
  ] as const) {
    if (!shape.test(value)) throw new TypeError(`outboxJobsSql: ${name} "${value}" is not a plain name`);
  }
  return `INSERT INTO jobs (kind, payload, subject_type, subject_id)
       SELECT '${o.kind}', jsonb_build_object('${o.payloadKey}', ${o.idColumn}), '${o.subjectType}', ${o.idColumn}::text FROM ${o.from}`;
}
