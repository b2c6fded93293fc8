import type { FastifyInstance, FastifyReply, FastifyRequest, RouteShorthandOptions } from 'fastify';
import { z } from 'zod';
import { HttpError } from '../http/errors.js';
import type { RouteDeps } from '../http/route-types.js';
import { getJob } from '../jobs/store/runs.js';
import { BIGINT_ID_MAX, idText, text } from '../lib/boundary.js';
import { OperationRefused, openInvoicePdf, refetchPdf, repollInvoice } from '../providers/operations.js';
import type { ProviderServices } from '../providers/services.js';
import { layout } from './html.js';
import { INVOICE_PAGE_SIZE, listInvoiceViews, listReportViews } from './store-invoices.js';
import { listInvoiceRequestViews } from './store-views.js';
import { renderInvoicePage, renderInvoicePager, renderInvoiceRequests, renderInvoiceTable, renderReports } from './view-invoices.js';
import { renderJobTable } from './view-jobs.js';

// The Invoices, Reports and job pages of /admin: every invoice (made by the
// API, the form or an invoice request) with its provider status, PDF and
// actions; the invoice requests, failed ones too; one invoice, report or job
// each, which is where the job table's subject links lead. routes.ts mounts
// them inside its session and CSRF guard.

/** What routes.ts gives these pages: its guards and helpers. */
export interface AdminPageKit {
  guarded: RouteShorthandOptions;
  guardedPost: RouteShorthandOptions;
  chrome(req: FastifyRequest, reply: FastifyReply): { csrf: string; who: string };
  html(reply: FastifyReply, body: string, code?: number): FastifyReply;
  safeBack(back: string | undefined, fallback?: string): string;
  withFlash(url: string, message: string): string;
}

const flash = text({ max: 300 }).optional();
const intIdParams = z.object({ id: idText() });
const backBody = z.object({ _csrf: text({ max: 200 }).optional(), back: text({ max: 2000 }).optional() }).passthrough();
const invoicesQuery = z.object({
  request: z.uuid({ message: 'must be an invoice request id (UUID)' }).optional(),
  before: idText().optional(),
  done: flash,
});

/** 404 naming the field and what was not found ("upload: upload 7 not found"). */
export const notFound = (what: string, field: string) => new HttpError('NOT_FOUND', `${field}: ${what} not found`, { field });

