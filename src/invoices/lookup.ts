import type { Knex } from 'knex';
import { findInvoicesByNumber, getInvoice, type InvoiceRow } from './store.js';

// How an operator names an invoice: by its number (ACME-000003, what the API,
// the PDF and the client see) or by its id. One rule for every command that
// takes an invoice (`invoices show`, `pac status|repoll|attach-pdf|resubmit`):
// - the number is looked up first, within --supplier when given;
// - a plain whole number (no leading zero) may also be an id;
// - when the two find different invoices, or several suppliers use the
//   number, the error says which and how to pick (--supplier, or id:N).

export class InvoiceLookupError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InvoiceLookupError';
  }
}

const ID_FORM = /^[1-9][0-9]{0,9}$/;
const EXPLICIT_ID = /^id:([1-9][0-9]{0,9})$/;
// Postgres integer ids.
const MAX_ID = 2_147_483_647;

export async function findInvoiceByRef(db: Knex, ref: string, supplierId?: number): Promise<InvoiceRow> {
  const explicit = EXPLICIT_ID.exec(ref);
  const idText = explicit ? explicit[1]! : ID_FORM.test(ref) ? ref : undefined;
  const id = idText !== undefined && Number(idText) <= MAX_ID ? Number(idText) : undefined;
  const forSupplier = supplierId === undefined ? '' : ` of supplier ${supplierId}`;
  const byId = id === undefined ? null : await getInvoice(db, id);
  const idMatch = byId && (supplierId === undefined || byId.supplier_party_id === supplierId) ? byId : null;
  if (explicit) {
    if (!idMatch) throw new InvoiceLookupError(`no invoice with id ${id}${forSupplier}`);
    return idMatch;
  }
  const byNumber = await findInvoicesByNumber(db, ref, supplierId);
  if (byNumber.length > 1) {
    throw new InvoiceLookupError(`several suppliers use invoice number ${ref} (suppliers ${byNumber.map((f) => f.supplier_party_id).join(', ')}): add --supplier ID`);
  }
  const numbered = byNumber[0];
  if (numbered && idMatch && numbered.id !== idMatch.id) {
    throw new InvoiceLookupError(
      `${ref} is the number of invoice id ${numbered.id} (supplier ${numbered.supplier_party_id}) and also the id of invoice ${idMatch.invoice_number}: ` +
        `write id:${ref} for the id, or add --supplier ${numbered.supplier_party_id} for the number`,
    );
  }
  const found = numbered ?? idMatch;
  if (!found) throw new InvoiceLookupError(`no invoice ${ref}${forSupplier} (give an invoice number such as ACME-000042, or an invoice id)`);
  return found;
}
