import { z } from 'zod';
import { callProvider, parseJsonBody, ProviderHttpError } from './classify.js';
import type { ProviderClient } from './provider.js';

// Fakturownia-style invoicing API. POST /invoices.json with the token in the
// body (api_token: never in a URL, which proxies and access logs keep) and
// the idempotency key as the order id (oid, oid_unique: yes): a second POST
// with the same oid returns the invoice the first one made, so the POST is
// itself the look-up. 401 auth, 422 {"code":"error","message":{field:[...]}}, 429.
// No legal-status flow: a document is final once the API has it.

const invoiceSchema = z.object({ id: z.union([z.string().min(1), z.number()]).transform(String), oid: z.string().nullish() });

export function createInvoicingClient(opts: { baseUrl: string; timeoutMs: number }): ProviderClient {
  const base = opts.baseUrl.endsWith('/') ? opts.baseUrl : `${opts.baseUrl}/`;
  return {
    name: 'invoicing API',
    followsLegalStatus: false,
    async submit(req, { signal } = {}) {
      const { invoice, items } = req;
      const body = {
        api_token: req.token,
        invoice: {
          kind: 'vat',
          number: invoice.invoice_number,
          issue_date: invoice.issue_date,
          payment_to: invoice.due_date,
          currency: invoice.currency,
          seller_name: invoice.supplier_name,
          seller_tax_no: invoice.supplier_tax_id ?? invoice.supplier_vat_id,
          buyer_name: invoice.client_name,
          buyer_tax_no: invoice.client_tax_id ?? invoice.client_vat_id,
          department_id: req.companyId,
          oid: req.idempotencyKey,
          oid_unique: 'yes',
          positions: items.map((i) => ({ name: i.description, quantity: i.quantity, total_price_gross: i.total, tax: i.tax_rate })),
        },
      };
      const res = await callProvider(
        new URL('invoices.json', base).href,
        { method: 'POST', headers: { accept: 'application/json', 'content-type': 'application/json' }, body: JSON.stringify(body) },
        opts.timeoutMs,
        signal,
      );
      if (!res.ok) throw new ProviderHttpError('invoicing API', res.status, res.body, res.retryAfter);
      const r = invoiceSchema.safeParse(parseJsonBody('invoicing API', res.body));
      if (!r.success) throw new ProviderHttpError('invoicing API', 502, `2xx answer without an invoice: ${res.body.slice(0, 200)}`, null);
      return { providerDocumentId: r.data.id, legalStatus: null, cufe: null };
    },
    // oid_unique makes the POST idempotent; a look-up would be a second round trip for nothing.
    async lookup() {
      return null;
    },
  };
}
