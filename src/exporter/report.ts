import type { Knex } from 'knex';
import { listEnvelopeWorkbaskets, listUploads, type Upload } from './store.js';

// What `herald upload` and the demo print: one line per envelope and per
// workbasket, from the rows (not from memory), so a run that was finished
// by a retry in another process reports the same as one that ran straight.

export interface UploadReport {
  envelopes: Array<{
    envelopeId: string;
    file: string;
    bytes: number;
    md5: string;
    bucket: string;
    key: string;
    correlationId: string;
    uploaded: boolean;
    notified: boolean;
  }>;
  workbaskets: Array<{ id: number; title: string; status: string; envelopes: string[] }>;
}

export async function buildUploadReport(db: Knex, since: Date): Promise<UploadReport> {
  const uploads = await listUploads(db, { since });
  const pairs = await listEnvelopeWorkbaskets(db, uploads.map((u) => u.envelope_row_id));
  const workbaskets = new Map<number, UploadReport['workbaskets'][number]>();
  for (const p of pairs) {
    const w = workbaskets.get(p.workbasket_id) ?? { id: p.workbasket_id, title: p.title, status: p.status, envelopes: [] };
    w.envelopes.push(p.envelope_id);
    workbaskets.set(p.workbasket_id, w);
  }
  return { envelopes: uploads.map(toLine), workbaskets: [...workbaskets.values()] };
}

function toLine(u: Upload): UploadReport['envelopes'][number] {
  return {
    envelopeId: u.envelope_id,
    file: u.file_name,
    bytes: Number(u.file_size),
    md5: u.checksum,
    bucket: u.bucket,
    key: u.key,
    correlationId: u.correlation_id,
    uploaded: u.uploaded_at !== null,
    notified: u.notification_sent !== null,
  };
}

export function formatUploadReport(r: UploadReport): string {
  // With a worker running, the READY_FOR_EXPORT trigger has usually exported them already.
  if (r.envelopes.length === 0) {
    return 'no envelopes: no workbasket was READY_FOR_EXPORT (a running `herald worker` exports them as soon as they are made ready; `herald workbaskets list` shows SENT ones)\n';
  }
  const lines = r.envelopes.map(
    (e) =>
      `envelope ${e.envelopeId}  ${e.file}  ${e.bytes} bytes  md5 ${e.md5}  s3://${e.bucket}/${e.key}  ` +
      `${e.uploaded ? 'uploaded' : 'NOT UPLOADED'}  ${e.notified ? `notified (correlation ${e.correlationId})` : 'NOT NOTIFIED'}`,
  );
  for (const w of r.workbaskets) lines.push(`workbasket ${w.id} "${w.title}": ${w.status} (envelope ${w.envelopes.join(', ')})`);
  return `${lines.join('\n')}\n`;
}
