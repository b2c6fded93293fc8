import { actionButton, esc, scrollBox, statusBadge } from './html.js';
import type { EnvelopeView } from './store-views.js';

// The TARIC view (the invoices and reports views: view-invoices.ts).

export function renderTaric(rows: EnvelopeView[], csrf: string): string {
  const body = rows
    .map((e) => {
      const notified = e.notification_sent ? `sent ${esc(e.notification_sent)}` : e.notify_status ? statusBadge(e.notify_status) : 'not yet';
      const retry = e.upload_id && e.uploaded_at
        ? actionButton(`/admin/uploads/${e.upload_id}/notify`, 'Retry notification', csrf, { back: '/admin/taric', confirm: `Notify HMRC again about upload ${e.upload_id}?` })
        : '';
      return `<tr id="upload-${esc(e.upload_id)}"><td>${esc(e.envelope_id)}</td><td>${esc(e.workbaskets)}</td><td class="num">${esc(e.size_bytes)}</td>` +
        `<td>${e.key ? `s3://${esc(e.bucket)}/${esc(e.key)}` : ''}</td><td class="err">${esc(e.checksum ?? e.md5)}</td>` +
        `<td>${e.uploaded_at ? `uploaded ${esc(e.uploaded_at)}` : 'not uploaded'}</td><td>${notified}${e.notify_error && !e.notification_sent ? `<div class="err">${esc(e.notify_error)}</div>` : ''}</td><td>${retry}</td></tr>`;
    })
    .join('');
  return scrollBox(`<table id="envelopes"><thead><tr><th>envelope</th><th>workbaskets</th><th>bytes</th><th>S3 key</th><th>checksum</th><th>upload</th>` +
    `<th>notification</th><th>actions</th></tr></thead><tbody>${body || '<tr><td colspan="8">no envelopes yet</td></tr>'}</tbody></table>`);
}
