import type { FastifyInstance, FastifyRequest } from 'fastify';
import { HttpError } from '../http/errors.js';
import { escapeHtml } from '../lib/html.js';
import { allowInlineStyle } from '../http/security-headers.js';
import type { RouteDeps } from '../http/route-types.js';
import { generateInvoice } from './generate.js';
import { loadInvoiceResponse } from './present.js';
import { invoiceHttpError } from './http-errors.js';
import { describeFirstIssue, generateInvoiceRequest } from './schemas.js';

// The UI form: GET /invoices/new shows it, POST /invoices/generate takes the
// form post (application/x-www-form-urlencoded), runs the same
// generateInvoice as the API and answers with a small HTML page. A browser
// authenticates with Basic credentials (any user, the API key as password);
// cross-site posts are refused, so a page elsewhere cannot use them.

const ITEM_ROWS = 5;
const ITEM_FIELDS = ['description', 'quantity', 'unitPrice', 'discount', 'taxRate'] as const;
const STYLE = 'body{font-family:system-ui,sans-serif;margin:2rem;max-width:60rem}input{margin:.1rem}';
// The Content-Security-Policy allows this one inline stylesheet by its hash.
const withStyle = allowInlineStyle(STYLE);

export async function invoiceFormRoutes(app: FastifyInstance, { db, now }: RouteDeps): Promise<void> {
  app.get('/invoices/new', { config: { html: true, ...withStyle }, schema: { hide: true } }, async (_req, reply) => {
    return reply.type('text/html; charset=utf-8').send(formPage());
  });

  app.post('/invoices/generate', { config: { html: true, ...withStyle }, schema: { hide: true } }, async (req, reply) => {
    refuseCrossSite(req);
    const parsed = generateInvoiceRequest.safeParse(formToRequest((req.body ?? {}) as Record<string, unknown>));
    if (!parsed.success) {
      const { field, message } = describeFirstIssue(parsed.error);
      throw new HttpError('VALIDATION_FAILED', message, { field });
    }
    let generated;
    try {
      generated = await generateInvoice(db, parsed.data, { now });
    } catch (err) {
      throw invoiceHttpError(err);
    }
    const invoice = (await loadInvoiceResponse(db, generated.id))!;
    const jsonUrl = `/api/v1/invoices/${encodeURIComponent(invoice.invoiceNumber)}?supplierId=${invoice.supplierId}`;
    return reply
      .code(201)
      .type('text/html; charset=utf-8')
      .send(
        page(
          `Invoice ${invoice.invoiceNumber}`,
          `<p>Invoice <strong id="invoice-number">${escapeHtml(invoice.invoiceNumber)}</strong> issued to ${escapeHtml(invoice.client.name)}
on ${escapeHtml(invoice.issueDate)}, due ${escapeHtml(invoice.dueDate)}.</p>
<p>Subtotal ${escapeHtml(invoice.subtotal)}, tax ${escapeHtml(invoice.taxTotal)},
total <strong id="invoice-total">${escapeHtml(invoice.currency)} ${escapeHtml(invoice.total)}</strong>.</p>
<p><a href="${escapeHtml(jsonUrl)}">As JSON</a> · <a href="/invoices/new">Another invoice</a></p>`,
        ),
      );
  });
}

/** Browsers say where a post comes from; anything but this site is refused. */
function refuseCrossSite(req: FastifyRequest): void {
  const site = req.headers['sec-fetch-site'];
  if (site === 'cross-site' || site === 'same-site') throw new HttpError('FORBIDDEN_ORIGIN');
  const origin = req.headers.origin;
  if (origin && origin !== 'null') {
    let host: string;
    try {
      host = new URL(origin).host;
    } catch {
      throw new HttpError('FORBIDDEN_ORIGIN');
    }
    if (host !== req.headers.host) throw new HttpError('FORBIDDEN_ORIGIN');
  }
}

/**
 * Form fields -> the API's GenerateInvoiceRequest shape. Item fields repeat
 * (one per row); rows left blank are skipped. Blank optional fields count as
 * absent; ids that are not digits stay strings so validation names them.
 */
export function formToRequest(form: Record<string, unknown>): Record<string, unknown> {
  const one = (name: string): string | undefined => {
    const v = form[name];
    const s = Array.isArray(v) ? v[0] : v;
    return typeof s === 'string' && s.trim() !== '' ? s.trim() : undefined;
  };
  const list = (name: string): string[] => {
    const v = form[name];
    return (Array.isArray(v) ? v : v === undefined ? [] : [v]).map((x) => String(x).trim());
  };
  const id = (name: string) => {
    const v = one(name);
    return v !== undefined && /^\d{1,15}$/.test(v) ? Number(v) : v;
  };
  const columns = Object.fromEntries(ITEM_FIELDS.map((f) => [f, list(f)])) as Record<(typeof ITEM_FIELDS)[number], string[]>;
  const rows = Math.max(...ITEM_FIELDS.map((f) => columns[f].length));
  const items: Record<string, string>[] = [];
  for (let i = 0; i < rows; i++) {
    const row: Record<string, string> = {};
    for (const f of ITEM_FIELDS) if (columns[f][i]) row[f] = columns[f][i]!;
    if (Object.keys(row).length > 0) items.push(row);
  }
  const body: Record<string, unknown> = { supplierId: id('supplierId'), clientId: id('clientId'), items };
  for (const f of ['issueDate', 'dueDate', 'currency', 'notes']) {
    const v = one(f);
    if (v !== undefined) body[f] = v;
  }
  return body;
}

function page(title: string, body: string): string {
  return `<!doctype html><html lang="en"><meta charset="utf-8"><title>${escapeHtml(title)}</title>
<style>${STYLE}</style>
<h1>${escapeHtml(title)}</h1>
${body}</html>`;
}

function formPage(): string {
  const row = `<tr>${ITEM_FIELDS.map((f) => `<td><input name="${f}" aria-label="${f}"${f === 'description' ? ' size="30"' : ' size="8"'}></td>`).join('')}</tr>`;
  return page(
    'New invoice',
    `<form method="post" action="/invoices/generate">
<p><label>Supplier id <input name="supplierId" required inputmode="numeric"></label>
<label>Client id <input name="clientId" required inputmode="numeric"></label></p>
<p><label>Issue date <input name="issueDate" type="date"></label>
<label>Due date <input name="dueDate" type="date"></label>
<label>Currency <input name="currency" size="3" placeholder="EUR"></label></p>
<table><tr><th>Description</th><th>Quantity</th><th>Unit price</th><th>Discount</th><th>Tax %</th></tr>
${row.repeat(ITEM_ROWS)}</table>
<p><label>Notes <textarea name="notes" rows="2" cols="60"></textarea></label></p>
<button type="submit">Generate invoice</button>
</form>`,
  );
}
