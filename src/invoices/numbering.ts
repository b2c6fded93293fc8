import type { Knex } from 'knex';
import { lockSupplier, type PartyRow } from './store.js';

// Invoice numbers per supplier: contiguous, no gap, no duplicate, across any
// number of processes. The next numbers are read and written while holding
// the supplier row lock (SELECT ... FOR NO KEY UPDATE, see store.ts), inside
// the transaction that inserts the invoices: a rolled-back invoice gives its
// number back, a committed one has it for good. ux_invoices_supplier_number
// backs this up.

/** prefix + the number zero-padded to `digits` (never truncated: 1000000 stays 7 digits). */
export function formatInvoiceNumber(prefix: string, digits: number, n: number): string {
  return `${prefix}${String(n).padStart(digits, '0')}`;
}

/** The first invoice gets invoice_start_number; later ones last + 1. */
export function nextInvoiceNumberInt(supplier: Pick<PartyRow, 'last_invoice_number' | 'invoice_start_number'>): number {
  return Math.max(supplier.last_invoice_number + 1, supplier.invoice_start_number);
}

export interface TakenNumber {
  numberInt: number;
  invoiceNumber: string;
}

/** The supplier row, locked until the transaction ends; null when no such party. */
export function lockSupplierForNumbering(trx: Knex.Transaction, supplierId: number): Promise<PartyRow | null> {
  return lockSupplier(trx, supplierId);
}

/**
 * The next `count` numbers of a supplier whose row this transaction has
 * locked. They only count once insertNumberedInvoices (store.ts) has
 * written them, moving last_invoice_number on, and the transaction commits.
 */
export function takeNumbers(lockedSupplier: PartyRow, count: number): TakenNumber[] {
  const first = nextInvoiceNumberInt(lockedSupplier);
  return Array.from({ length: count }, (_, i) => ({
    numberInt: first + i,
    invoiceNumber: formatInvoiceNumber(lockedSupplier.invoice_prefix, lockedSupplier.invoice_digits, first + i),
  }));
}
