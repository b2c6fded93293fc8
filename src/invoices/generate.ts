import type { Knex } from 'knex';
import { crashPoint } from '../lib/crash-point.js';
import { addDays } from '../lib/boundary.js';
import { InvoiceInputError, NumberingExhausted } from './errors.js';
import { computeInvoice, normalizeDecimal } from './money.js';
import { lockSupplierForNumbering, nextInvoiceNumberInt, numbersLeft, takeNumbers } from './numbering.js';
import { claimPendingInvoiceRequests, completeInvoiceRequests, failInvoiceRequest, type InvoiceRequestRow } from './request-store.js';
import { describeFirstIssue, generateInvoiceRequest, type GenerateInvoiceRequest } from './schemas.js';
import { getInvoiceByRequest, getPartiesById, getParty, insertNumberedInvoices, type NewInvoice, type NewInvoiceItem, type PartyRow } from './store.js';

// The one way an invoice comes into being. The sync API, the UI form and the
// invoice-request worker all call generateInvoice, so numbering has a single
// implementation (numberAndWrite): supplier row locked, numbers taken,
// invoices and items inserted, last_invoice_number moved on, all in one
// transaction.
//
// Batch numbering (worker only, opts.companions): one supplier's numbers are
// as fast as its lock is held, and a commit costs a WAL flush. So a worker
// that holds the lock also takes up to `companions` other PENDING requests of
// that supplier (newest first, SKIP LOCKED) and numbers, writes and
// completes them in the same transaction. Their own jobs later find them
// COMPLETED and do nothing. A crash anywhere before the commit rolls all of
// it back (they are pending again); after it, they are done.

export const DEFAULT_PAYMENT_DAYS = 30;

export interface GenerateOptions {
  /** Links the invoice to an invoice request; a second call for it returns the first invoice. */
  requestId?: string;
  /** With requestId: also number up to this many other pending requests of the supplier. (Default 0.) */
  companions?: number;
  now?: () => Date;
}

export interface GeneratedInvoice {
  id: number;
  invoiceNumber: string;
  /** false when the request already had an invoice (a retry after a crash). */
  created: boolean;
  /** Other requests completed in the same transaction (batch numbering). */
  companions: number;
}

interface Order {
  input: GenerateInvoiceRequest;
  client: PartyRow;
  requestId: string | null;
  issueDate: string;
  dueDate: string;
}

export async function generateInvoice(db: Knex, input: GenerateInvoiceRequest, opts: GenerateOptions = {}): Promise<GeneratedInvoice> {
  const now = opts.now ?? (() => new Date());
  const { issueDate, dueDate } = invoiceDates(input, now);

  return db.transaction(async (trx) => {
    // The client is read before the supplier lock is taken, so the lock is
    // held only for the statements that need it.
    const client = checkClient(input.clientId, await getParty(trx, input.clientId));
    const supplier = checkSupplier(input.supplierId, await lockSupplierForNumbering(trx, input.supplierId));
    if (opts.requestId) {
      // Under the lock, so no other attempt can be writing it right now.
      // Found: an attempt that died before marking the request COMPLETED
      // committed it; no number is taken this time.
      const existing = await getInvoiceByRequest(trx, opts.requestId);
      if (existing) return { id: existing.id, invoiceNumber: existing.invoice_number, created: false, companions: 0 };
    }
    // Refused before anything is written: the transaction ends with no invoice and no number taken.
    const room = numbersLeft(supplier);
    if (room === 0) throw new NumberingExhausted(supplier.id, nextInvoiceNumberInt(supplier));
    const own: Order = { input, client, requestId: opts.requestId ?? null, issueDate, dueDate };
    const companionLimit = Math.min(opts.companions ?? 0, room - 1);
    const companions = opts.requestId && companionLimit > 0 ? await takeCompanions(trx, supplier, opts.requestId, companionLimit, now) : [];
    const written = await numberAndWrite(trx, supplier, [own, ...companions]);
    const moved = await completeInvoiceRequests(
      trx,
      companions.map((o, i) => ({ id: o.requestId!, invoice_id: written[i + 1]!.id })),
    );
    if (moved !== companions.length) throw new Error(`completed ${moved} of ${companions.length} batched requests; rolling back`);
    crashPoint('invoice:before-commit');
    return { ...written[0]!, created: true, companions: companions.length };
  });
}

