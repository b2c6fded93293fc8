import type { DbOrTrx } from '../db/index.js';

// Every SQL statement on uploads, and the workbasket moves the upload step
// makes. Uploads are created from envelopes that have none, so a crashed run
// is finished by any later one; state changes are compare-and-set.

export interface Upload {
  id: number;
  envelope_row_id: number;
  envelope_id: string;
  bucket: string;
  key: string;
  file_name: string;
  file_size: number;
  checksum: string;
  correlation_id: string;
  uploaded_at: Date | null;
  notification_sent: Date | null;
  created_at: Date;
}

const UPLOAD_COLUMNS = `u.id, u.envelope_id AS envelope_row_id, e.envelope_id, u.bucket, u.key, u.file_name,
  u.file_size, u.checksum, u.correlation_id, u.uploaded_at, u.notification_sent, u.created_at`;

/**
 * One upload row per envelope that has none yet; the correlation id HMRC
 * will see is fixed here, before any call, so every retry repeats it.
 */
export async function insertMissingUploads(db: DbOrTrx, target: { bucket: string; prefix: string }): Promise<Upload[]> {
  const { rows } = await db.raw(
    `WITH created AS (
       INSERT INTO uploads (envelope_id, bucket, key, file_name, file_size, checksum, correlation_id)
       SELECT e.id, :bucket, :prefix || 'DIT' || e.envelope_id || '.xml', 'DIT' || e.envelope_id || '.xml',
              e.size_bytes, e.md5, gen_random_uuid()
         FROM envelopes e
        WHERE NOT EXISTS (SELECT 1 FROM uploads x WHERE x.envelope_id = e.id)
        ORDER BY e.id
       ON CONFLICT ON CONSTRAINT ux_uploads_envelope DO NOTHING
       RETURNING *
     )
     SELECT ${UPLOAD_COLUMNS} FROM created u JOIN envelopes e ON e.id = u.envelope_id ORDER BY u.id`,
    { bucket: target.bucket, prefix: target.prefix },
  );
  return rows as Upload[];
}

export async function getUpload(db: DbOrTrx, id: number): Promise<Upload | null> {
  const { rows } = await db.raw(`SELECT ${UPLOAD_COLUMNS} FROM uploads u JOIN envelopes e ON e.id = u.envelope_id WHERE u.id = ?`, [id]);
  return (rows[0] as Upload | undefined) ?? null;
}

/** Uploads not yet in S3: the ones a crashed run left behind. */
export async function listUploadsNotUploaded(db: DbOrTrx): Promise<Upload[]> {
  const { rows } = await db.raw(`SELECT ${UPLOAD_COLUMNS} FROM uploads u JOIN envelopes e ON e.id = u.envelope_id WHERE u.uploaded_at IS NULL ORDER BY u.id`);
  return rows as Upload[];
}

export async function listUploads(db: DbOrTrx, filter: { since?: Date; notNotified?: boolean } = {}): Promise<Upload[]> {
  const { rows } = await db.raw(
    `SELECT ${UPLOAD_COLUMNS} FROM uploads u JOIN envelopes e ON e.id = u.envelope_id
      WHERE (:since::timestamptz IS NULL OR u.created_at >= :since::timestamptz)
        AND (NOT :notNotified OR u.notification_sent IS NULL)
      ORDER BY u.id`,
    { since: filter.since ?? null, notNotified: filter.notNotified ?? false },
  );
  return rows as Upload[];
}

/** Compare-and-set: null when another run marked it first. */
export async function markUploadUploaded(db: DbOrTrx, id: number): Promise<{ id: number } | null> {
  const { rows } = await db.raw(`UPDATE uploads SET uploaded_at = now() WHERE id = ? AND uploaded_at IS NULL RETURNING id`, [id]);
  return (rows[0] as { id: number } | undefined) ?? null;
}

export async function markUploadNotified(db: DbOrTrx, id: number): Promise<{ id: number } | null> {
  const { rows } = await db.raw(`UPDATE uploads SET notification_sent = now() WHERE id = ? AND notification_sent IS NULL RETURNING id`, [id]);
  return (rows[0] as { id: number } | undefined) ?? null;
}

/**
 * READY_FOR_EXPORT -> SENT for the workbaskets of this envelope whose every
 * transaction sits in an envelope that is now in S3. The workbasket rows are
 * locked first (in id order): two envelopes of one workbasket finishing at
 * once would otherwise each miss the other's uncommitted upload and neither
 * would move it. After the lock wait, the check below sees the other commit.
 */
export async function markWorkbasketsSent(db: DbOrTrx, envelopeRowId: number): Promise<number[]> {
  await db.raw(
    `SELECT id FROM workbaskets
      WHERE id IN (SELECT workbasket_id FROM envelope_transactions WHERE envelope_id = ?)
      ORDER BY id FOR UPDATE`,
    [envelopeRowId],
  );
  const { rows } = await db.raw(
    `UPDATE workbaskets w SET status = 'SENT', status_changed_at = now()
      WHERE w.status = 'READY_FOR_EXPORT'
        AND w.id IN (SELECT workbasket_id FROM envelope_transactions WHERE envelope_id = :envelope)
        AND NOT EXISTS (
              SELECT 1 FROM transactions t
                LEFT JOIN envelope_transactions et ON et.transaction_id = t.id
                LEFT JOIN uploads u ON u.envelope_id = et.envelope_id
               WHERE t.workbasket_id = w.id AND u.uploaded_at IS NULL)
      RETURNING w.id`,
    { envelope: envelopeRowId },
  );
  return (rows as Array<{ id: number }>).map((r) => r.id);
}

export interface EnvelopeWorkbasket {
  envelope_id: string;
  workbasket_id: number;
  title: string;
  status: string;
}

export async function listEnvelopeWorkbaskets(db: DbOrTrx, envelopeRowIds: number[]): Promise<EnvelopeWorkbasket[]> {
  if (envelopeRowIds.length === 0) return [];
  const { rows } = await db.raw(
    `SELECT DISTINCT e.envelope_id, w.id AS workbasket_id, w.title, w.status
       FROM envelope_transactions et
       JOIN envelopes e ON e.id = et.envelope_id
       JOIN workbaskets w ON w.id = et.workbasket_id
      WHERE et.envelope_id = ANY(?)
      ORDER BY e.envelope_id, w.id`,
    [envelopeRowIds],
  );
  return rows as EnvelopeWorkbasket[];
}
