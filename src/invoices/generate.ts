import type { Knex } from 'knex';
import { crashPoint } from '../lib/crash-point.js';
import { InvoiceInputError } from './errors.js';
import { computeInvoice, normalizeDecimal } from './money.js';
import { takeNextInvoiceNumber } from './numbering.js';
import type { GenerateInvoiceRequest } from './schemas.js';
import { getInvoiceByRequest, getParty, insertNumberedInvoice, type NewInvoiceItem } from './store.js';

// The one way an invoice comes into being. The sync API, the UI form and the
// invoice-request worker all call generateInvoice, so numbering has a single
// implementation: supplier row locked, number taken, invoice and items
// inserted, last_invoice_number moved on, all in one transaction.

export const DEFAULT_PAYMENT_DAYS = 30;

export interface GenerateOptions {
  /** Links the invoice to an invoice request; a second call for it returns the first invoice. */
  requestId?: string;
  now?: () => Date;
}

export interface GeneratedInvoice {
  id: number;
  invoiceNumber: string;
  /** false when the request already had an invoice (a retry after a crash). */
  created: boolean;
}

export async function generateInvoice(db: Knex, input: GenerateInvoiceRequest, opts: GenerateOptions = {}): Promise<GeneratedInvoice> {
  const now = opts.now ?? (() => new Date());
  const issueDate = input.issueDate ?? now().toISOString().slice(0, 10);
  const dueDate = input.dueDate ?? addDays(issueDate, DEFAULT_PAYMENT_DAYS);
  if (dueDate < issueDate) throw new InvoiceInputError('INVALID_FIELD', 'dueDate', `dueDate: must not be before issueDate (${issueDate})`);

  return db.transaction(async (trx) => {
    // The client is read before the supplier lock is taken, so the lock is
    // held only for the statements that need it.
    const client = await getParty(trx, input.clientId);
    if (!client) throw new InvoiceInputError('UNKNOWN_CLIENT', 'clientId', `clientId ${input.clientId}: no such party`);
    if (client.role !== 'client') throw new InvoiceInputError('NOT_A_CLIENT', 'clientId', `clientId ${input.clientId}: party is a ${client.role}, not a client`);

    const taken = await takeNextInvoiceNumber(trx, input.supplierId);
    if (!taken) throw new InvoiceInputError('UNKNOWN_SUPPLIER', 'supplierId', `supplierId ${input.supplierId}: no such party`);
    const { supplier } = taken;
    if (supplier.role !== 'supplier') {
      throw new InvoiceInputError('NOT_A_SUPPLIER', 'supplierId', `supplierId ${input.supplierId}: party is a ${supplier.role}, not a supplier`);
    }

    const lines = input.items.map((item) => ({
      quantity: item.quantity,
      unitPrice: item.unitPrice,
      discount: item.discount ?? '0',
      taxRate: item.taxRate ?? supplier.default_tax_rate,
    }));
    const amounts = computeInvoice(lines);
    const items: NewInvoiceItem[] = input.items.map((item, i) => ({
      line_number: i + 1,
      description: item.description,
      quantity: normalizeDecimal(item.quantity),
      unit_price: normalizeDecimal(item.unitPrice),
      discount: lines[i]!.discount,
      tax_rate: lines[i]!.taxRate,
      ...amounts.lines[i]!,
    }));
    const invoiceId = await insertNumberedInvoice(
      trx,
      {
        supplier_party_id: supplier.id,
        client_party_id: client.id,
        invoice_number: taken.invoiceNumber,
        invoice_number_int: taken.numberInt,
        issue_date: issueDate,
        due_date: dueDate,
        currency: input.currency ?? supplier.currency,
        supplier_name: supplier.name,
        supplier_tax_id: supplier.tax_id,
        supplier_vat_id: supplier.vat_id,
        supplier_address: supplier.address,
        supplier_email: supplier.email,
        client_name: client.name,
        client_tax_id: client.tax_id,
        client_vat_id: client.vat_id,
        client_address: client.address,
        client_email: client.email,
        notes: input.notes ?? null,
        subtotal: amounts.subtotal,
        tax_total: amounts.taxTotal,
        total: amounts.total,
        request_id: opts.requestId ?? null,
      },
      items,
    );
    if (invoiceId === null) {
      // This request already has its invoice (committed by an attempt that
      // died before marking the request COMPLETED). Nothing was written in
      // this transaction, so the number goes back untouched.
      const existing = await getInvoiceByRequest(trx, opts.requestId!);
      if (!existing) throw new Error(`invoice for request ${opts.requestId} conflicted but cannot be read`);
      return { id: existing.id, invoiceNumber: existing.invoice_number, created: false };
    }
    crashPoint('invoice:before-commit');
    return { id: invoiceId, invoiceNumber: taken.invoiceNumber, created: true };
  });
}

function addDays(isoDate: string, days: number): string {
  const d = new Date(`${isoDate}T00:00:00Z`);
  d.setUTCDate(d.getUTCDate() + days);
  return d.toISOString().slice(0, 10);
}
