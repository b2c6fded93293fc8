import { Command } from 'commander';
import { reportFatal, withApp, printJson } from '../lib/cli/context.js';
import { packageVersion } from '../lib/package-root.js';
import { registerCommands } from './commands.js';

// Start-up stays cheap: every command's name, options and help are
// registered here without loading what it runs (knex, the AWS SDK,
// fastify...); each action imports its code when it runs. See
// docs/decisions/0004-lazy-command-loading.md and `npm run bench:cli`.

const program = new Command('herald')
  .description('Delivers TARIC3 envelopes, e-invoices and reports to authorities; never loses, duplicates or mis-numbers one.')
  .version(packageVersion(), '-V, --version', 'print the version')
  .showHelpAfterError()
  .configureHelp({ sortSubcommands: true });

program
  .command('migrate')
  .description('Bring the database schema up to date (DATABASE_URL, or the embedded database)')
  .option('--json', 'print the applied migrations as JSON')
  .action(async (opts: { json?: boolean }) => {
    const { migrateLatest } = await import('../db/migrate.js');
    const applied = await withApp(async ({ db }) => migrateLatest(db), { migrate: false });
    if (opts.json) printJson({ applied });
    else process.stdout.write(applied.length ? `applied: ${applied.join(', ')}\n` : 'database is up to date\n');
  });

registerCommands(program);

try {
  await program.parseAsync(process.argv);
} catch (err) {
  process.exitCode = reportFatal(err);
}
