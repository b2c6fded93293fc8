import { HttpError } from '../http/errors.js';
import { InvoiceInputError, NumberingExhausted } from './errors.js';

// Shared by every invoice route module (sync, async queue, form), in a module
// of its own so that none of them imports the plugin that mounts them.

/**
 * What generateInvoice refused, as the catalogue's answer naming the field:
 * InvoiceInputError -> 400/422 with the id, NumberingExhausted -> 409.
 * Anything else is returned as it was (a 5xx for the error handler).
 */
export function invoiceHttpError(err: unknown): unknown {
  if (err instanceof NumberingExhausted) {
    return new HttpError('NUMBERING_EXHAUSTED', err.message, { field: err.field, supplierId: err.supplierId }, { cause: err });
  }
  if (!(err instanceof InvoiceInputError)) return err;
  const code = err.code === 'UNKNOWN_SUPPLIER' || err.code === 'UNKNOWN_CLIENT' ? 'UNKNOWN_PARTY' : err.code === 'INVALID_FIELD' ? 'VALIDATION_FAILED' : 'WRONG_PARTY_ROLE';
  return new HttpError(code, err.message, { field: err.field }, { cause: err });
}
