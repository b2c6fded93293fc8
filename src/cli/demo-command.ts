import path from 'node:path';
import type { Command } from 'commander';

// `herald demo`'s definition; what it runs (src/cli/demo.ts) loads with it.
export function registerDemoCommand(program: Command): void {
  program
    .command('demo')
    .description(
      'Run the main job end to end: import the sample workbaskets, export them as TARIC3 envelopes, put them in S3 and notify HMRC. ' +
        'Needs no servers: embedded database, inline jobs, local S3 and HMRC stand-ins unless DATABASE_URL, REDIS_URL, S3_* or HMRC_* say otherwise.',
    )
    .option('--dir <dir>', 'where the demo keeps its embedded database, S3 objects and logs', '.herald/demo')
    .option('--json', 'print the result as JSON')
    .action(async (opts: { dir: string; json?: boolean }) => (await import('./demo.js')).runDemo(path.resolve(opts.dir), opts.json ?? false));
}
