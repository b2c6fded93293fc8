import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { HttpError } from '../http/errors.js';
import { apiErrors, described, invalidField, locationHeader } from '../http/openapi.js';
import type { RouteDeps, RoutesPlugin } from '../http/route-types.js';
import { digitsInt, idText, text } from '../lib/boundary.js';
import { invoiceExample, partyExample } from './examples.js';
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
    {
      schema: {
        tags: ['parties'],
        operationId: 'createParty',
        summary: 'Create a supplier or client',
        body: createPartyRequest,
        response: {
          201: described(partyResponse, 'the party, created', partyExample, locationHeader('the party')),
          ...apiErrors(invalidField('role', 'must be "supplier" or "client"')),
        },
      },
    },
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
      const created = await insertParty(db, party);
      reply.code(201).header('location', `/api/v1/parties/${created.id}`);
      return toPartyResponse(created);
    },
  );

  app.get(
    '/api/v1/parties',
    {
      schema: {
        tags: ['parties'],
        operationId: 'listParties',
        summary: 'List parties by id, a page at a time',
        querystring: z.strictObject({
          role: z.enum(['supplier', 'client']).optional(),
          afterId: digitsInt({ min: 0, max: 2_147_483_647, message: 'must be a party id (0 to 2147483647)' }).optional(),
          limit: digitsInt({ min: 1, max: 500 }).default(100),
        }),
        response: {
          200: described(
            z.object({ items: z.array(partyResponse), nextAfterId: z.int().nullable() }),
            'a page of parties in id order; nextAfterId is the afterId of the next page (null on the last)',
            { items: [partyExample], nextAfterId: null },
          ),
          ...apiErrors(invalidField('limit', 'must be a whole number from 1 to 500')),
        },
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
        operationId: 'getParty',
        summary: 'Get a party by id',
        params: partyIdParams,
        response: {
          200: described(partyResponse, 'the party', partyExample),
          ...apiErrors(invalidField('id', 'must be a positive id (a whole number from 1 to 2147483647)'), ['NOT_FOUND', 'party 7 not found', { field: 'id' }]),
        },
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
        operationId: 'generateInvoice',
        summary: 'Generate an invoice now (numbered under the supplier lock)',
        body: generateInvoiceRequest,
        response: {
          201: described(invoiceResponse, 'the invoice, numbered and stored', invoiceExample, locationHeader('the invoice (by number and supplier)')),
          ...apiErrors(
            invalidField('items[0].quantity', 'must be a decimal string like "2.5" (ASCII digits, at most 9 before the point and 4 after)'),
            ['NUMBERING_EXHAUSTED', 'numbering exhausted for supplier 7: invoice numbers stop at 9007199254740991 (the next would be 9007199254740992); invoice under a new supplier', { field: 'supplierId', supplierId: 7 }],
            ['UNKNOWN_PARTY', 'clientId 9: no such party', { field: 'clientId' }],
            ['WRONG_PARTY_ROLE', 'supplierId 9: party is a client, not a supplier', { field: 'supplierId' }],
          ),
        },
      },
    },
    async (req, reply) => {
      let generated;
      try {
        generated = await generateInvoice(db, req.body, { now });
      } catch (err) {
        throw invoiceHttpError(err);
      }
      const invoice = (await loadInvoiceResponse(db, generated.id))!;
      reply.code(201).header('location', invoiceLocation(invoice.invoiceNumber, invoice.supplierId));
      return invoice;
    },
  );

  app.get(
    '/api/v1/invoices/:invoiceNumber',
    {
      schema: {
        tags: ['invoices'],
        operationId: 'getInvoiceByNumber',
        summary: 'Get an invoice by number (supplierId when several suppliers use the number)',
        params: z.object({ invoiceNumber: text({ min: 1, max: 64 }) }),
        querystring: z.strictObject({ supplierId: idText().optional() }),
        response: {
          200: described(invoiceResponse, 'the invoice', invoiceExample),
          ...apiErrors(
            invalidField('supplierId', 'must be a positive id (a whole number from 1 to 2147483647)'),
            ['NOT_FOUND', 'invoice ACME-000042 not found', { field: 'invoiceNumber' }],
            ['AMBIGUOUS_INVOICE_NUMBER', 'several suppliers have this invoice number: add ?supplierId=', { field: 'supplierId', supplierIds: [7, 8] }],
          ),
        },
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

/** Where GET finds an invoice: numbers are unique per supplier, so the supplier goes with it. */
function invoiceLocation(invoiceNumber: string, supplierId: number): string {
  return `/api/v1/invoices/${encodeURIComponent(invoiceNumber)}?supplierId=${supplierId}`;
}
