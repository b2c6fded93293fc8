import type { Knex } from 'knex';
import { lockSupplier, type PartyRow } from './store.js';

// Invoice numbers per supplier: contiguous, no gap, no duplicate, across any
// number of processes. The next number is read and written while holding the
// supplier row lock (SELECT ... FOR UPDATE), inside the transaction that
// inserts the invoice: a rolled-back invoice gives its number back, a
// committed one has it for good. ux_invoices_supplier_number backs this up.

/** prefix + the number zero-padded to `digits` (never truncated: 1000000 stays 7 digits). */
export function formatInvoiceNumber(prefix: string, digits: number, n: number): string {
  return `${prefix}${String(n).padStart(digits, '0')}`;
}

/** The first invoice gets invoice_start_number; later ones last + 1. */
export function nextInvoiceNumberInt(supplier: Pick<PartyRow, 'last_invoice_number' | 'invoice_start_number'>): number {
  return Math.max(supplier.last_invoice_number + 1, supplier.invoice_start_number);
}

export interface TakenNumber {
  supplier: PartyRow;
  numberInt: number;
  invoiceNumber: string;
}

/**
 * Locks the supplier row and works out its next number; null when no such
 * party. The number only counts once insertNumberedInvoice (store.ts) has
 * written it in the same transaction and that transaction commits.
 */
export async function takeNextInvoiceNumber(trx: Knex.Transaction, supplierId: number): Promise<TakenNumber | null> {
  const supplier = await lockSupplier(trx, supplierId);
  if (!supplier) return null;
  const numberInt = nextInvoiceNumberInt(supplier);
  return { supplier, numberInt, invoiceNumber: formatInvoiceNumber(supplier.invoice_prefix, supplier.invoice_digits, numberInt) };
}
