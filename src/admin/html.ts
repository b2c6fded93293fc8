// Server-rendered HTML for /admin. Every value from the database or the
// request goes through esc() (or attr() inside attributes); templates build
// strings only from these helpers, so nothing reaches the page unescaped.

import { escapeHtml } from '../lib/html.js';

export function esc(value: unknown): string {
  if (value === null || value === undefined) return '';
  const s = value instanceof Date ? value.toISOString().replace('T', ' ').slice(0, 19) : String(value);
  return escapeHtml(s);
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

const STYLE = `
body{font:14px/1.4 system-ui,sans-serif;margin:0;color:#222}
header{background:#1d3557;color:#fff;padding:8px 16px;display:flex;gap:16px;align-items:center}
header a{color:#fff} header form{margin-left:auto}
main{padding:16px}
table{border-collapse:collapse;width:100%;margin:8px 0}
th,td{border-bottom:1px solid #ddd;padding:4px 6px;text-align:left;vertical-align:top}
th{background:#f1f3f5}
.num{text-align:right} .inline{display:inline}
.red{color:#fff;background:#c1121f;padding:0 4px;border-radius:3px}
.st{padding:0 6px;border-radius:3px;font-size:12px;white-space:nowrap}
.st-pending{background:#e9ecef} .st-processing{background:#cfe2ff} .st-failed{background:#fff3cd}
.st-failed_permanent{background:#f8d7da;color:#842029;font-weight:600} .st-completed{background:#d1e7dd}
.err{font-family:monospace;font-size:12px;max-width:40em;word-break:break-word}
.flash{background:#d1e7dd;padding:6px 10px;margin-bottom:8px}
.problem{background:#f8d7da;padding:6px 10px;margin-bottom:8px}
form.filters{display:flex;flex-wrap:wrap;gap:8px;align-items:end}
form.filters label{display:flex;flex-direction:column;font-size:12px}
.hook{color:#6c757d;font-style:italic}
`;

// The page's only script: confirmation on dangerous buttons, and filter
// selects that apply themselves. Everything works without it.
const SCRIPT = `
document.addEventListener('submit', function (e) {
  var msg = e.target.getAttribute('data-confirm');
  if (msg && !window.confirm(msg)) e.preventDefault();
});
document.querySelectorAll('form.filters select').forEach(function (s) {
  s.addEventListener('change', function () { s.form.submit(); });
});
`;

export function layout(title: string, body: string, opts: { csrf?: string; who?: string; flash?: string; problem?: string } = {}): string {
  const nav = opts.who
    ? `<a href="/admin">Jobs</a><a href="/admin/taric">TARIC</a><a href="/admin/invoices">Invoices</a>` +
      `<span>${esc(opts.who)}</span>${actionButton('/admin/logout', 'Log out', opts.csrf ?? '')}`
    : '';
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${esc(title)} · Herald admin</title>
<meta name="viewport" content="width=device-width,initial-scale=1"><style>${STYLE}</style></head>
<body><header><strong>Herald admin</strong>${nav}</header><main>
${opts.flash ? `<div class="flash" role="status">${esc(opts.flash)}</div>` : ''}${opts.problem ? `<div class="problem" role="alert">${esc(opts.problem)}</div>` : ''}
<h1>${esc(title)}</h1>
${body}
</main><script>${SCRIPT}</script></body></html>`;
}

export function statusBadge(status: string): string {
  return `<span class="st st-${esc(status)}">${esc(status)}</span>`;
}
