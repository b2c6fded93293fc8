import { Command } from 'commander';
import { reportFatal, withApp, printJson } from '../lib/cli/context.js';
import { migrateLatest } from '../db/migrate.js';
import { registerCommands } from './commands.js';

const program = new Command('herald')
  .description('Delivers TARIC3 envelopes, e-invoices and reports to authorities; never loses, duplicates or mis-numbers one.')
  .showHelpAfterError()
  .configureHelp({ sortSubcommands: true });

program
  .command('migrate')
  .description('Bring the database schema up to date (DATABASE_URL, or the embedded database)')
  .option('--json', 'print the applied migrations as JSON')
  .action(async (opts: { json?: boolean }) => {
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
