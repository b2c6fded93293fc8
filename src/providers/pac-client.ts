import { z } from 'zod';
import { callProvider, parseJsonBody, ProviderHttpError } from './classify.js';
import type { ProviderClient, SubmitRequest, SubmitResult } from './provider.js';
import { LEGAL_STATUSES, type LegalStatus } from './store.js';

// Alanube-style PAC (Panama). POST /pan/v1/invoices with a Bearer token and
// idCompany; GET /pan/v1/invoices/{id}?idCompany=&documents=pdf for the legal
// status and a short-lived PDF URL. The idempotency key travels as
// externalId; GET /pan/v1/invoices?idCompany=&externalId= finds a document a
// timed-out POST may have created.

const legalStatus = z.enum(LEGAL_STATUSES as [string, ...string[]]);
const documentSchema = z.object({
  id: z.union([z.string().min(1), z.number()]).transform(String),
  legalStatus,
  cufe: z.string().nullish(),
  pdfUrl: z.string().nullish(),
});
const oneSchema = z.object({ document: documentSchema });
const listSchema = z.object({ documents: z.array(documentSchema) });

export function createPacClient(opts: { baseUrl: string; timeoutMs: number }): ProviderClient {
  const base = opts.baseUrl.endsWith('/') ? opts.baseUrl : `${opts.baseUrl}/`;
  const headers = (token: string) => ({ authorization: `Bearer ${token}`, accept: 'application/json', 'content-type': 'application/json' });

  function parse<T>(schema: z.ZodType<T>, text: string): T {
    const r = schema.safeParse(parseJsonBody('PAC', text));
    // A 2xx that is not a document is a gateway page, not a verdict: transient (server).
    if (!r.success) throw new ProviderHttpError('PAC', 502, `2xx answer without a document: ${text.slice(0, 200)}`, null);
    return r.data;
  }
  const toResult = (d: z.infer<typeof documentSchema>): SubmitResult => ({
    providerDocumentId: d.id,
    legalStatus: d.legalStatus as LegalStatus,
    cufe: d.cufe ?? null,
  });

  return {
    name: 'PAC',
    followsLegalStatus: true,
    async submit(req: SubmitRequest, { signal } = {}) {
      const { invoice, items } = req;
      const body = {
        idCompany: req.companyId,
        externalId: req.idempotencyKey,
        number: invoice.invoice_number,
        issueDate: invoice.issue_date,
        currency: invoice.currency,
        receiver: { name: invoice.client_name, taxId: invoice.client_tax_id ?? invoice.client_vat_id },
        items: items.map((i) => ({ description: i.description, quantity: i.quantity, unitPrice: i.unit_price, taxRate: i.tax_rate, total: i.total })),
        totals: { subtotal: invoice.subtotal, tax: invoice.tax_total, total: invoice.total },
      };
      const res = await callProvider(new URL('pan/v1/invoices', base).href, { method: 'POST', headers: headers(req.token), body: JSON.stringify(body) }, opts.timeoutMs, signal);
      if (!res.ok) throw new ProviderHttpError('PAC', res.status, res.body, res.retryAfter);
      return toResult(parse(oneSchema, res.body).document);
    },
    async lookup(req, { signal } = {}) {
      const url = new URL('pan/v1/invoices', base);
      url.searchParams.set('idCompany', req.companyId);
      url.searchParams.set('externalId', req.idempotencyKey);
      const res = await callProvider(url.href, { method: 'GET', headers: headers(req.token) }, opts.timeoutMs, signal);
      if (!res.ok) throw new ProviderHttpError('PAC', res.status, res.body, res.retryAfter);
      const found = parse(listSchema, res.body).documents[0];
      return found ? toResult(found) : null;
    },
    async status(req, { signal } = {}) {
      const url = new URL(`pan/v1/invoices/${encodeURIComponent(req.providerDocumentId)}`, base);
      url.searchParams.set('idCompany', req.companyId);
      url.searchParams.set('documents', 'pdf');
      const res = await callProvider(url.href, { method: 'GET', headers: headers(req.token) }, opts.timeoutMs, signal);
      if (!res.ok) throw new ProviderHttpError('PAC', res.status, res.body, res.retryAfter);
      const d = parse(oneSchema, res.body).document;
      return { legalStatus: d.legalStatus as LegalStatus, cufe: d.cufe ?? null, pdfUrl: d.pdfUrl ?? null };
    },
  };
}
