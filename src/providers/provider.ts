import type { InvoiceItemRow, InvoiceRow } from '../invoices/store.js';
import type { LegalStatus } from './store.js';

// What the submission and status code needs from a provider, whichever it is.
// Both clients throw only ProviderHttpError / fetch errors; the caller runs
// classifyProviderError, so retry rules stay in one place.

export interface SubmitRequest {
  /** The supplier's company at the provider (PAC idCompany). */
  companyId: string;
  token: string;
  /** Fixed on the document row before any call: every retry repeats it. */
  idempotencyKey: string;
  invoice: InvoiceRow;
  items: InvoiceItemRow[];
}

export interface SubmitResult {
  providerDocumentId: string;
  /** null for providers without a legal-status flow (invoicing API). */
  legalStatus: LegalStatus | null;
  cufe: string | null;
}

export interface DocumentStatus {
  legalStatus: LegalStatus;
  cufe: string | null;
  /** Short-lived: download at once. */
  pdfUrl: string | null;
}

export interface CallOpts {
  signal?: AbortSignal | undefined;
}

export interface ProviderClient {
  readonly name: 'PAC' | 'invoicing API';
  /** Whether the document's legal status is followed after submission (PAC: yes). */
  readonly followsLegalStatus: boolean;
  submit(req: SubmitRequest, opts?: CallOpts): Promise<SubmitResult>;
  /** The document the provider holds under this idempotency key, or null. */
  lookup(req: Pick<SubmitRequest, 'companyId' | 'token' | 'idempotencyKey'>, opts?: CallOpts): Promise<SubmitResult | null>;
  status?(req: { companyId: string; token: string; providerDocumentId: string }, opts?: CallOpts): Promise<DocumentStatus>;
}
