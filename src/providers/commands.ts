import type { Command } from 'commander';
import type { Knex } from 'knex';
import { parseWholeNumber } from '../lib/cli/args.js';
import { CliError, printJson, withApp } from '../lib/cli/context.js';
import type { Config } from '../config.js';
import { getParty } from '../invoices/store.js';
import { findInvoiceByRef, InvoiceLookupError } from '../invoices/lookup.js';
import {
  getAttachment, reopenDocument, upsertSupplierProvider, type ProviderDocument, type ProviderKind,
} from './store.js';
import type { ProviderServices } from './services.js';
import { registerWebhookCommands } from './webhook-commands.js';

// `herald pac ...`: the operator's side of provider submission. Commands
// only write rows (and enqueue jobs); a running `herald worker` does the rest.
// An invoice is named by its number (ACME-000003) or id (src/invoices/lookup.ts).
// The provider clients (undici, the AWS SDK) load only in the commands that
// call them.

/** The operation's refusal (or a name that finds no invoice) as the command's one-line error. */
async function refused<T>(work: Promise<T>): Promise<T> {
  try {
    return await work;
  } catch (err) {
    const { OperationRefused } = await import('./operations.js');
    if (err instanceof OperationRefused || err instanceof InvoiceLookupError) throw new CliError(`INVOICE: ${err.message}`);
    throw err;
  }
}

/** The provider services for one command's run, closed after it. */
async function withProviderServices<T>(config: Config, fn: (services: ProviderServices) => Promise<T>): Promise<T> {
  const { createProviderServices } = await import('./services.js');
  const services = createProviderServices(config);
  try {
    return await fn(services);
  } finally {
    services.close();
  }
}

async function documentOf(db: Knex, invoiceId: number): Promise<ProviderDocument> {
  const { documentOfInvoice } = await import('./operations.js');
  return refused(documentOfInvoice(db, invoiceId));
}

/** The id of the invoice an operator named. */
async function invoiceId(db: Knex, ref: string, supplier: string | undefined): Promise<number> {
  const supplierId = supplier === undefined ? undefined : parseWholeNumber('--supplier', supplier);
  return (await refused(findInvoiceByRef(db, ref, supplierId))).id;
}

const INVOICE_ARG = 'invoice number (e.g. ACME-000042) or invoice id';
const SUPPLIER_OPTION = ['--supplier <id>', 'supplier id, when several suppliers use the invoice number'] as const;

function show(doc: ProviderDocument): string {
  return [
    `invoice ${doc.invoice_id}: ${doc.status}, legal status ${doc.legal_status ?? '-'}`,
    doc.provider_document_id ? `provider document ${doc.provider_document_id}${doc.cufe ? `, CUFE ${doc.cufe}` : ''}` : null,
    doc.last_error ? `last error (${doc.error_kind}): ${doc.last_error}\nnext step: ${doc.next_step}` : null,
    doc.needs_attention_at ? `needs attention since ${doc.needs_attention_at.toISOString()}` : null,
  ].filter(Boolean).join('\n');
}

