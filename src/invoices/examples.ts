import type { z } from 'zod';
import type { InvoiceRequestStatus, InvoiceResponse, invoiceRequestQueued, partyResponse } from './schemas.js';

// Example answers for /openapi.json (route schemas' `described`). redocly
// lint checks each against its schema (no-invalid-media-type-examples), so
// they cannot drift from the contract unnoticed.

export const REQUEST_ID_EXAMPLE = '0b6f1c3e-4f5a-4d2b-9c8e-2a7d5e1f9b30';

export const partyExample: z.output<typeof partyResponse> = {
  id: 7,
  role: 'supplier',
  name: 'Acme Trading S.A.',
  taxId: '155-1234-5678',
  vatId: null,
  address: 'Calle 50, Panama City',
  email: 'billing@acme.example',
  currency: 'USD',
  defaultTaxRate: '7.00',
  invoicePrefix: 'ACME-',
  invoiceDigits: 6,
  invoiceStartNumber: 1,
  lastInvoiceNumber: 41,
  createdAt: '2026-01-05T09:30:00.000Z',
};

export const invoiceExample: InvoiceResponse = {
  id: 312,
  invoiceNumber: 'ACME-000042',
  invoiceNumberInt: 42,
  supplierId: 7,
  clientId: 9,
  issueDate: '2026-02-01',
  dueDate: '2026-03-03',
  currency: 'USD',
  status: 'ISSUED',
  supplier: { name: 'Acme Trading S.A.', taxId: '155-1234-5678', vatId: null, address: 'Calle 50, Panama City', email: 'billing@acme.example' },
  client: { name: 'Blue Harbour Ltd', taxId: null, vatId: 'GB123456789', address: '1 Quay Street, Bristol', email: null },
  notes: null,
  items: [
    {
      lineNumber: 1,
      description: 'Customs declaration service',
      quantity: '2.5',
      unitPrice: '12.50',
      discount: '1.00',
      taxRate: '7',
      subtotal: '30.25',
      tax: '2.12',
      total: '32.37',
    },
  ],
  subtotal: '30.25',
  taxTotal: '2.12',
  total: '32.37',
  requestId: null,
  createdAt: '2026-02-01T10:15:02.481Z',
};

export const requestQueuedExample: z.output<typeof invoiceRequestQueued> = {
  requestId: REQUEST_ID_EXAMPLE,
  status: 'PENDING',
  message: 'invoice generation request queued',
};

export const requestStatusExample: InvoiceRequestStatus = {
  requestId: REQUEST_ID_EXAMPLE,
  status: 'COMPLETED',
  invoiceId: 312,
  invoiceNumber: 'ACME-000042',
  errorMessage: null,
  createdAt: '2026-02-01T10:15:01.902Z',
  completedAt: '2026-02-01T10:15:02.481Z',
};
