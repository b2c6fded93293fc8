import crypto from 'node:crypto';
import type { Knex } from 'knex';
import { z } from 'zod';
import type { RoutesPlugin } from '../http/route-types.js';
import type { Logger } from '../log.js';
import { attachPdf } from './pdf.js';
import type { ProviderServices } from './services.js';
import { advanceLegalStatus, findDocumentByProviderId, LEGAL_STATUSES, type LegalStatus } from './store.js';

// POST /webhooks/pac/{companyId}: the PAC tells us a document's legal status
// moved. The shared secret (X-Webhook-Secret, PROVIDER_WEBHOOK_SECRET) is
// compared in constant time; anything else is 401. The answer is 200 for
// every authenticated delivery we could read, including unknown documents
// (logged: a 4xx would make the PAC retry something we will never know) and
// duplicates or out-of-order ones (legal status only moves forward). A PDF
// failure is logged and left to the poller: never a 5xx.

export const WEBHOOK_SECRET_HEADER = 'x-webhook-secret';

const webhookBody = z.object({
  document: z.object({
    id: z.union([z.string().min(1), z.number()]).transform(String),
    legalStatus: z.enum(LEGAL_STATUSES as [string, ...string[]]),
    cufe: z.string().nullish(),
    pdfUrl: z.string().nullish(),
  }),
});

export type WebhookResult = 'unknown_document' | 'advanced' | 'unchanged';

/** Compares via SHA-256 digests: equal length always, so neither content nor length leaks through timing. */
export function secretMatches(given: string | undefined, expected: string | undefined): boolean {
  if (!given || !expected) return false;
  const a = crypto.createHash('sha256').update(given).digest();
  const b = crypto.createHash('sha256').update(expected).digest();
  return crypto.timingSafeEqual(a, b);
}

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
      log.warn({ documentId: doc.id, invoiceId: doc.invoice_id, err: (err as Error).message }, 'PDF from a PAC webhook could not be filed; the poller will fetch it');
    }
  }
  return moved ? 'advanced' : 'unchanged';
}

/** The routes, with the provider services of the process that serves them (the composition root's). */
export const pacWebhookRoutes = (services: () => ProviderServices): RoutesPlugin => async (app, deps) => {
  app.post<{ Params: { companyId: string } }>(
    '/webhooks/pac/:companyId',
    { config: { public: true } },
    async (req, reply) => {
      const given = req.headers[WEBHOOK_SECRET_HEADER];
      if (!secretMatches(typeof given === 'string' ? given : undefined, deps.config.PROVIDER_WEBHOOK_SECRET)) {
        return reply.code(401).send({ statusCode: 401, code: 'UNAUTHORIZED', message: `missing or wrong ${WEBHOOK_SECRET_HEADER} header` });
      }
      const parsed = webhookBody.safeParse(req.body);
      if (!parsed.success) {
        const issue = parsed.error.issues[0]!;
        const field = issue.path.join('.') || 'body';
        return reply.code(400).send({ statusCode: 400, code: 'VALIDATION_FAILED', message: `${field}: ${issue.message}`, field });
      }
      const result = await handlePacWebhook(deps.db, services(), req.params.companyId, parsed.data, req.log as unknown as Logger);
      return reply.code(200).send({ result });
    },
  );
};
