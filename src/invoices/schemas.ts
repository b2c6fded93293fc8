import { z } from 'zod';
import { decimalText, idText, intId, isoDate, isPlainDecimal, text } from '../lib/boundary.js';
import { isGreater, lineGross } from './money.js';
import { INVOICE_NUMBER_MAX } from './numbering.js';

// The public contract of the invoice API, as zod schemas: fastify validates
// requests with them and @fastify/swagger turns them into /openapi.json.
// Money and quantities travel as decimal strings, never JSON numbers, so no
// client or proxy can turn 0.1 into 0.1000000000000000055. Every field is a
// boundary type (src/lib/boundary.ts) bounded by the column it ends up in:
// ids int4, decimals within their NUMERIC(p, s), text without NUL, dates
// 1900-01-01..9999-12-30.

const partyId = intId();
const currency = z.string({ error: 'must be a 3-letter ISO 4217 code like "EUR"' }).regex(/^[A-Z]{3}$/, { error: 'must be a 3-letter ISO 4217 code like "EUR"' });
// numeric(7, 4) between 0 and 100.
const taxRate = decimalText({ intDigits: 3, scale: 4, example: '21', atMost: '100' });

export const invoiceItemInput = z.strictObject({
  description: text({ max: 1000, min: 1, trim: true }),
  // numeric(18, 4) > 0; 9 digits before the point keep every computed amount inside numeric(24, 2).
  quantity: decimalText({ intDigits: 9, scale: 4, example: '2.5', above: '0' }),
  unitPrice: decimalText({ intDigits: 9, scale: 4, example: '12.50' }),
  discount: decimalText({ intDigits: 15, scale: 2, example: '1.00' }).optional().describe('amount off this line (invoice currency, 2 dp); default 0'),
  taxRate: taxRate.optional().describe("percent; default the supplier's default tax rate"),
});

export const generateInvoiceRequest = z
  .strictObject({
    supplierId: partyId,
    clientId: partyId,
    issueDate: isoDate().optional().describe('default today (UTC); 1900-01-01 to 9999-12-30'),
    dueDate: isoDate().optional().describe('default issueDate + 30 days'),
    currency: currency.optional().describe("default the supplier's currency"),
    notes: text({ max: 4000 }).optional(),
    items: z
      .array(invoiceItemInput, { error: 'must be an array of items' })
      .min(1, { error: 'must have at least one item' })
      .max(500, { error: 'must have at most 500 items' }),
  })
  .superRefine((body, ctx) => {
    if (body.issueDate && body.dueDate && body.dueDate < body.issueDate) {
      ctx.addIssue({ code: 'custom', path: ['dueDate'], message: 'must not be before issueDate' });
    }
    // Refinements run even when a field failed: only arithmetic on well-formed decimals.
    (Array.isArray(body.items) ? body.items : []).forEach((item, i) => {
      if (!isPlainDecimal(item?.discount) || !isPlainDecimal(item.quantity) || !isPlainDecimal(item.unitPrice)) return;
      if (isGreater(item.discount, lineGross(item.quantity, item.unitPrice))) {
        ctx.addIssue({ code: 'custom', path: ['items', i, 'discount'], message: 'must not exceed quantity x unitPrice' });
      }
    });
  });

export type GenerateInvoiceRequest = z.infer<typeof generateInvoiceRequest>;

