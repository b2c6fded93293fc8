import type { Knex } from 'knex';
import { NumberingExhausted } from './errors.js';
import { lockSupplier, type PartyRow } from './store.js';

// Invoice numbers per supplier: contiguous, no gap, no duplicate, across any
// number of processes. The next numbers are read and written while holding
// the supplier row lock (SELECT ... FOR NO KEY UPDATE, see store.ts), inside
// the transaction that inserts the invoices: a rolled-back invoice gives its
// number back, a committed one has it for good. ux_invoices_supplier_number
// backs this up.
//
// The range: 1..INVOICE_NUMBER_MAX (2^53 - 1). The columns are bigint, but
// JavaScript numbers are exact only up to 2^53 - 1: past it last + 1 == last,
// and the next invoice would take a number already issued. So the start
// number is refused above it at the API, the CHECKs of migration 0012 hold
// every stored number to it, and a supplier that has issued
// INVOICE_NUMBER_MAX is told its numbering is exhausted (409) before
// anything is written.

export const INVOICE_NUMBER_MAX = Number.MAX_SAFE_INTEGER;

/** prefix + the number zero-padded to `digits` (never truncated: 1000000 stays 7 digits). */
export function formatInvoiceNumber(prefix: string, digits: number, n: number): string {
  return `${prefix}${String(n).padStart(digits, '0')}`;
}

/** The first invoice gets invoice_start_number; later ones last + 1. */
export function nextInvoiceNumberInt(supplier: Pick<PartyRow, 'last_invoice_number' | 'invoice_start_number'>): number {
  return Math.max(supplier.last_invoice_number + 1, supplier.invoice_start_number);
}

/** How many numbers the supplier can still issue (0 when exhausted). */
export function numbersLeft(supplier: Pick<PartyRow, 'last_invoice_number' | 'invoice_start_number'>): number {
  return Math.max(0, INVOICE_NUMBER_MAX - nextInvoiceNumberInt(supplier) + 1);
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
  if (count > numbersLeft(lockedSupplier)) throw new NumberingExhausted(lockedSupplier.id, nextInvoiceNumberInt(lockedSupplier));
  const first = nextInvoiceNumberInt(lockedSupplier);
  return Array.from({ length: count }, (_, i) => ({
    numberInt: first + i,
    invoiceNumber: formatInvoiceNumber(lockedSupplier.invoice_prefix, lockedSupplier.invoice_digits, first + i),
  }));
}
