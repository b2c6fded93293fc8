import type { Knex } from 'knex';
import { formatDecimal } from './money.js';
import type { InvoiceRequestView } from './request-store.js';
import type { InvoiceRequestStatus, InvoiceResponse } from './schemas.js';
import { getInvoice, listInvoiceItems, type InvoiceItemRow, type InvoiceRow, type PartyRow } from './store.js';

// Rows -> the JSON the API promises (camelCase, money as 2-dp strings,
// request statuses in capitals as the original contract has them).

export function toPartyResponse(p: PartyRow) {
  return {
    id: p.id,
    role: p.role,
    name: p.name,
    taxId: p.tax_id,
    vatId: p.vat_id,
    address: p.address,
    email: p.email,
    currency: p.currency,
    defaultTaxRate: formatDecimal(p.default_tax_rate, 2),
    invoicePrefix: p.invoice_prefix,
    invoiceDigits: p.invoice_digits,
    invoiceStartNumber: Number(p.invoice_start_number),
    lastInvoiceNumber: Number(p.last_invoice_number),
    createdAt: new Date(p.created_at).toISOString(),
  };
}

export function toInvoiceResponse(inv: InvoiceRow, items: InvoiceItemRow[]): InvoiceResponse {
  return {
    id: inv.id,
    invoiceNumber: inv.invoice_number,
    invoiceNumberInt: Number(inv.invoice_number_int),
    supplierId: inv.supplier_party_id,
    clientId: inv.client_party_id,
    issueDate: inv.issue_date,
    dueDate: inv.due_date,
    currency: inv.currency,
    status: inv.status.toUpperCase(),
    supplier: { name: inv.supplier_name, taxId: inv.supplier_tax_id, vatId: inv.supplier_vat_id, address: inv.supplier_address, email: inv.supplier_email },
    client: { name: inv.client_name, taxId: inv.client_tax_id, vatId: inv.client_vat_id, address: inv.client_address, email: inv.client_email },
    notes: inv.notes,
    items: items.map((it) => ({
      lineNumber: it.line_number,
      description: it.description,
      quantity: trimZeros(it.quantity),
      unitPrice: formatDecimal(it.unit_price, Math.max(2, scaleOf(trimZeros(it.unit_price)))),
      discount: formatDecimal(it.discount, 2),
      taxRate: trimZeros(it.tax_rate),
      subtotal: formatDecimal(it.subtotal, 2),
      tax: formatDecimal(it.tax, 2),
      total: formatDecimal(it.total, 2),
    })),
    subtotal: formatDecimal(inv.subtotal, 2),
    taxTotal: formatDecimal(inv.tax_total, 2),
    total: formatDecimal(inv.total, 2),
    requestId: inv.request_id,
    createdAt: new Date(inv.created_at).toISOString(),
  };
}

/** The full InvoiceResponse for an invoice id, or null. */
export async function loadInvoiceResponse(db: Knex, id: number): Promise<InvoiceResponse | null> {
  const inv = await getInvoice(db, id);
  if (!inv) return null;
  return toInvoiceResponse(inv, await listInvoiceItems(db, id));
}

export function toRequestStatus(r: InvoiceRequestView): InvoiceRequestStatus {
  return {
    requestId: r.id,
    status: r.status.toUpperCase() as InvoiceRequestStatus['status'],
    invoiceId: r.invoice_id,
    invoiceNumber: r.invoice_number,
    errorMessage: r.error_message,
    createdAt: new Date(r.created_at).toISOString(),
    completedAt: r.completed_at ? new Date(r.completed_at).toISOString() : null,
  };
}

function trimZeros(v: string): string {
  return v.includes('.') ? v.replace(/0+$/, '').replace(/\.$/, '') : v;
}

function scaleOf(v: string): number {
  const dot = v.indexOf('.');
  return dot < 0 ? 0 : v.length - dot - 1;
}
