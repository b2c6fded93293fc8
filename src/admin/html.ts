// Server-rendered HTML for /admin. Every value from the database or the
// request goes through esc() (or attr() inside attributes); templates build
// strings only from these helpers, so nothing reaches the page unescaped.

import { escapeHtml } from '../lib/html.js';
import { assetUrl } from './assets.js';

export function esc(value: unknown): string {
  if (value === null || value === undefined) return '';
  const s = value instanceof Date ? utc(value) : String(value);
  return escapeHtml(s);
}

/** A moment as the page shows it: UTC, to the second, zone written out (2026-12-03T07:03:55Z). */
export function utc(d: Date): string {
  return Number.isNaN(d.getTime()) ? 'invalid date' : d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** A table in a box of its own that scrolls both ways, so a narrow screen scrolls the table, not the page. */
export function scrollBox(table: string): string {
  return `<div class="scroll">${table}</div>`;
}

/** A value placed in a query string inside an attribute. */
export function q(params: Record<string, string | number | undefined | null>): string {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') u.set(k, String(v));
  const s = u.toString();
  return s ? `?${esc(s)}` : '';
}

/** A small POST form with the CSRF token: one button, optional confirmation. */
export function actionButton(action: string, label: string, csrf: string, opts: { back?: string; confirm?: string; cls?: string } = {}): string {
  return `<form method="post" action="${esc(action)}" class="inline"${opts.confirm ? ` data-confirm="${esc(opts.confirm)}"` : ''}>` +
    `<input type="hidden" name="_csrf" value="${esc(csrf)}">` +
    (opts.back ? `<input type="hidden" name="back" value="${esc(opts.back)}">` : '') +
    `<button type="submit" class="${esc(opts.cls ?? '')}">${esc(label)}</button></form>`;
}

export function layout(title: string, body: string, opts: { csrf?: string; who?: string; flash?: string; problem?: string } = {}): string {
  const nav = opts.who
    ? `<a href="/admin">Jobs</a><a href="/admin/taric">TARIC</a><a href="/admin/invoices">Invoices</a><a href="/admin/reports">Reports</a>` +
      `<span>${esc(opts.who)}</span>${actionButton('/admin/logout', 'Log out', opts.csrf ?? '')}`
    : '';
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${esc(title)} · Herald admin</title>
<meta name="viewport" content="width=device-width,initial-scale=1"><link rel="stylesheet" href="${esc(assetUrl('admin.css'))}"></head>
<body><header><strong>Herald admin</strong>${nav}</header><main>
${opts.flash ? `<div class="flash" role="status">${esc(opts.flash)}</div>` : ''}${opts.problem ? `<div class="problem" role="alert">${esc(opts.problem)}</div>` : ''}
<h1>${esc(title)}</h1>
${body}
</main><script src="${esc(assetUrl('admin.js'))}"></script></body></html>`;
}

export function statusBadge(status: string): string {
  return `<span class="st st-${esc(status)}">${esc(status)}</span>`;
}
