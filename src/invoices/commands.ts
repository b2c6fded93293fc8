import fs from 'node:fs';
import type { Command } from 'commander';
import { parseWholeNumber } from '../lib/cli/args.js';
import { CliError, printJson, withApp } from '../lib/cli/context.js';
import { InvoiceInputError, NumberingExhausted } from './errors.js';
import { insertParty, listParties } from './store.js';

// `herald parties ...` and `herald invoices ...`: the same operations as the
// HTTP API, for operators and the demo. Bad input is one line naming the
// option or field. The schemas (zod) and the money code (decimal.js) are
// imported in the actions: `herald --help` does not need them.

interface PartyOptions {
  role: string;
  name: string;
  taxId?: string;
  vatId?: string;
  address?: string;
  email?: string;
  currency?: string;
  taxRate?: string;
  prefix?: string;
  digits?: string;
  start?: string;
  json?: boolean;
}

// Schema field -> the option that sets it, so errors name what the user typed.
const PARTY_OPTION: Record<string, string> = {
  role: '--role', name: '--name', taxId: '--tax-id', vatId: '--vat-id', address: '--address', email: '--email',
  currency: '--currency', defaultTaxRate: '--tax-rate', invoicePrefix: '--prefix', invoiceDigits: '--digits', invoiceStartNumber: '--start',
};

const int = (v: string | undefined) => (v === undefined ? undefined : /^\d+$/.test(v) ? Number(v) : v);

