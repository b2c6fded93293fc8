// Why an invoice cannot be generated from what the caller sent. These are
// permanent: a retry gets the same answer, so the worker fails the request at
// once and the HTTP routes answer 4xx. Anything else thrown while generating
// (lost connection, deadlock, timeout) is transient.

export type InvoiceInputCode = 'UNKNOWN_SUPPLIER' | 'UNKNOWN_CLIENT' | 'NOT_A_SUPPLIER' | 'NOT_A_CLIENT' | 'INVALID_FIELD';

export class InvoiceInputError extends Error {
  constructor(
    readonly code: InvoiceInputCode,
    /** The request field at fault (supplierId, items[2].quantity). */
    readonly field: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'InvoiceInputError';
  }
}
