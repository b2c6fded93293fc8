import type { Command } from 'commander';
import { parseWholeNumber } from '../lib/cli/args.js';
import { CliError, printJson, withApp } from '../lib/cli/context.js';

// `herald webhooks ...`: a PAC company's own webhook secret (see
// webhook-secrets.ts). The secret is generated here and printed once, or read
// from stdin (never an argument: argv is visible to every user in ps).

const COMPANY_ARG = "the company id at the PAC (idCompany; the {companyId} of the webhook URL)";

function company(value: string): string {
  if (!value.trim() || value.length > 200 || value.includes('\u0000')) throw new CliError('COMPANY: must be 1 to 200 characters (the idCompany the PAC sends)');
  return value;
}

export function registerWebhookCommands(program: Command): void {
  const webhooks = program.command('webhooks').description("Per-company webhook secrets for POST /webhooks/pac/{companyId} (else PROVIDER_WEBHOOK_SECRET)");

  webhooks
    .command('set-secret')
    .description("Set or rotate a company's webhook secret: from then on only it is accepted for the company (not PROVIDER_WEBHOOK_SECRET)")
    .argument('<company>', COMPANY_ARG)
    .option('--secret-stdin', 'read the secret from stdin (at least 16 characters) instead of generating one')
    .option('--keep-old-minutes <n>', 'on rotation, keep accepting the previous secret this many minutes (default 0: replaced at once)', '0')
    .option('--json', 'print the result as JSON (with the generated secret)')
    .addHelpText('after', '\nThe secret is printed once (when generated) and stored only as its SHA-256; give it to the PAC as the webhook secret of this company.\n')
    .action(async (companyArg: string, opts: { secretStdin?: boolean; keepOldMinutes: string; json?: boolean }) => {
      const companyId = company(companyArg);
      const minutes = parseWholeNumber('--keep-old-minutes', opts.keepOldMinutes, { min: 0, max: 7 * 24 * 60 });
      const { generateSecret, MAX_SECRET_LENGTH, MIN_SECRET_LENGTH, setWebhookSecret, toInfo } = await import('./webhook-secrets.js');
      let secret: string;
      let generated = false;
      if (opts.secretStdin) {
        const { readStdinText } = await import('../lib/cli/stdin.js');
        secret = await readStdinText();
        if (secret.length < MIN_SECRET_LENGTH || secret.length > MAX_SECRET_LENGTH) {
          throw new CliError(`--secret-stdin: the secret must be ${MIN_SECRET_LENGTH} to ${MAX_SECRET_LENGTH} characters (got ${secret.length}); or leave the option out to have one generated`);
        }
      } else {
        secret = generateSecret();
        generated = true;
      }
      const row = await withApp(async ({ db }) => setWebhookSecret(db, companyId, secret, minutes * 60_000));
      const info = toInfo(row);
      if (opts.json) printJson({ ...info, ...(generated && { secret }) });
      else {
        process.stdout.write(`company ${companyId}: webhook secret set${info.previousValidUntil ? `; the previous one is accepted until ${info.previousValidUntil.toISOString()}` : ''}\n`);
        if (generated) process.stdout.write(`secret (shown once; configure it at the PAC): ${secret}\n`);
      }
    });

  webhooks
    .command('remove-secret')
    .description("Remove a company's own webhook secret: its webhooks need PROVIDER_WEBHOOK_SECRET again")
    .argument('<company>', COMPANY_ARG)
    .option('--json', 'print the result as JSON')
    .action(async (companyArg: string, opts: { json?: boolean }) => {
      const companyId = company(companyArg);
      const { removeWebhookSecret } = await import('./webhook-secrets.js');
      const removed = await withApp(async ({ db }) => removeWebhookSecret(db, companyId));
      if (!removed) throw new CliError(`COMPANY: ${companyId} has no webhook secret of its own (see herald webhooks list)`);
      if (opts.json) printJson({ companyId, removed });
      else process.stdout.write(`company ${companyId}: own webhook secret removed; PROVIDER_WEBHOOK_SECRET applies\n`);
    });

  webhooks
    .command('list')
    .description('List the companies with a webhook secret of their own (never the secrets)')
    .option('--json', 'print the list as JSON')
    .action(async (opts: { json?: boolean }) => {
      const { listWebhookSecrets, toInfo } = await import('./webhook-secrets.js');
      const rows = (await withApp(async ({ db }) => listWebhookSecrets(db))).map(toInfo);
      if (opts.json) printJson(rows);
      else if (!rows.length) process.stdout.write('no company has its own webhook secret; PROVIDER_WEBHOOK_SECRET applies to all\n');
      else for (const r of rows) process.stdout.write(`${r.companyId}\tset ${r.updatedAt.toISOString()}${r.previousValidUntil ? `\tprevious accepted until ${r.previousValidUntil.toISOString()}` : ''}\n`);
    });
}