/** THE numbering: consecutive numbers for the orders, written in one statement. */
async function numberAndWrite(trx: Knex.Transaction, supplier: PartyRow, orders: Order[]): Promise<{ id: number; invoiceNumber: string }[]> {
  const numbers = takeNumbers(supplier, orders.length);
  const invoices: NewInvoice[] = [];
  const items: (NewInvoiceItem & { invoice_number_int: number })[] = [];
  orders.forEach((order, k) => {
    const { input, client } = order;
    const number = numbers[k]!;
    const lines = input.items.map((item) => ({
      quantity: item.quantity,
      unitPrice: item.unitPrice,
      discount: item.discount ?? '0',
      taxRate: item.taxRate ?? supplier.default_tax_rate,
    }));
    const amounts = computeInvoice(lines);
    input.items.forEach((item, i) =>
      items.push({
        invoice_number_int: number.numberInt,
        line_number: i + 1,
        description: item.description,
        quantity: normalizeDecimal(item.quantity),
        unit_price: normalizeDecimal(item.unitPrice),
        discount: lines[i]!.discount,
        tax_rate: lines[i]!.taxRate,
        ...amounts.lines[i]!,
      }),
    );
    invoices.push({
      supplier_party_id: supplier.id,
      client_party_id: client.id,
      invoice_number: number.invoiceNumber,
      invoice_number_int: number.numberInt,
      issue_date: order.issueDate,
      due_date: order.dueDate,
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
      request_id: order.requestId,
    });
  });
  const rows = await insertNumberedInvoices(trx, invoices, items);
  if (rows.length !== orders.length) {
    // A request already had an invoice: writing the rest would leave a gap.
    throw new Error(`wrote ${rows.length} of ${orders.length} invoices (a request already had one); rolling back`);
  }
  const idByNumber = new Map(rows.map((r) => [r.invoice_number_int, r.id]));
  return numbers.map((n) => ({ id: idByNumber.get(n.numberInt)!, invoiceNumber: n.invoiceNumber }));
}

/**
 * Claims other pending requests of this supplier for the batch. One that
 * cannot become an invoice (bad payload, unknown client) is failed here, in
 * the same transaction, exactly as its own job would have failed it.
 */
async function takeCompanions(trx: Knex.Transaction, supplier: PartyRow, ownId: string, limit: number, now: () => Date): Promise<Order[]> {
  const claimed = await claimPendingInvoiceRequests(trx, supplier.id, ownId, limit);
  if (claimed.length === 0) return [];
  // Numbers follow arrival: claimed comes oldest first, ordered by the database's
  // microsecond created_at (a JavaScript Date would tie requests of one millisecond).
  const clients = await getPartiesById(trx, claimed.map((r) => r.client_party_id));
  const orders: Order[] = [];
  for (const request of claimed) {
    try {
      orders.push(companionOrder(request, clients, now));
    } catch (err) {
      if (!(err instanceof InvoiceInputError)) throw err;
      await failInvoiceRequest(trx, request.id, err.message);
    }
  }
  return orders;
}

function companionOrder(request: InvoiceRequestRow, clients: Map<number, PartyRow>, now: () => Date): Order {
  const parsed = generateInvoiceRequest.safeParse(request.payload);
  if (!parsed.success) {
    const { field, message } = describeFirstIssue(parsed.error);
    throw new InvoiceInputError('INVALID_FIELD', field, message);
  }
  const input = parsed.data;
  const client = checkClient(input.clientId, clients.get(input.clientId) ?? null);
  return { input, client, requestId: request.id, ...invoiceDates(input, now) };
}

function invoiceDates(input: GenerateInvoiceRequest, now: () => Date): { issueDate: string; dueDate: string } {
  const issueDate = input.issueDate ?? now().toISOString().slice(0, 10);
  const dueDate = input.dueDate ?? addDays(issueDate, DEFAULT_PAYMENT_DAYS);
  if (dueDate === null) {
    throw new InvoiceInputError('INVALID_FIELD', 'issueDate', `issueDate: the default due date (${DEFAULT_PAYMENT_DAYS} days later) would pass 9999-12-31; give dueDate`);
  }
  if (dueDate < issueDate) throw new InvoiceInputError('INVALID_FIELD', 'dueDate', `dueDate: must not be before issueDate (${issueDate})`);
  return { issueDate, dueDate };
}

function checkClient(id: number, party: PartyRow | null): PartyRow {
  if (!party) throw new InvoiceInputError('UNKNOWN_CLIENT', 'clientId', `clientId ${id}: no such party`);
  if (party.role !== 'client') throw new InvoiceInputError('NOT_A_CLIENT', 'clientId', `clientId ${id}: party is a ${party.role}, not a client`);
  return party;
}

function checkSupplier(id: number, party: PartyRow | null): PartyRow {
  if (!party) throw new InvoiceInputError('UNKNOWN_SUPPLIER', 'supplierId', `supplierId ${id}: no such party`);
  if (party.role !== 'supplier') throw new InvoiceInputError('NOT_A_SUPPLIER', 'supplierId', `supplierId ${id}: party is a ${party.role}, not a supplier`);
  return party;
}
