import type { Knex } from 'knex';

// Every SQL statement on failure_mails (migrations/0008_ops.ts).

type Db = Knex | Knex.Transaction;

export type FailureMailStatus = 'pending' | 'sending' | 'sent';

export interface FailureMailRow {
  id: number;
  job_id: number;
  failed_at: Date;
  job_kind: string;
  subject_type: string | null;
  subject_id: string | null;
  attempts: number;
  error_class: string | null;
  last_error: string | null;
  status: FailureMailStatus;
  claimed_at: Date | null;
  claim_token: string | null;
  sent_at: Date | null;
  message_id: string | null;
  created_at: Date;
}

export interface NewFailureMail {
  jobId: number;
  failedAt: Date;
  jobKind: string;
  subjectType: string | null;
  subjectId: string | null;
  attempts: number;
  errorClass: string | null;
  lastError: string | null;
}

/**
 * The marker: one row per (job, entry into failed_permanent). A second insert
 * for the same entry (a hook called twice) returns null instead of failing,
 * so it cannot abort the caller's transaction (ON CONFLICT, no 23505).
 */
export async function insertFailureMail(db: Db, mail: NewFailureMail): Promise<FailureMailRow | null> {
  const { rows } = await db.raw(
    `INSERT INTO failure_mails (job_id, failed_at, job_kind, subject_type, subject_id, attempts, error_class, last_error)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?)
     ON CONFLICT ON CONSTRAINT ux_failure_mails_job_failure DO NOTHING
     RETURNING *`,
    [mail.jobId, mail.failedAt.toISOString(), mail.jobKind, mail.subjectType, mail.subjectId, mail.attempts, mail.errorClass, mail.lastError],
  );
  return (rows[0] as FailureMailRow | undefined) ?? null;
}

export async function getFailureMail(db: Db, id: number): Promise<FailureMailRow | null> {
  const { rows } = await db.raw(`SELECT * FROM failure_mails WHERE id = ?`, [id]);
  return (rows[0] as FailureMailRow | undefined) ?? null;
}

/**
 * pending -> sending, or a sending row whose sender went quiet for
 * staleAfterMs (it died mid-send) -> sending again. Returns the row if this
 * caller may send it, null if another sender holds it or it was sent.
 */
export async function claimFailureMail(db: Db, id: number, staleAfterMs: number): Promise<FailureMailRow | null> {
  const { rows } = await db.raw(
    `UPDATE failure_mails SET status = 'sending', claimed_at = clock_timestamp(), claim_token = gen_random_uuid()
      WHERE id = ? AND (status = 'pending'
                        OR (status = 'sending' AND claimed_at < clock_timestamp() - make_interval(secs => ?)))
      RETURNING *`,
    [id, staleAfterMs / 1000],
  );
  return (rows[0] as FailureMailRow | undefined) ?? null;
}

/** sending -> sent (only the claim that sent it; null otherwise). */
export async function markFailureMailSent(db: Db, id: number, claimToken: string, messageId: string): Promise<FailureMailRow | null> {
  const { rows } = await db.raw(
    `UPDATE failure_mails SET status = 'sent', sent_at = clock_timestamp(), message_id = ?
      WHERE id = ? AND status = 'sending' AND claim_token = ?
      RETURNING *`,
    [messageId, id, claimToken],
  );
  return (rows[0] as FailureMailRow | undefined) ?? null;
}

/** Gives a claim back after a failed send, so the job's retry can claim it again at once. */
export async function releaseFailureMail(db: Db, id: number, claimToken: string): Promise<void> {
  await db.raw(`UPDATE failure_mails SET status = 'pending', claimed_at = NULL, claim_token = NULL WHERE id = ? AND status = 'sending' AND claim_token = ?`, [
    id,
    claimToken,
  ]);
}

export async function listFailureMails(db: Db, opts: { jobId?: number } = {}): Promise<FailureMailRow[]> {
  const { rows } = await db.raw(
    `SELECT * FROM failure_mails ${opts.jobId !== undefined ? 'WHERE job_id = ?' : ''} ORDER BY id`,
    opts.jobId !== undefined ? [opts.jobId] : [],
  );
  return rows as FailureMailRow[];
}