export function registerProviderCommands(program: Command): void {
  registerWebhookCommands(program);
  const pac = program.command('pac').description('E-invoicing provider submissions: status, PDF re-fetch, re-polling, supplier settings');

  pac
    .command('set-provider')
    .description('Choose the e-invoicing provider of a supplier (applies to invoices issued from now on)')
    .argument('<supplier>', 'supplier party id')
    .requiredOption('--kind <kind>', 'pac or invoicing_api')
    .requiredOption('--company-id <id>', "the supplier's company id at the provider (PAC idCompany)")
    .option('--credentials-ref <ref>', "'default' (PROVIDER_*_TOKEN) or a key of PROVIDER_CREDENTIALS", 'default')
    .option('--json', 'print the settings as JSON')
    .action(async (supplier: string, opts: { kind: string; companyId: string; credentialsRef: string; json?: boolean }) => {
      const id = parseWholeNumber('SUPPLIER', supplier);
      if (opts.kind !== 'pac' && opts.kind !== 'invoicing_api') throw new CliError(`--kind: must be pac or invoicing_api, got "${opts.kind}"`);
      if (!opts.companyId.trim()) throw new CliError('--company-id: must not be empty');
      if (!opts.credentialsRef.trim()) throw new CliError('--credentials-ref: must not be empty');
      const row = await withApp(async ({ db }) => {
        const party = await getParty(db, id);
        if (!party || party.role !== 'supplier') throw new CliError(`SUPPLIER: ${id} is not a supplier`);
        return upsertSupplierProvider(db, { supplier_party_id: id, provider_kind: opts.kind as ProviderKind, company_id: opts.companyId, credentials_ref: opts.credentialsRef });
      });
      if (opts.json) printJson(row);
      else process.stdout.write(`supplier ${id} submits to ${row.provider_kind} as company ${row.company_id}\n`);
    });

  pac
    .command('status')
    .description("Show an invoice's provider submission: status, legal status, last error with its next step")
    .argument('<invoice>', INVOICE_ARG)
    .option(...SUPPLIER_OPTION)
    .option('--json', 'print the document row as JSON')
    .action(async (invoice: string, opts: { supplier?: string; json?: boolean }) => {
      const { doc, pdf } = await withApp(async ({ db }) => {
        const id = await invoiceId(db, invoice, opts.supplier);
        return { doc: await documentOf(db, id), pdf: await getAttachment(db, id) };
      });
      if (opts.json) printJson({ ...doc, pdf });
      else process.stdout.write(`${show(doc)}\n${pdf ? `PDF ${pdf.key} sha256 ${pdf.sha256}` : 'no PDF filed'}\n`);
    });

  pac
    .command('attach-pdf')
    .description("Fetch the authority's PDF again (a fresh URL from the PAC), store it in S3 and record its checksum")
    .argument('<invoice>', INVOICE_ARG)
    .option(...SUPPLIER_OPTION)
    .option('--json', 'print the attachment as JSON')
    .action(async (invoice: string, opts: { supplier?: string; json?: boolean }) => {
      const { refetchPdf } = await import('./operations.js');
      const { id, result } = await withApp(async ({ db, config }) => {
        const found = await invoiceId(db, invoice, opts.supplier);
        return { id: found, result: await withProviderServices(config, (services) => refused(refetchPdf(db, services, found))) };
      });
      if (opts.json) printJson(result.attachment);
      else process.stdout.write(`invoice ${id}: PDF stored at ${result.attachment.key}, sha256 ${result.attachment.sha256}\n`);
    });

  pac
    .command('repoll')
    .description('Start a new round of status polling (PROVIDER_POLL_ATTEMPTS polls) and clear the attention mark')
    .argument('<invoice>', INVOICE_ARG)
    .option(...SUPPLIER_OPTION)
    .option('--json', 'print the document row as JSON')
    .action(async (invoice: string, opts: { supplier?: string; json?: boolean }) => {
      const { repollInvoice } = await import('./operations.js');
      const doc = await withApp(async ({ db, config }) => {
        const found = await invoiceId(db, invoice, opts.supplier);
        return withProviderServices(config, (services) => refused(repollInvoice(db, services, found)));
      });
      if (opts.json) printJson(doc);
      else process.stdout.write(`invoice ${doc.invoice_id}: polling restarted (round ${doc.poll_generation})\n`);
    });

  pac
    .command('resubmit')
    .description('Put a failed submission back in the queue (same idempotency key) after fixing its cause')
    .argument('<invoice>', INVOICE_ARG)
    .option(...SUPPLIER_OPTION)
    .option('--json', 'print the document row as JSON')
    .action(async (invoice: string, opts: { supplier?: string; json?: boolean }) => {
      const { enqueueJob } = await import('../jobs/store/enqueue.js');
      const doc = await withApp(async ({ db }) => {
        const id = await invoiceId(db, invoice, opts.supplier);
        return db.transaction(async (trx) => {
          const d = await documentOf(trx as unknown as Knex, id);
          const moved = await reopenDocument(trx, d.id);
          if (!moved) throw new CliError(`INVOICE: invoice ${id} is ${d.status}; only a failed submission can be resubmitted`);
          await enqueueJob(trx, 'provider-submit', { documentId: d.id }, { subjectType: 'invoice', subjectId: id, dedupeKey: `provider-submit:${d.id}:${Date.now()}` });
          return moved;
        });
      });
      if (opts.json) printJson(doc);
      else process.stdout.write(`invoice ${doc.invoice_id}: queued for submission again\n`);
    });
}
