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

/**
 * The supplier has issued its last number (INVOICE_NUMBER_MAX, numbering.ts).
 * Permanent: nothing is written; the routes answer 409 NUMBERING_EXHAUSTED
 * and a queued request becomes FAILED. The way on is a new supplier (a new
 * numbering), which is a business decision, not something to retry.
 */
export class NumberingExhausted extends Error {
  readonly field = 'supplierId';
  constructor(
    readonly supplierId: number,
    readonly nextNumber: number,
  ) {
    super(`numbering exhausted for supplier ${supplierId}: invoice numbers stop at ${Number.MAX_SAFE_INTEGER} (the next would be ${nextNumber}); invoice under a new supplier`);
    this.name = 'NumberingExhausted';
  }
}
