import type { Knex } from 'knex';
import { z } from 'zod';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { HttpError } from '../http/errors.js';
import { described, errorResponses, invalidField } from '../http/openapi.js';
import type { RoutesPlugin } from '../http/route-types.js';
import { text } from '../lib/boundary.js';
import type { Logger } from '../log.js';
import { attachPdf, pdfFailureFields } from './pdf.js';
import type { ProviderServices } from './services.js';
import { webhookSecretAccepted } from './webhook-secrets.js';
import { advanceLegalStatus, findDocumentByProviderId, LEGAL_STATUSES, type LegalStatus } from './store.js';

// POST /webhooks/pac/{companyId}: the PAC tells us a document's legal status
// moved. The secret in X-Webhook-Secret is the company's own when it has one
// (`herald webhooks set-secret`, webhook-secrets.ts), else the global
// PROVIDER_WEBHOOK_SECRET; compared in constant time; anything else is 401. The answer is 200 for
// every authenticated delivery we could read, including unknown documents
// (logged: a 4xx would make the PAC retry something we will never know) and
// duplicates or out-of-order ones (legal status only moves forward). A PDF
// failure is logged and left to the poller: never a 5xx.

export const WEBHOOK_SECRET_HEADER = 'x-webhook-secret';

// Every member is a boundary type (src/lib/boundary.ts): what the PAC sends
// is compared with text columns, so a NUL or a 100 KB id is a 400 naming it,
// never a database error. Unknown members are ignored (the PAC adds fields).
const webhookBody = z.object({
  document: z.object({
    id: z.union([text({ min: 1, max: 200 }), z.int({ error: 'must be a string or a whole number' })], { error: 'must be a string or a whole number' }).transform(String),
    legalStatus: z.enum(LEGAL_STATUSES as [string, ...string[]], { error: `must be one of ${LEGAL_STATUSES.join(', ')}` }),
    cufe: text({ max: 200 }).nullish(),
    pdfUrl: text({ max: 2000 }).nullish(),
  }),
});

const webhookParams = z.object({ companyId: text({ min: 1, max: 200 }) });

export type WebhookResult = 'unknown_document' | 'advanced' | 'unchanged';

export async function handlePacWebhook(
  db: Knex,
  services: ProviderServices,
  companyId: string,
  body: z.infer<typeof webhookBody>,
  log: Logger,
): Promise<WebhookResult> {
  const d = body.document;
  const doc = await findDocumentByProviderId(db, companyId, d.id);
  if (!doc) {
    log.info({ companyId, providerDocumentId: d.id, legalStatus: d.legalStatus }, 'PAC webhook for an unknown document; ignored');
    return 'unknown_document';
  }
  const status = d.legalStatus as LegalStatus;
  const moved = await advanceLegalStatus(db, doc.id, status, d.cufe ?? null);
  if ((status === 'PAC_AUTHORIZED' || status === 'DGI_AUTHORIZED') && d.pdfUrl) {
    try {
      await attachPdf(db, services, moved ?? doc, d.pdfUrl, 'webhook');
    } catch (err) {
      log.warn({ documentId: doc.id, invoiceId: doc.invoice_id, companyId, ...pdfFailureFields(err, d.pdfUrl) }, 'PDF from a PAC webhook could not be filed; the poller will fetch it');
    }
  }
  return moved ? 'advanced' : 'unchanged';
}

/** The routes, with the provider services of the process that serves them (the composition root's). */
export const pacWebhookRoutes = (services: () => ProviderServices): RoutesPlugin => async (base, deps) => {
  const app = base.withTypeProvider<ZodTypeProvider>();
  app.post(
    '/webhooks/pac/:companyId',
    {
      config: { public: true },
      // Before the body is even read: a caller without the secret learns nothing, not even the schema.
      onRequest: async (req) => {
        const given = req.headers[WEBHOOK_SECRET_HEADER];
        // A company id the params schema will refuse (NUL, too long) is never looked up: only the global secret can pass, then the 400.
        const params = webhookParams.safeParse(req.params);
        const companyId = params.success ? params.data.companyId : null;
        if (!(await webhookSecretAccepted(deps.db, companyId, typeof given === 'string' ? given : undefined, deps.config.PROVIDER_WEBHOOK_SECRET))) {
          throw new HttpError('UNAUTHORIZED', `missing or wrong ${WEBHOOK_SECRET_HEADER} header`, { field: WEBHOOK_SECRET_HEADER });
        }
      },
      schema: {
        tags: ['webhooks'],
        operationId: 'pacWebhook',
        summary: `The PAC reports a document's legal status (the company's secret, or the shared one, in ${WEBHOOK_SECRET_HEADER})`,
        security: [],
        params: webhookParams,
        body: webhookBody,
        response: {
          200: described(z.object({ result: z.enum(['unknown_document', 'advanced', 'unchanged']) }), 'what the call changed', { result: 'advanced' }),
          ...errorResponses(invalidField('document.legalStatus', `must be one of ${LEGAL_STATUSES.join(', ')}`), ['UNAUTHORIZED', `missing or wrong ${WEBHOOK_SECRET_HEADER} header`, { field: WEBHOOK_SECRET_HEADER }]),
        },
      },
    },
    async (req) => {
      const result = await handlePacWebhook(deps.db, services(), req.params.companyId, req.body, req.log as unknown as Logger);
      return { result };
    },
  );
};
