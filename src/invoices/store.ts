import type { Knex } from 'knex';

// Every SQL statement on parties, invoices and invoice_items. Numeric and
// date columns are read as text: pg and PGlite parse them differently (and a
// JS Date shifts a DATE by the server's time zone), text is exact in both.
// invoice_requests live in request-store.ts.

type Db = Knex | Knex.Transaction;

export type PartyRole = 'supplier' | 'client';

export interface PartyRow {
  id: number;
  role: PartyRole;
  name: string;
  tax_id: string | null;
  vat_id: string | null;
  address: string;
  email: string | null;
  currency: string;
  default_tax_rate: string;
  invoice_prefix: string;
  invoice_digits: number;
  invoice_start_number: number;
  last_invoice_number: number;
  created_at: Date;
}

export type NewParty = Partial<Omit<PartyRow, 'id' | 'created_at' | 'last_invoice_number'>> & Pick<PartyRow, 'role' | 'name'>;

// bigint columns arrive as strings unless src/db's type parser is loaded;
// numbering must never depend on that ("1" + 1 is "11").
function toParty(row: Record<string, unknown> | undefined): PartyRow | null {
  if (!row) return null;
  return { ...row, invoice_start_number: Number(row.invoice_start_number), last_invoice_number: Number(row.last_invoice_number) } as PartyRow;
}

const PARTY_COLUMNS = `id, role, name, tax_id, vat_id, address, email, currency, default_tax_rate::text AS default_tax_rate,
  invoice_prefix, invoice_digits, invoice_start_number, last_invoice_number, created_at`;

export async function insertParty(db: Db, party: NewParty): Promise<PartyRow> {
  const [inserted] = (await db('parties').insert(party).returning('id')) as { id: number }[];
  return (await getParty(db, inserted!.id))!;
}

export async function getParty(db: Db, id: number): Promise<PartyRow | null> {
  const { rows } = await db.raw(`SELECT ${PARTY_COLUMNS} FROM parties WHERE id = ?`, [id]);
  return toParty(rows[0]);
}

export async function listParties(db: Db, opts: { role?: PartyRole; afterId?: number; limit: number }): Promise<PartyRow[]> {
  const { rows } = await db.raw(
    `SELECT ${PARTY_COLUMNS} FROM parties
      WHERE (?::text IS NULL OR role = ?) AND id > ?
      ORDER BY id LIMIT ?`,
    [opts.role ?? null, opts.role ?? null, opts.afterId ?? 0, opts.limit],
  );
  return (rows as Record<string, unknown>[]).map((r) => toParty(r)!);
}

/**
 * THE numbering lock: the supplier row, locked until the caller's
 * transaction ends. Every invoice number is taken while holding it.
 * FOR NO KEY UPDATE is the FOR UPDATE strength that still lets foreign-key
 * checks (FOR KEY SHARE) through: numberers queue behind each other, but a
 * POST /api/v1/invoice-requests naming this supplier does not wait for them.
 */
export async function lockSupplier(trx: Knex.Transaction, id: number): Promise<PartyRow | null> {
  const { rows } = await trx.raw(`SELECT ${PARTY_COLUMNS} FROM parties WHERE id = ? FOR NO KEY UPDATE`, [id]);
  return toParty(rows[0]);
}

export interface NewInvoice {
  supplier_party_id: number;
  client_party_id: number;
  invoice_number: string;
  invoice_number_int: number;
  issue_date: string;
  due_date: string;
  currency: string;
  supplier_name: string;
  supplier_tax_id: string | null;
  supplier_vat_id: string | null;
  supplier_address: string;
  supplier_email: string | null;
  client_name: string;
  client_tax_id: string | null;
  client_vat_id: string | null;
  client_address: string;
  client_email: string | null;
  notes: string | null;
  subtotal: string;
  tax_total: string;
  total: string;
  request_id: string | null;
}

export interface NewInvoiceItem {
  line_number: number;
  description: string;
  quantity: string;
  unit_price: string;
  discount: string;
  tax_rate: string;
  subtotal: string;
  tax: string;
  total: string;
}

/**
 * Writes numbered invoices in one statement, while the caller holds the
 * supplier lock: the invoices, their items (matched by invoice_number_int),
 * and the supplier's last_invoice_number. One round trip however many
 * invoices, so the lock is held briefly (the lock is the throughput limit of
 * one supplier). ON CONFLICT (request_id) skips an invoice whose request
 * already has one: the result then has fewer rows than asked, and the caller
 * must roll back (its numbers would have a gap). Any other unique violation
 * (a number taken twice) is a bug and is thrown.
 */