export function registerInvoiceCommands(program: Command): void {
  const parties = program.command('parties').description('Suppliers (who invoice, with their numbering) and clients (who are invoiced)');
  parties
    .command('create')
    .description('Create a supplier or client')
    .requiredOption('--role <role>', 'supplier or client')
    .requiredOption('--name <name>', 'legal name')
    .option('--tax-id <id>', 'tax id')
    .option('--vat-id <id>', 'VAT id')
    .option('--address <text>', 'postal address')
    .option('--email <address>', 'billing email')
    .option('--currency <code>', 'ISO 4217 currency (default EUR)')
    .option('--tax-rate <percent>', 'default tax rate for lines without one (default 0)')
    .option('--prefix <text>', 'supplier: invoice number prefix (default none)')
    .option('--digits <n>', 'supplier: digits the number is zero-padded to (default 6)')
    .option('--start <n>', 'supplier: first invoice number (default 1)')
    .option('--json', 'print the party as JSON')
    .action(async (o: PartyOptions) => {
      const [{ createPartyRequest, describeFirstIssue }, { toPartyResponse }] = await Promise.all([import('./schemas.js'), import('./present.js')]);
      const parsed = createPartyRequest.safeParse({
        role: o.role, name: o.name, taxId: o.taxId, vatId: o.vatId, address: o.address, email: o.email, currency: o.currency,
        defaultTaxRate: o.taxRate, invoicePrefix: o.prefix, invoiceDigits: int(o.digits), invoiceStartNumber: int(o.start),
      });
      if (!parsed.success) {
        const { field, message } = describeFirstIssue(parsed.error);
        throw new CliError(`${PARTY_OPTION[field] ?? field}${message.slice(field.length)}`, 2);
      }
      const b = parsed.data;
      const row = await withApp(({ db }) =>
        insertParty(db, {
          role: b.role, name: b.name, tax_id: b.taxId ?? null, vat_id: b.vatId ?? null, address: b.address ?? '', email: b.email ?? null,
          ...(b.currency && { currency: b.currency }),
          ...(b.defaultTaxRate && { default_tax_rate: b.defaultTaxRate }),
          ...(b.invoicePrefix !== undefined && { invoice_prefix: b.invoicePrefix }),
          ...(b.invoiceDigits && { invoice_digits: b.invoiceDigits }),
          ...(b.invoiceStartNumber && { invoice_start_number: b.invoiceStartNumber }),
        }),
      );
      if (o.json) printJson(toPartyResponse(row));
      else process.stdout.write(`created ${row.role} ${row.id}: ${row.name}\n`);
    });
  parties
    .command('list')
    .description('List parties (first 500 by id)')
    .option('--role <role>', 'only suppliers or only clients')
    .option('--json', 'print as JSON')
    .action(async (o: { role?: string; json?: boolean }) => {
      if (o.role !== undefined && o.role !== 'supplier' && o.role !== 'client') throw new CliError(`--role: must be "supplier" or "client", got "${o.role}"`, 2);
      const { toPartyResponse } = await import('./present.js');
      const rows = await withApp(({ db }) => listParties(db, { role: o.role as 'supplier' | 'client' | undefined, limit: 500 }));
      if (o.json) return printJson(rows.map(toPartyResponse));
      for (const p of rows) {
        const numbering = p.role === 'supplier' ? `\tlast number ${p.last_invoice_number}` : '';
        process.stdout.write(`${p.id}\t${p.role}\t${p.name}\t${p.currency}${numbering}\n`);
      }
    });

  const invoices = program.command('invoices').description('Generate and look up invoices; see the invoice-request queue');
  invoices
    .command('generate')
    .description('Generate an invoice now from a GenerateInvoiceRequest JSON file (as POST /api/v1/invoices/generate)')
    .requiredOption('--file <path>', 'the request body, e.g. fixtures/invoices/generate-request.json ("-" for stdin)')
    .option('--json', 'print the InvoiceResponse as JSON')
    .action(async (o: { file: string; json?: boolean }) => {
      let body: unknown;
      try {
        body = JSON.parse(fs.readFileSync(o.file === '-' ? 0 : o.file, 'utf8'));
      } catch (err) {
        throw new CliError(`--file: cannot read JSON from ${o.file}: ${(err as Error).message}`, 2);
      }
      const [{ generateInvoiceRequest, describeFirstIssue }, { generateInvoice }, { loadInvoiceResponse }] = await Promise.all([
        import('./schemas.js'), import('./generate.js'), import('./present.js'),
      ]);
      const parsed = generateInvoiceRequest.safeParse(body);
      if (!parsed.success) throw new CliError(`--file: ${describeFirstIssue(parsed.error).message}`, 2);
      const invoice = await withApp(async ({ db }) => {
        try {
          const made = await generateInvoice(db, parsed.data);
          return (await loadInvoiceResponse(db, made.id))!;
        } catch (err) {
          if (err instanceof InvoiceInputError) throw new CliError(`--file: ${err.message}`, 2);
          if (err instanceof NumberingExhausted) throw new CliError(err.message);
          throw err;
        }
      });
      if (o.json) printJson(invoice);
      else process.stdout.write(`invoice ${invoice.invoiceNumber} (id ${invoice.id}): ${invoice.currency} ${invoice.total}\n`);
    });
  invoices
    .command('show')
    .description('Show an invoice by number (or id)')
    .argument('<invoice>', 'the invoice number, e.g. INV-000042, or the invoice id')
    .option('--supplier <id>', 'supplier id, when several suppliers use the number')
    .option('--json', 'print the InvoiceResponse as JSON')
    .action(async (ref: string, o: { supplier?: string; json?: boolean }) => {
      const supplierId = o.supplier === undefined ? undefined : parseWholeNumber('--supplier', o.supplier);
      const [{ loadInvoiceResponse }, { findInvoiceByRef, InvoiceLookupError }] = await Promise.all([import('./present.js'), import('./lookup.js')]);
      const invoice = await withApp(async ({ db }) => {
        const found = await findInvoiceByRef(db, ref, supplierId).catch((err: unknown) => {
          throw err instanceof InvoiceLookupError ? new CliError(err.message) : err;
        });
        return (await loadInvoiceResponse(db, found.id))!;
      });
      if (o.json) return printJson(invoice);
      process.stdout.write(`${invoice.invoiceNumber}  ${invoice.issueDate} (due ${invoice.dueDate})  ${invoice.supplier.name} -> ${invoice.client.name}\n`);
      for (const i of invoice.items) process.stdout.write(`  ${i.lineNumber}. ${i.description}  ${i.quantity} x ${i.unitPrice} - ${i.discount} + ${i.taxRate}% = ${i.total}\n`);
      process.stdout.write(`  subtotal ${invoice.subtotal}  tax ${invoice.taxTotal}  total ${invoice.currency} ${invoice.total}\n`);
    });
  invoices
    .command('requests')
    .description('Count invoice requests by status (PENDING, PROCESSING, COMPLETED, FAILED)')
    .option('--json', 'print as JSON')
    .action(async (o: { json?: boolean }) => {
      const { countInvoiceRequestsByStatus } = await import('./request-store.js');
      const counts = await withApp(({ db }) => countInvoiceRequestsByStatus(db));
      if (o.json) return printJson(counts);
      process.stdout.write(`${Object.entries(counts).map(([k, v]) => `${k.toUpperCase()} ${v}`).join('  ')}\n`);
    });
}
