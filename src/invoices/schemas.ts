import { z } from 'zod';
import { isGreater, lineGross } from './money.js';

// The public contract of the invoice API, as zod schemas: fastify validates
// requests with them and @fastify/swagger turns them into /openapi.json.
// Money and quantities travel as decimal strings, never JSON numbers, so no
// client or proxy can turn 0.1 into 0.1000000000000000055.

const decimal = (intDigits: number, scale: number, example: string) =>
  z
    .string({ message: `must be a decimal string like "${example}"` })
    .regex(new RegExp(`^\\d{1,${intDigits}}(\\.\\d{1,${scale}})?$`), {
      message: `must be a decimal string like "${example}" (at most ${intDigits} digits before the point and ${scale} after)`,
    });

const partyId = z.int({ message: 'must be a whole number' }).positive({ message: 'must be a positive id' });

export const invoiceItemInput = z.strictObject({
  description: z.string().trim().min(1, { message: 'must not be empty' }).max(1000),
  quantity: decimal(9, 4, '2.5').refine((v) => isGreater(v, '0'), { message: 'must be greater than 0' }),
  unitPrice: decimal(9, 4, '12.50'),
  discount: decimal(15, 2, '1.00').optional().describe('amount off this line (invoice currency, 2 dp); default 0'),
  taxRate: decimal(3, 4, '21')
    .refine((v) => !isGreater(v, '100'), { message: 'must be at most 100' })
    .optional()
    .describe("percent; default the supplier's default tax rate"),
});

export const generateInvoiceRequest = z
  .strictObject({
    supplierId: partyId,
    clientId: partyId,
    issueDate: z.iso.date({ message: 'must be a date YYYY-MM-DD' }).optional().describe('default today (UTC)'),
    dueDate: z.iso.date({ message: 'must be a date YYYY-MM-DD' }).optional().describe('default issueDate + 30 days'),
    currency: z
      .string()
      .regex(/^[A-Z]{3}$/, { message: 'must be a 3-letter ISO 4217 code like "EUR"' })
      .optional()
      .describe("default the supplier's currency"),
    notes: z.string().max(4000).optional(),
    items: z.array(invoiceItemInput).min(1, { message: 'must have at least one item' }).max(500, { message: 'must have at most 500 items' }),
  })
  .superRefine((body, ctx) => {
    if (body.issueDate && body.dueDate && body.dueDate < body.issueDate) {
      ctx.addIssue({ code: 'custom', path: ['dueDate'], message: 'must not be before issueDate' });
    }
    body.items.forEach((item, i) => {
      if (item.discount && isGreater(item.discount, lineGross(item.quantity, item.unitPrice))) {
        ctx.addIssue({ code: 'custom', path: ['items', i, 'discount'], message: 'must not exceed quantity x unitPrice' });
      }
    });
  });

export type GenerateInvoiceRequest = z.infer<typeof generateInvoiceRequest>;

export const createPartyRequest = z.strictObject({
  role: z.enum(['supplier', 'client'], { message: 'must be "supplier" or "client"' }),
  name: z.string().trim().min(1, { message: 'must not be empty' }).max(500),
  taxId: z.string().max(64).optional(),
  vatId: z.string().max(64).optional(),
  address: z.string().max(2000).optional(),
  email: z.email({ message: 'must be an email address' }).optional(),
  currency: z.string().regex(/^[A-Z]{3}$/, { message: 'must be a 3-letter ISO 4217 code like "EUR"' }).optional(),
  defaultTaxRate: decimal(3, 4, '21')
    .refine((v) => !isGreater(v, '100'), { message: 'must be at most 100' })
    .optional(),
  invoicePrefix: z
    .string()
    .regex(/^[A-Za-z0-9/_.-]{0,20}$/, { message: 'must be at most 20 letters, digits or / _ . -' })
    .optional(),
  invoiceDigits: z.int({ message: 'must be a whole number' }).min(1).max(18).optional(),
  invoiceStartNumber: z.int({ message: 'must be a whole number' }).min(1).max(Number.MAX_SAFE_INTEGER).optional(),
});

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
