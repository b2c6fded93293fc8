import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { HttpError } from '../http/errors.js';
import { apiErrors, described, invalidField, locationHeader } from '../http/openapi.js';
import type { RouteDeps } from '../http/route-types.js';
import { REQUEST_ID_EXAMPLE, invoiceExample, requestQueuedExample, requestStatusExample } from './examples.js';
import { loadInvoiceResponse, toRequestStatus } from './present.js';
import { getInvoiceRequestView } from './request-store.js';
import { IdempotencyKeyReused, submitInvoiceRequest } from './requests.js';
import { invoiceHttpError } from './http-errors.js';
import { generateInvoiceRequest, invoiceRequestQueued, invoiceRequestStatus, invoiceResponse } from './schemas.js';

// POST /api/v1/invoice-requests queues; GET reads the status and, once
// COMPLETED, the invoice. Both POST answers carry Location: the request's URL.
// Idempotency-Key: the first call answers 201, a
// repeat with the same body answers 200 with the same response body (same
// requestId) and Idempotent-Replayed: true; a repeat with another body 422.

const requestIdParams = z.object({ id: z.uuid({ message: 'must be a request id (UUID)' }) });
const requestLocation = locationHeader('the invoice request (GET it for its status)');
const badRequestId = invalidField('id', 'must be a request id (UUID)');
const notFound = ['NOT_FOUND', `invoice request ${REQUEST_ID_EXAMPLE} not found`, { field: 'id' }] as const;

export async function invoiceRequestRoutes(base: FastifyInstance, { db }: RouteDeps): Promise<void> {
  const app = base.withTypeProvider<ZodTypeProvider>();

  app.post(
    '/api/v1/invoice-requests',
    {
      schema: {
        tags: ['invoice requests'],
        operationId: 'createInvoiceRequest',
        summary: 'Queue an invoice for generation',
        headers: z.object({
          'idempotency-key': z
            .string()
            .regex(/^[\x21-\x7e]{1,200}$/, { message: 'must be 1 to 200 visible ASCII characters' })
            .optional(),
        }),
        body: generateInvoiceRequest,
        response: {
          200: described(invoiceRequestQueued, 'a repeat of an earlier call with the same Idempotency-Key and body: its answer again (Idempotent-Replayed: true)', requestQueuedExample, {
            ...requestLocation,
            'Idempotent-Replayed': { type: 'string', description: '"true": nothing new was queued' },
          }),
          201: described(invoiceRequestQueued, 'the request, queued', requestQueuedExample, requestLocation),
          ...apiErrors(
            invalidField('idempotency-key', 'must be 1 to 200 visible ASCII characters'),
            ['UNKNOWN_PARTY', 'clientId 9: no such party', { field: 'clientId' }],
            ['IDEMPOTENCY_KEY_REUSED', `Idempotency-Key "order-1842" was already used for request ${REQUEST_ID_EXAMPLE} with a different body`, { field: 'idempotency-key', requestId: REQUEST_ID_EXAMPLE }],
          ),
        },
      },
    },
    async (req, reply) => {
      let submitted;
      try {
        submitted = await submitInvoiceRequest(db, {
          caller: `apikey:${req.apiKey!.id}`,
          idempotencyKey: req.headers['idempotency-key'],
          body: req.body,
        });
      } catch (err) {
        if (err instanceof IdempotencyKeyReused) {
          throw new HttpError('IDEMPOTENCY_KEY_REUSED', err.message, { field: 'idempotency-key', requestId: err.requestId });
        }
        throw invoiceHttpError(err);
      }
      // A replay answers exactly what the first call answered (it reports
      // what the POST did: queue the request); GET shows where it is now.
      reply.code(submitted.created ? 201 : 200).header('location', `/api/v1/invoice-requests/${submitted.request.id}`);
      if (!submitted.created) reply.header('idempotent-replayed', 'true');
      return { requestId: submitted.request.id, status: 'PENDING' as const, message: 'invoice generation request queued' };
    },
  );

  app.get(
    '/api/v1/invoice-requests/:id',
    {
      schema: {
        tags: ['invoice requests'],
        operationId: 'getInvoiceRequest',
        summary: 'Status of an invoice request',
        params: requestIdParams,
        response: {
          200: described(invoiceRequestStatus, 'where the request is (PENDING, PROCESSING, COMPLETED with its invoice, FAILED with the reason)', requestStatusExample),
          ...apiErrors(badRequestId, notFound),
        },
      },
    },
    async (req) => {
      const view = await getInvoiceRequestView(db, req.params.id);
      if (!view) throw new HttpError('NOT_FOUND', `invoice request ${req.params.id} not found`, { field: 'id' });
      return toRequestStatus(view);
    },
  );

  app.get(
    '/api/v1/invoice-requests/:id/invoice',
    {
      schema: {
        tags: ['invoice requests'],
        operationId: 'getInvoiceRequestInvoice',
        summary: "The request's invoice, once COMPLETED (409 with its status before)",
        params: requestIdParams,
        response: {
          200: described(invoiceResponse, "the request's invoice", { ...invoiceExample, requestId: REQUEST_ID_EXAMPLE }),
          ...apiErrors(badRequestId, notFound, [
            'INVOICE_NOT_READY',
            `invoice request ${REQUEST_ID_EXAMPLE} is PROCESSING`,
            { status: 'PROCESSING', errorMessage: null },
          ]),
        },
      },
    },
    async (req) => {
      const view = await getInvoiceRequestView(db, req.params.id);
      if (!view) throw new HttpError('NOT_FOUND', `invoice request ${req.params.id} not found`, { field: 'id' });
      if (view.status !== 'completed' || view.invoice_id === null) {
        const status = view.status.toUpperCase();
        throw new HttpError('INVOICE_NOT_READY', `invoice request ${view.id} is ${status}`, { status, errorMessage: view.error_message });
      }
      return (await loadInvoiceResponse(db, view.invoice_id))!;
    },
  );
}
