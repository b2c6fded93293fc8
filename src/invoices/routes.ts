import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { HttpError, errorBody } from '../http/errors.js';
import type { RouteDeps, RoutesPlugin } from '../http/route-types.js';
import { digitsInt, idText, text } from '../lib/boundary.js';
import { invoiceHttpError } from './http-errors.js';
import { invoiceFormRoutes } from './form-routes.js';
import { generateInvoice } from './generate.js';
import { loadInvoiceResponse, toPartyResponse } from './present.js';
import { invoiceRequestRoutes } from './request-routes.js';
import { createPartyRequest, generateInvoiceRequest, invoiceResponse, partyIdParams, partyResponse } from './schemas.js';
import { findInvoicesByNumber, getParty, insertParty, listParties, type NewParty } from './store.js';

// The invoice capability's HTTP surface: parties, sync invoice generation and
// lookup here; the async queue in request-routes.ts; the UI form in
// form-routes.ts.

export const invoiceRoutes: RoutesPlugin = async (app, deps) => {
  await app.register(partyRoutes, deps);
  await app.register(syncInvoiceRoutes, deps);
  await app.register(invoiceRequestRoutes, deps);
  await app.register(invoiceFormRoutes, deps);
};

async function partyRoutes(base: FastifyInstance, { db }: RouteDeps): Promise<void> {
  const app = base.withTypeProvider<ZodTypeProvider>();
  app.post(
    '/api/v1/parties',
    { schema: { tags: ['parties'], summary: 'Create a supplier or client', body: createPartyRequest, response: { 201: partyResponse, 400: errorBody } } },
    async (req, reply) => {
      const b = req.body;
      const party: NewParty = {
        role: b.role,
        name: b.name,
        tax_id: b.taxId ?? null,
        vat_id: b.vatId ?? null,
        address: b.address ?? '',
        email: b.email ?? null,
        ...(b.currency && { currency: b.currency }),
        ...(b.defaultTaxRate && { default_tax_rate: b.defaultTaxRate }),
        ...(b.invoicePrefix !== undefined && { invoice_prefix: b.invoicePrefix }),
        ...(b.invoiceDigits && { invoice_digits: b.invoiceDigits }),
        ...(b.invoiceStartNumber && { invoice_start_number: b.invoiceStartNumber }),
      };
      reply.code(201);
      return toPartyResponse(await insertParty(db, party));
    },
  );

  app.get(
    '/api/v1/parties',
    {
      schema: {
        tags: ['parties'],
        summary: 'List parties by id, a page at a time',
        querystring: z.strictObject({
          role: z.enum(['supplier', 'client']).optional(),
          afterId: digitsInt({ min: 0, max: 2_147_483_647, message: 'must be a party id (0 to 2147483647)' }).optional(),
          limit: digitsInt({ min: 1, max: 500 }).default(100),
        }),
        response: { 200: z.object({ items: z.array(partyResponse), nextAfterId: z.int().nullable() }), 400: errorBody },
      },
    },
    async (req) => {
      const rows = await listParties(db, { role: req.query.role, afterId: req.query.afterId, limit: req.query.limit });
      return { items: rows.map(toPartyResponse), nextAfterId: rows.length === req.query.limit ? rows[rows.length - 1]!.id : null };
    },
  );

  app.get(
    '/api/v1/parties/:id',
    {
      schema: {
        tags: ['parties'],
        params: partyIdParams,
        response: { 200: partyResponse, 400: errorBody, 404: errorBody },
      },
    },
    async (req) => {
      const party = await getParty(db, req.params.id);
      if (!party) throw new HttpError('NOT_FOUND', `party ${req.params.id} not found`, { field: 'id' });
      return toPartyResponse(party);
    },
  );
}

async function syncInvoiceRoutes(base: FastifyInstance, { db, now }: RouteDeps): Promise<void> {
  const app = base.withTypeProvider<ZodTypeProvider>();
  app.post(
    '/api/v1/invoices/generate',
    {
      schema: {
        tags: ['invoices'],
        summary: 'Generate an invoice now (numbered under the supplier lock)',
        body: generateInvoiceRequest,
        response: { 201: invoiceResponse, 400: errorBody, 409: errorBody, 422: errorBody },
      },
    },
    async (req, reply) => {
      let generated;
      try {
        generated = await generateInvoice(db, req.body, { now });
      } catch (err) {
        throw invoiceHttpError(err);
      }
      reply.code(201);
      return (await loadInvoiceResponse(db, generated.id))!;
    },
  );

  app.get(
    '/api/v1/invoices/:invoiceNumber',
    {
      schema: {
        tags: ['invoices'],
        summary: 'Get an invoice by number (supplierId when several suppliers use the number)',
        params: z.object({ invoiceNumber: text({ min: 1, max: 64 }) }),
        querystring: z.strictObject({ supplierId: idText().optional() }),
        response: { 200: invoiceResponse, 400: errorBody, 404: errorBody, 409: errorBody },
      },
    },
    async (req) => {
      const found = await findInvoicesByNumber(db, req.params.invoiceNumber, req.query.supplierId);
      if (found.length === 0) {
        const of = req.query.supplierId === undefined ? '' : ` of supplier ${req.query.supplierId}`;
        throw new HttpError('NOT_FOUND', `invoice ${req.params.invoiceNumber}${of} not found`, { field: 'invoiceNumber' });
      }
      if (found.length > 1) {
        throw new HttpError('AMBIGUOUS_INVOICE_NUMBER', undefined, { field: 'supplierId', supplierIds: found.map((i) => i.supplier_party_id) });
      }
      return (await loadInvoiceResponse(db, found[0]!.id))!;
    },
  );
}
