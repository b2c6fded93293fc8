import type { DbOrTrx } from '../db/index.js';
import type { LegalStatus, ProviderDocument } from './store.js';

// The poller's SQL, one statement per batch of polls (poll.ts): read the
// documents with whether their PDF is filed, then record what each GET saw.
// legal_status only moves forward (provider_legal_status_rank, as in
// store.ts's advanceLegalStatus for webhooks), and a poll is counted by
// compare-and-set on poll_attempts, so a re-run after a crash never counts
// one poll twice.

export interface PollDocument extends ProviderDocument {
  has_pdf: boolean;
}

export async function getDocumentsForPoll(db: DbOrTrx, ids: readonly number[]): Promise<PollDocument[]> {
  const { rows } = await db.raw(
    `SELECT d.*, EXISTS (SELECT 1 FROM provider_attachments a WHERE a.invoice_id = d.invoice_id AND a.kind = 'pdf') AS has_pdf
       FROM provider_documents d WHERE d.id = ANY(?::int[])`,
    [ids as number[]],
  );
  return rows as PollDocument[];
}

export interface PollSeen {
  id: number;
  generation: number;
  /** poll_attempts when the poll started: the compare-and-set of the count. */
  seen: number;
  /** null: the GET failed (the poll still counts). */
  legalStatus: LegalStatus | null;
  cufe: string | null;
}

// The status moves only forward, and only for a submitted document.
const ADVANCES = `(r.legal_status IS NOT NULL AND d.status = 'submitted'
                   AND provider_legal_status_rank(r.legal_status) > provider_legal_status_rank(d.legal_status))`;

/** Records the polls: each document's new legal status (copied to its invoice) and its poll count. */
export async function recordPolls(db: DbOrTrx, polls: readonly PollSeen[]): Promise<ProviderDocument[]> {
  if (polls.length === 0) return [];
  const { rows } = await db.raw(
    `WITH r AS (
       SELECT * FROM jsonb_to_recordset(?::jsonb) AS r (id int, generation int, seen int, legal_status text, cufe text)
     ), moved AS (
       UPDATE provider_documents d
          SET legal_status = CASE WHEN ${ADVANCES} THEN r.legal_status ELSE d.legal_status END,
              cufe = CASE WHEN ${ADVANCES} THEN coalesce(r.cufe, d.cufe) ELSE d.cufe END,
              final_at = CASE WHEN ${ADVANCES}
                              THEN CASE WHEN r.legal_status IN ('DGI_AUTHORIZED', 'PAC_REJECTED', 'DGI_REJECTED') THEN now() END
                              ELSE d.final_at END,
              poll_attempts = CASE WHEN d.poll_generation = r.generation AND d.poll_attempts = r.seen
                                   THEN d.poll_attempts + 1 ELSE d.poll_attempts END,
              updated_at = now()
         FROM r
        WHERE d.id = r.id
        RETURNING d.*
     ), copied AS (
       UPDATE invoices i SET legal_status = m.legal_status
         FROM moved m
        WHERE i.id = m.invoice_id AND i.legal_status IS DISTINCT FROM m.legal_status
     )
     SELECT * FROM moved`,
    [JSON.stringify(polls.map((p) => ({ id: p.id, generation: p.generation, seen: p.seen, legal_status: p.legalStatus, cufe: p.cufe })))],
  );
  return rows as ProviderDocument[];
}
