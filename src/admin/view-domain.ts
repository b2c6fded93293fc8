import { actionButton, esc, statusBadge } from './html.js';
import type { EnvelopeView, InvoiceRequestViewRow } from './store-views.js';

// TARIC and invoices views.

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
  return `<table id="envelopes"><thead><tr><th>envelope</th><th>workbaskets</th><th>bytes</th><th>S3 key</th><th>checksum</th><th>upload</th>` +
    `<th>notification</th><th>actions</th></tr></thead><tbody>${body || '<tr><td colspan="8">no envelopes yet</td></tr>'}</tbody></table>`;
}

export interface InvoiceActions {
  /** src/providers' "attach PDF" / "repoll", when that capability provides them. */
  attachPdf: boolean;
  repoll: boolean;
}

export function renderInvoices(rows: InvoiceRequestViewRow[], csrf: string, actions: InvoiceActions): string {
  const body = rows
    .map((r) => {
      const doc = r.document_id !== null;
      const buttons = [
        doc && actions.repoll ? actionButton(`/admin/invoices/${r.invoice_id}/repoll`, 'Repoll', csrf, { back: '/admin/invoices' }) : '',
        doc && actions.attachPdf && !r.has_pdf ? actionButton(`/admin/invoices/${r.invoice_id}/attach-pdf`, 'Attach PDF', csrf, { back: '/admin/invoices' }) : '',
      ].join(' ');
      return `<tr><td><a href="/admin?subject=${esc(encodeURIComponent(r.id))}">${esc(r.id)}</a></td><td>${esc(r.caller)}</td><td>${statusBadge(r.status)}</td>` +
        `<td>${esc(r.invoice_number)}</td><td>${doc ? esc(r.document_status) : '<span class="hook">not submitted</span>'}</td>` +
        `<td>${esc(r.legal_status)}</td><td>${r.has_pdf === null ? '' : r.has_pdf ? 'attached' : 'missing'}</td>` +
        `<td class="err">${esc(r.error_message ?? r.document_error)}</td><td>${buttons}</td></tr>`;
    })
    .join('');
  return `<table id="invoices"><thead><tr><th>request</th><th>caller</th><th>status</th><th>invoice</th><th>provider</th><th>legal status</th>` +
    `<th>PDF</th><th>error</th><th>actions</th></tr></thead><tbody>${body || '<tr><td colspan="9">no invoice requests</td></tr>'}</tbody></table>`;
}
