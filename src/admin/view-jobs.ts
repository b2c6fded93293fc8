import type { JobRow } from '../jobs/contract/types.js';
import type { QueueStatus } from '../queue/operations.js';
import { formatAge } from '../queue/operations.js';
import { actionButton, esc, q, scrollBox, statusBadge } from './html.js';

// The dashboard: counters, filters, the job table and bulk actions.

export const JOB_STATUSES = ['pending', 'processing', 'failed', 'failed_permanent', 'completed'] as const;
export const PAGE_SIZE = 50;

export interface JobFilters {
  status?: (typeof JOB_STATUSES)[number] | undefined;
  kind?: string | undefined;
  subject?: string | undefined;
  error?: string | undefined;
  from?: string | undefined;
  to?: string | undefined;
  order: 'asc' | 'desc';
  page: number;
}

/** Where the subject of a job is shown in full (its own page or a page filtered to it); subjects without a page as text. */
export function subjectHref(type: string, id: string): string | null {
  const at = encodeURIComponent(id);
  switch (type) {
    case 'upload': return `/admin/taric?upload=${at}`;
    case 'invoice': return `/admin/invoices/${at}`;
    case 'invoice_request': return `/admin/invoices?request=${at}`;
    case 'report': return `/admin/reports/${at}`;
    case 'job': return `/admin/jobs/${at}`;
    default: return null;
  }
}

export function subjectLink(type: string | null, id: string | null): string {
  if (!type || !id) return '';
  const href = subjectHref(type, id);
  const label = `${esc(type)} ${esc(id)}`;
  return href ? `<a href="${esc(href)}">${label}</a>` : label;
}

export function renderCounters(s: QueueStatus, warnAfterS: number): string {
  const age = (v: number | null) => (v !== null && v > warnAfterS ? `<span class="red" title="over ${esc(formatAge(warnAfterS))}">${esc(formatAge(v))}</span>` : esc(formatAge(v)));
  const row = (k: string, c: Omit<QueueStatus['total'], never>, total = false) =>
    `<tr${total ? ' class="total"' : ''}><th>${esc(k)}</th><td class="num">${c.pending}</td><td class="num">${c.processing}</td>` +
    `<td class="num">${c.failed}</td><td class="num">${c.failed_permanent ? `<strong>${c.failed_permanent}</strong>` : 0}</td>` +
    `<td class="num">${c.completed_today}</td><td class="num" data-age>${age(c.oldest_pending_s)}</td></tr>`;
  return scrollBox(`<table id="counters"><thead><tr><th>kind</th><th>pending</th><th>processing</th><th>failed</th><th>permanently failed</th>` +
    `<th>completed today</th><th>oldest pending</th></tr></thead><tbody>` +
    s.kinds.map((k) => row(k.kind, k)).join('') + row('total', s.total, true) + `</tbody></table>`);
}

export function renderFilters(f: JobFilters, kinds: string[]): string {
  const opt = (v: string, cur: string | undefined, label = v) => `<option value="${esc(v)}"${v === (cur ?? '') ? ' selected' : ''}>${esc(label)}</option>`;
  return `<form class="filters" method="get" action="/admin">
<label>status<select name="status">${opt('', f.status, 'any')}${JOB_STATUSES.map((s) => opt(s, f.status)).join('')}</select></label>
<label>kind<select name="kind">${opt('', f.kind, 'any')}${kinds.map((k) => opt(k, f.kind)).join('')}</select></label>
<label>subject id<input name="subject" value="${esc(f.subject)}" size="10"></label>
<label>error text<input name="error" value="${esc(f.error)}" size="20"></label>
<label>created from<input type="date" name="from" value="${esc(f.from)}"></label>
<label>created before<input type="date" name="to" value="${esc(f.to)}"></label>
<label>order<select name="order">${opt('desc', f.order, 'newest first')}${opt('asc', f.order, 'oldest first')}</select></label>
<button type="submit">Filter</button> <a href="/admin">reset</a></form>`;
}

export function renderJobTable(rows: JobRow[], total: number, f: JobFilters, csrf: string, back: string): string {
  const body = rows
    .map((j) => {
      const actions = [
        j.status === 'failed' || j.status === 'failed_permanent' ? actionButton(`/admin/jobs/${j.id}/retry`, 'Retry now', csrf, { back }) : '',
        j.status !== 'processing' ? actionButton(`/admin/jobs/${j.id}/clear`, 'Clear', csrf, { back, confirm: `Delete job ${j.id} and its history?` }) : '',
      ].join(' ');
      return `<tr data-job-id="${esc(j.id)}"><td><a href="/admin/jobs/${esc(j.id)}">${esc(j.id)}</a></td><td>${esc(j.kind)}</td><td>${subjectLink(j.subject_type, j.subject_id)}</td>` +
        `<td class="status">${statusBadge(j.status)}</td><td class="num">${esc(j.attempts)}${j.max_attempts ? ` / ${esc(j.max_attempts)}` : ''}</td>` +
        `<td>${esc(j.scheduled_at)}</td><td>${esc(j.created_at)}</td><td class="err"><div class="clamp">${esc(j.error_class ? `[${j.error_class}] ` : '')}${esc(j.last_error)}</div></td><td>${actions}</td></tr>`;
    })
    .join('');
  const pages = Math.max(1, Math.ceil(total / PAGE_SIZE));
  const link = (page: number, label: string) =>
    `<a href="/admin${q({ status: f.status, kind: f.kind, subject: f.subject, error: f.error, from: f.from, to: f.to, order: f.order, page })}">${esc(label)}</a>`;
  const nav = `<p id="pager">page ${f.page} of ${pages} (${total} job${total === 1 ? '' : 's'}) ` +
    `${f.page > 1 ? link(f.page - 1, '‹ previous') : ''} ${f.page < pages ? link(f.page + 1, 'next ›') : ''}</p>`;
  return nav + scrollBox(`<table id="jobs"><thead><tr><th>id</th><th>kind</th><th>subject</th><th>status</th><th>attempts</th><th>scheduled (UTC)</th>` +
    `<th>created (UTC)</th><th>last error</th><th>actions</th></tr></thead><tbody>${body || '<tr><td colspan="9">no jobs match</td></tr>'}</tbody></table>`) + nav;
}

export function renderBulkActions(csrf: string, unstickAfterS: number): string {
  return `<div id="bulk">` +
    actionButton('/admin/jobs/retry-all-failed', 'Retry all permanently failed', csrf, { confirm: 'Retry every permanently failed job (attempts reset)?' }) + ' ' +
    actionButton('/admin/jobs/unstick', `Unstick processing (silent > ${formatAge(unstickAfterS)})`, csrf, { confirm: 'Put stuck processing jobs back to pending?' }) +
    `</div>`;
}