export function installInvoicePages(app: FastifyInstance, { db, config }: RouteDeps, providers: () => ProviderServices, kit: AdminPageKit): void {
  const { guarded, guardedPost, chrome, html } = kit;
  const withSchema = (base: RouteShorthandOptions, schema: Record<string, unknown>) => ({ ...base, schema: { hide: true, ...schema } });

  app.get('/admin/invoices', withSchema(guarded, { querystring: invoicesQuery }), async (req, reply) => {
    const f = req.query as z.infer<typeof invoicesQuery>;
    const c = chrome(req, reply);
    if (f.request) {
      // An invoice request's page (the job table links invoice_request subjects here).
      const [request] = await listInvoiceRequestViews(db, { id: f.request });
      if (!request) throw notFound(`invoice request ${f.request}`, 'request');
      const invoices = request.invoice_id === null ? [] : await listInvoiceViews(db, { id: request.invoice_id });
      const body = `<h2>Invoice request</h2>${renderInvoiceRequests([request])}<h2>Its invoice</h2>` +
        (invoices.length ? renderInvoiceTable(invoices, c.csrf, req.url) : `<p>none yet: the request is ${request.status}.</p>`) +
        `<p><a href="/admin/invoices">all invoices</a></p>`;
      return html(reply, layout(`Invoice request ${request.id}`, body, { ...c, flash: f.done }));
    }
    // One more than a page: whether an older page exists.
    const [fetched, requests] = await Promise.all([listInvoiceViews(db, { before: f.before, limit: INVOICE_PAGE_SIZE + 1 }), listInvoiceRequestViews(db)]);
    const invoices = fetched.slice(0, INVOICE_PAGE_SIZE);
    const body = `<h2>Invoices</h2><p class="hook">Every invoice, made synchronously (API, form) or by an invoice request; newest first; times in UTC.</p>` +
      renderInvoiceTable(invoices, c.csrf, req.url) + renderInvoicePager(invoices, fetched.length > INVOICE_PAGE_SIZE, f.before === undefined) +
      `<h2>Invoice requests</h2><p class="hook">Asynchronous requests (POST /api/v1/invoice-requests), failed ones too; the newest 100.</p>` +
      renderInvoiceRequests(requests);
    return html(reply, layout('Invoices', body, { ...c, flash: f.done }));
  });

  app.get('/admin/invoices/:id', withSchema(guarded, { params: intIdParams, querystring: z.object({ done: flash }) }), async (req, reply) => {
    const { id } = req.params as { id: number };
    const [invoice] = await listInvoiceViews(db, { id });
    if (!invoice) throw notFound(`invoice ${id}`, 'id');
    const c = chrome(req, reply);
    return html(reply, layout(`Invoice ${invoice.invoice_number}`, renderInvoicePage(invoice, c.csrf), { ...c, flash: (req.query as { done?: string }).done }));
  });

  app.get('/admin/invoices/:id/pdf', withSchema(guarded, { params: intIdParams }), async (req, reply) => {
    const { id } = req.params as { id: number };
    let pdf;
    try {
      pdf = await openInvoicePdf(db, providers(), id);
    } catch (err) {
      if (!(err instanceof OperationRefused)) throw err;
      throw new HttpError('UNAVAILABLE', err.message, { field: 'id' }, { cause: err });
    }
    if (!pdf) throw notFound(`a PDF of invoice ${id}`, 'id');
    return reply
      .type('application/pdf')
      .header('content-length', pdf.sizeBytes)
      .header('content-disposition', `inline; filename="invoice-${id}.pdf"`)
      .send(pdf.stream);
  });

  // The same as `herald pac attach-pdf INVOICE` and `herald pac repoll INVOICE`.
  const invoiceActions = {
    'attach-pdf': async (id: number) => `invoice ${id}: PDF stored at ${(await refetchPdf(db, providers(), id)).attachment.key}`,
    repoll: async (id: number) => `invoice ${id}: polling restarted (round ${(await repollInvoice(db, providers(), id)).poll_generation})`,
  };
  for (const [action, run] of Object.entries(invoiceActions)) {
    app.post(`/admin/invoices/:id/${action}`, withSchema(guardedPost, { params: intIdParams, body: backBody }), async (req, reply) => {
      const { id } = req.params as { id: number };
      let message: string;
      try {
        message = await run(id);
      } catch (err) {
        if (!(err instanceof OperationRefused)) throw err;
        message = err.message;
      }
      return reply.redirect(kit.withFlash(kit.safeBack((req.body as { back?: string }).back, '/admin/invoices'), message), 303);
    });
  }

  const flashOnly = z.object({ done: flash });
  const done = (req: FastifyRequest) => (req.query as { done?: string }).done;

  app.get('/admin/reports', withSchema(guarded, { querystring: flashOnly }), async (req, reply) => {
    const body = `<p class="hook">The newest 100 reports (POST /api/v1/reports, herald report); times in UTC.</p>${renderReports(await listReportViews(db))}`;
    return html(reply, layout('Reports', body, { ...chrome(req, reply), flash: done(req) }));
  });

  const reportParams = z.object({ id: z.uuid({ message: 'must be a report id (UUID)' }) });
  app.get('/admin/reports/:id', withSchema(guarded, { params: reportParams, querystring: flashOnly }), async (req, reply) => {
    const { id } = req.params as { id: string };
    const [report] = await listReportViews(db, { id });
    if (!report) throw notFound(`report ${id}`, 'id');
    return html(reply, layout(`Report ${id}`, `${renderReports([report])}<p><a href="/admin/reports">all reports</a></p>`, { ...chrome(req, reply), flash: done(req) }));
  });

  // A job's page: the subject of a failure mail's job is the job that failed.
  app.get('/admin/jobs/:id', withSchema(guarded, { params: z.object({ id: idText(BIGINT_ID_MAX) }), querystring: flashOnly }), async (req, reply) => {
    const { id } = req.params as { id: number };
    const job = await getJob(db, id);
    if (!job) throw notFound(`job ${id}`, 'id');
    const c = chrome(req, reply);
    const table = renderJobTable([job], 1, { order: 'desc', page: 1 }, c.csrf, req.url);
    return html(reply, layout(`Job ${id}`, `<div class="one-job">${table}</div><p><a href="/admin">all jobs</a></p>`, { ...c, flash: done(req) }));
  });
}
