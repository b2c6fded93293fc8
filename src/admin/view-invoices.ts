import { AUTHORIZED_LEGAL_STATUSES } from '../providers/store.js';
import { actionButton, esc, q, scrollBox, statusBadge } from './html.js';
import type { InvoiceViewRow, ReportViewRow } from './store-invoices.js';
import type { InvoiceRequestViewRow } from './store-views.js';

// The Invoices page (every invoice, then the async invoice requests), one
// invoice's page, and the Reports page.

const invoiceHref = (id: number | string) => `/admin/invoices/${encodeURIComponent(String(id))}`;
const requestHref = (id: string) => `/admin/invoices${q({ request: id })}`;

/** PDF: a link once filed; "missing" where the provider has authorised the invoice but no PDF is filed yet. */
function pdfCell(r: InvoiceViewRow): string {
  if (r.pdf_bytes !== null) return `<a href="${invoiceHref(r.id)}/pdf">PDF</a> <span class="hook">${esc(r.pdf_bytes)} B</span>`;
  if (r.document_id === null) return '';
  return r.legal_status !== null && AUTHORIZED_LEGAL_STATUSES.has(r.legal_status) ? '<span class="red">missing</span>' : '<span class="hook">not yet</span>';
}

export function renderInvoiceTable(rows: InvoiceViewRow[], csrf: string, back: string): string {
  const body = rows
    .map((r) => {
      const doc = r.document_id !== null;
      const actions = [
        doc ? actionButton(`${invoiceHref(r.id)}/repoll`, 'Repoll', csrf, { back }) : '',
        doc && r.pdf_bytes === null ? actionButton(`${invoiceHref(r.id)}/attach-pdf`, 'Attach PDF', csrf, { back }) : '',
      ].join(' ');
      const made = r.request_id ? `<a href="${esc(requestHref(r.request_id))}">request</a>` : 'sync';
      const error = [r.document_error, r.next_step && `next: ${r.next_step}`].filter(Boolean).join(' — ');
      return `<tr data-invoice-id="${esc(r.id)}"><td><a href="${invoiceHref(r.id)}">${esc(r.id)}</a></td><td>${esc(r.invoice_number)}</td>` +
        `<td>${esc(r.supplier_name)} <span class="hook">#${esc(r.supplier_party_id)}</span></td><td>${esc(r.client_name)}</td>` +
        `<td>${esc(r.issue_date)}</td><td class="num">${esc(r.total)} ${esc(r.currency)}</td><td>${made}</td>` +
        `<td class="provider">${doc ? statusBadge(r.document_status ?? '') : '<span class="hook">no provider</span>'}</td>` +
        `<td class="legal">${r.legal_status ? statusBadge(r.legal_status) : ''}${r.needs_attention_at ? ` <span class="red" title="needs attention since ${esc(r.needs_attention_at)}">attention</span>` : ''}</td>` +
        `<td class="pdf">${pdfCell(r)}</td><td>${esc(r.created_at)}</td><td class="err">${esc(error)}</td><td>${actions}</td></tr>`;
    })
    .join('');
  return scrollBox(
    `<table id="invoices"><thead><tr><th>id</th><th>number</th><th>supplier</th><th>client</th><th>issued</th><th>total</th><th>made</th>` +
      `<th>provider</th><th>legal status</th><th>PDF</th><th>created (UTC)</th><th>provider error</th><th>actions</th></tr></thead>` +
      `<tbody>${body || '<tr><td colspan="13">no invoices</td></tr>'}</tbody></table>`,
  );
}

/** "older ›" to the next keyset page when there is one, "‹ newest" back to the first. */
export function renderInvoicePager(rows: InvoiceViewRow[], more: boolean, first: boolean): string {
  const older = more && rows.length > 0 ? `<a href="/admin/invoices${q({ before: rows[rows.length - 1]!.id })}#invoices">older ›</a>` : '';
  const newest = first ? '' : `<a href="/admin/invoices">‹ newest</a>`;
  return older || newest ? `<p class="pager">${newest} ${older}</p>` : '';
}

export function renderInvoiceRequests(rows: InvoiceRequestViewRow[]): string {
  const body = rows
    .map((r) => {
      const invoice = r.invoice_id === null ? '' : `<a href="${invoiceHref(r.invoice_id)}">${esc(r.invoice_number ?? r.invoice_id)}</a>`;
      return `<tr data-request-id="${esc(r.id)}"><td><a href="${esc(requestHref(r.id))}">${esc(r.id)}</a></td><td>${esc(r.caller)}</td>` +
        `<td>${statusBadge(r.status)}</td><td>${invoice}</td><td>${esc(r.created_at)}</td>` +
        `<td class="err">${esc(r.error_message)}</td><td><a href="/admin${q({ subject: r.id })}">jobs</a></td></tr>`;
    })
    .join('');
  return scrollBox(
    `<table id="invoice-requests"><thead><tr><th>request</th><th>caller</th><th>status</th><th>invoice</th><th>created (UTC)</th><th>error</th><th></th></tr></thead>` +
      `<tbody>${body || '<tr><td colspan="7">no invoice requests</td></tr>'}</tbody></table>`,
  );
}

/** One invoice: its row with actions, where it came from and its jobs. */
export function renderInvoicePage(r: InvoiceViewRow, csrf: string): string {
  return renderInvoiceTable([r], csrf, invoiceHref(r.id)) +
    `<p>${r.request_id ? `Made by invoice request <a href="${esc(requestHref(r.request_id))}">${esc(r.request_id)}</a>.` : 'Made synchronously (API or form), without an invoice request.'} ` +
    `<a href="/admin${q({ subject: r.id })}">Jobs about invoice ${esc(r.id)}</a> · <a href="/admin/invoices">all invoices</a></p>`;
}

export function renderReports(rows: ReportViewRow[]): string {
  const body = rows
    .map((r) => {
      const file = r.file_name ? `${esc(r.file_name)} <span class="hook">${esc(r.row_count)} rows, ${esc(r.file_size)} B</span>` : '';
      return `<tr data-report-id="${esc(r.id)}"><td><a href="/admin/reports/${esc(r.id)}">${esc(r.id)}</a></td><td>${esc(r.report_type)}</td>` +
        `<td>${statusBadge(r.status)}</td><td class="err">${esc(JSON.stringify(r.params))}</td><td>${esc(r.creator)}</td>` +
        `<td>${esc(r.created_at)}</td><td>${esc(r.finished_at)}</td><td>${file}</td><td class="err">${esc(r.error_message)}</td>` +
        `<td><a href="/admin${q({ subject: r.id })}">jobs</a></td></tr>`;
    })
    .join('');
  return scrollBox(
    `<table id="reports"><thead><tr><th>report</th><th>type</th><th>status</th><th>params</th><th>creator</th><th>created (UTC)</th>` +
      `<th>finished (UTC)</th><th>file</th><th>error</th><th></th></tr></thead><tbody>${body || '<tr><td colspan="10">no reports</td></tr>'}</tbody></table>`,
  );
}