export async function insertNumberedInvoices(
  trx: Knex.Transaction,
  invoices: NewInvoice[],
  items: (NewInvoiceItem & { invoice_number_int: number })[],
): Promise<{ id: number; invoice_number_int: number }[]> {
  const columns = Object.keys(invoices[0]!) as (keyof NewInvoice)[];
  const { rows } = await trx.raw(
    `WITH inv AS (
       INSERT INTO invoices (${columns.join(', ')})
       SELECT ${columns.join(', ')} FROM jsonb_populate_recordset(NULL::invoices, ?::jsonb)
       ON CONFLICT (request_id) DO NOTHING
       RETURNING id, supplier_party_id, invoice_number_int
     ), items AS (
       INSERT INTO invoice_items (invoice_id, line_number, description, quantity, unit_price, discount, tax_rate, subtotal, tax, total)
       SELECT inv.id, x.line_number, x.description, x.quantity, x.unit_price, x.discount, x.tax_rate, x.subtotal, x.tax, x.total
         FROM jsonb_to_recordset(?::jsonb) AS x (invoice_number_int bigint, line_number int, description text, quantity numeric,
              unit_price numeric, discount numeric, tax_rate numeric, subtotal numeric, tax numeric, total numeric)
         JOIN inv ON inv.invoice_number_int = x.invoice_number_int
     ), supplier AS (
       UPDATE parties p SET last_invoice_number = m.n
         FROM (SELECT supplier_party_id, max(invoice_number_int) AS n FROM inv GROUP BY supplier_party_id) m
        WHERE p.id = m.supplier_party_id
     )
     SELECT id, invoice_number_int FROM inv ORDER BY invoice_number_int`,
    [JSON.stringify(invoices), JSON.stringify(items)],
  );
  return (rows as { id: number; invoice_number_int: string | number }[]).map((r) => ({ id: r.id, invoice_number_int: Number(r.invoice_number_int) }));
}

export interface InvoiceRow extends Omit<NewInvoice, 'request_id'> {
  id: number;
  status: string;
  request_id: string | null;
  created_at: Date;
}

export interface InvoiceItemRow extends NewInvoiceItem {
  invoice_id: number;
}

const INVOICE_COLUMNS = `id, supplier_party_id, client_party_id, invoice_number, invoice_number_int,
  issue_date::text AS issue_date, due_date::text AS due_date, currency, status,
  supplier_name, supplier_tax_id, supplier_vat_id, supplier_address, supplier_email,
  client_name, client_tax_id, client_vat_id, client_address, client_email, notes,
  subtotal::text AS subtotal, tax_total::text AS tax_total, total::text AS total, request_id, created_at`;

export async function getInvoice(db: Db, id: number): Promise<InvoiceRow | null> {
  const { rows } = await db.raw(`SELECT ${INVOICE_COLUMNS} FROM invoices WHERE id = ?`, [id]);
  return (rows[0] as InvoiceRow | undefined) ?? null;
}

export async function getPartiesById(db: Db, ids: readonly number[]): Promise<Map<number, PartyRow>> {
  const { rows } = await db.raw(`SELECT ${PARTY_COLUMNS} FROM parties WHERE id = ANY(?::int[])`, [[...new Set(ids)]]);
  return new Map((rows as Record<string, unknown>[]).map((r) => [Number(r.id), toParty(r)!]));
}

export async function getInvoiceByRequest(db: Db, requestId: string): Promise<InvoiceRow | null> {
  const { rows } = await db.raw(`SELECT ${INVOICE_COLUMNS} FROM invoices WHERE request_id = ?`, [requestId]);
  return (rows[0] as InvoiceRow | undefined) ?? null;
}

/** Invoices with this number: one per supplier at most (ux_invoices_supplier_number). */
export async function findInvoicesByNumber(db: Db, invoiceNumber: string, supplierId?: number): Promise<InvoiceRow[]> {
  const { rows } = await db.raw(
    `SELECT ${INVOICE_COLUMNS} FROM invoices
      WHERE invoice_number = ? AND (?::int IS NULL OR supplier_party_id = ?)
      ORDER BY supplier_party_id LIMIT 20`,
    [invoiceNumber, supplierId ?? null, supplierId ?? null],
  );
  return rows as InvoiceRow[];
}

export async function listInvoiceItems(db: Db, invoiceId: number): Promise<InvoiceItemRow[]> {
  const { rows } = await db.raw(
    `SELECT invoice_id, line_number, description, quantity::text AS quantity, unit_price::text AS unit_price,
            discount::text AS discount, tax_rate::text AS tax_rate,
            subtotal::text AS subtotal, tax::text AS tax, total::text AS total
       FROM invoice_items WHERE invoice_id = ? ORDER BY line_number`,
    [invoiceId],
  );
  return rows as InvoiceItemRow[];
}

/** Per supplier: how many invoices, the lowest and highest number (for checks and benchmarks). */
export async function summarizeInvoiceNumbers(
  db: Db,
  supplierId: number,
): Promise<{ count: number; distinct: number; min: number | null; max: number | null }> {
  const { rows } = await db.raw(
    `SELECT count(*)::int AS count, count(DISTINCT invoice_number_int)::int AS distinct,
            min(invoice_number_int) AS min, max(invoice_number_int) AS max
       FROM invoices WHERE supplier_party_id = ?`,
    [supplierId],
  );
  const r = rows[0] as { count: number; distinct: number; min: number | null; max: number | null };
  return { count: Number(r.count), distinct: Number(r.distinct), min: r.min === null ? null : Number(r.min), max: r.max === null ? null : Number(r.max) };
}
