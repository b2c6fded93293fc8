// The one catalogue of HTTP errors Herald answers with. Every error body is
//   { "statusCode": 400, "code": "VALIDATION_FAILED", "message": "items[0].quantity: must be ...", "field": "items[0].quantity" }
// plus code-specific members (status, supplierIds, errors). A 5xx body never
// carries a stack or a driver message: those go to the log, keyed by the
// request id that the body quotes.

import { z } from 'zod';

export const HTTP_ERRORS = {
  VALIDATION_FAILED: { status: 400, message: 'the request has an invalid field' },
  INVALID_BODY: { status: 400, message: 'the request body is not valid JSON' },
  BAD_URL: { status: 400, message: 'the URL is malformed' },
  BAD_REQUEST: { status: 400, message: 'the HTTP request is malformed' },
  UNAUTHORIZED: { status: 401, message: 'missing or unknown API key: send Authorization: Bearer <key>' },
  FORBIDDEN_ORIGIN: { status: 403, message: 'form posts are accepted from this site only' },
  CSRF_REJECTED: { status: 403, message: '_csrf: the form is stale or was not made by this site; reload the page and try again' },
  NOT_FOUND: { status: 404, message: 'no such resource' },
  ROUTE_NOT_FOUND: { status: 404, message: 'no such route' },
  INVOICE_NOT_READY: { status: 409, message: 'the invoice request has not completed' },
  AMBIGUOUS_INVOICE_NUMBER: { status: 409, message: 'several suppliers have this invoice number: add ?supplierId=' },
  REPORT_NOT_READY: { status: 409, message: 'only a SUCCESS report has a file to download' },
  NUMBERING_EXHAUSTED: { status: 409, message: 'the supplier has no invoice numbers left' },
  REQUEST_TIMEOUT: { status: 408, message: 'the request took too long to arrive' },
  PAYLOAD_TOO_LARGE: { status: 413, message: 'the request body is too large' },
  URI_TOO_LONG: { status: 414, message: 'url: a path segment is too long' },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, message: 'send Content-Type: application/json' },
  HEADERS_TOO_LARGE: { status: 431, message: 'the request headers are too large' },
  UNKNOWN_PARTY: { status: 422, message: 'the request names a party that does not exist' },
  WRONG_PARTY_ROLE: { status: 422, message: 'the request names a party in the wrong role' },
  IDEMPOTENCY_KEY_REUSED: { status: 422, message: 'Idempotency-Key was already used with a different body' },
  INTERNAL: { status: 500, message: 'internal error' },
  UNAVAILABLE: { status: 503, message: 'a backing service is unavailable; retry later' },
} as const satisfies Record<string, { status: number; message: string }>;

export type HttpErrorCode = keyof typeof HTTP_ERRORS;

/** The error body as route schemas declare it (OpenAPI): the catalogue shape, extra members allowed. */
export const errorBody = z
  .object({ statusCode: z.int(), code: z.string(), message: z.string(), field: z.string().optional() })
  .loose();

export interface HttpErrorExtra {
  /** The request field at fault, as the client wrote it (items[0].quantity, idempotency-key). */
  field?: string;
  [member: string]: unknown;
}

export class HttpError extends Error {
  readonly statusCode: number;
  constructor(
    readonly code: HttpErrorCode,
    message: string = HTTP_ERRORS[code].message,
    readonly extra: HttpErrorExtra = {},
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'HttpError';
    this.statusCode = HTTP_ERRORS[code].status;
  }

  toBody(): Record<string, unknown> {
    return { statusCode: this.statusCode, code: this.code, message: this.message, ...this.extra };
  }
}

export function httpError(code: HttpErrorCode, message?: string, extra?: HttpErrorExtra): HttpError {
  return new HttpError(code, message, extra);
}

/** A zod issue path as a client would write it: items[0].quantity. */
export function formatFieldPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else out += out ? `.${String(part)}` : String(part);
  }
  return out;
}