export const createPartyRequest = z.strictObject({
  role: z.enum(['supplier', 'client'], { error: 'must be "supplier" or "client"' }),
  name: text({ max: 500, min: 1, trim: true }),
  taxId: text({ max: 64 }).optional(),
  vatId: text({ max: 64 }).optional(),
  address: text({ max: 2000 }).optional(),
  email: z.email({ error: 'must be an email address' }).max(320, { error: 'must be at most 320 characters' }).optional(),
  currency: currency.optional(),
  defaultTaxRate: taxRate.optional(),
  invoicePrefix: z
    .string({ error: 'must be at most 20 letters, digits or / _ . -' })
    .regex(/^[A-Za-z0-9/_.-]{0,20}$/, { error: 'must be at most 20 letters, digits or / _ . -' })
    .optional(),
  invoiceDigits: z.int({ error: 'must be a whole number from 1 to 18' }).min(1, { error: 'must be a whole number from 1 to 18' }).max(18, { error: 'must be a whole number from 1 to 18' }).optional(),
  invoiceStartNumber: z
    .int({ error: `must be a whole number from 1 to ${INVOICE_NUMBER_MAX}` })
    .min(1, { error: `must be a whole number from 1 to ${INVOICE_NUMBER_MAX}` })
    .max(INVOICE_NUMBER_MAX, { error: `must be a whole number from 1 to ${INVOICE_NUMBER_MAX}` })
    .optional()
    .describe(`the first number; at most ${INVOICE_NUMBER_MAX}, the last number Herald can issue`),
});

/** Path and query members shared by the invoice routes. */
export const partyIdParams = z.object({ id: idText() });

export type CreatePartyRequest = z.infer<typeof createPartyRequest>;

export const partyResponse = z.object({
  id: z.int(),
  role: z.enum(['supplier', 'client']),
  name: z.string(),
  taxId: z.string().nullable(),
  vatId: z.string().nullable(),
  address: z.string(),
  email: z.string().nullable(),
  currency: z.string(),
  defaultTaxRate: z.string(),
  invoicePrefix: z.string(),
  invoiceDigits: z.int(),
  invoiceStartNumber: z.int(),
  lastInvoiceNumber: z.int(),
  createdAt: z.string(),
});

const partyCopy = z.object({
  name: z.string(),
  taxId: z.string().nullable(),
  vatId: z.string().nullable(),
  address: z.string(),
  email: z.string().nullable(),
});

export const invoiceResponse = z.object({
  id: z.int(),
  invoiceNumber: z.string(),
  invoiceNumberInt: z.int(),
  supplierId: z.int(),
  clientId: z.int(),
  issueDate: z.string(),
  dueDate: z.string(),
  currency: z.string(),
  status: z.string(),
  supplier: partyCopy,
  client: partyCopy,
  notes: z.string().nullable(),
  items: z.array(
    z.object({
      lineNumber: z.int(),
      description: z.string(),
      quantity: z.string(),
      unitPrice: z.string(),
      discount: z.string(),
      taxRate: z.string(),
      subtotal: z.string(),
      tax: z.string(),
      total: z.string(),
    }),
  ),
  subtotal: z.string(),
  taxTotal: z.string(),
  total: z.string(),
  requestId: z.string().nullable(),
  createdAt: z.string(),
});

export type InvoiceResponse = z.infer<typeof invoiceResponse>;

export const REQUEST_STATUSES = ['PENDING', 'PROCESSING', 'COMPLETED', 'FAILED'] as const;

export const invoiceRequestQueued = z.object({
  requestId: z.string(),
  status: z.enum(REQUEST_STATUSES),
  message: z.string(),
});

export const invoiceRequestStatus = z.object({
  requestId: z.string(),
  status: z.enum(REQUEST_STATUSES),
  invoiceId: z.int().nullable(),
  invoiceNumber: z.string().nullable(),
  errorMessage: z.string().nullable(),
  createdAt: z.string(),
  completedAt: z.string().nullable(),
});

export type InvoiceRequestStatus = z.infer<typeof invoiceRequestStatus>;

/** The first problem zod found, as "items[0].quantity: must be ...". */
export function describeFirstIssue(error: z.ZodError): { field: string; message: string } {
  const issue = error.issues[0]!;
  let field = '';
  for (const part of issue.path) field += typeof part === 'number' ? `[${part}]` : field ? `.${String(part)}` : String(part);
  field ||= 'body';
  return { field, message: `${field}: ${issue.message}` };
}
