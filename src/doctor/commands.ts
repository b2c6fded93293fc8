import { InvalidArgumentError, type Command } from 'commander';
import type { DoctorOptions } from './run.js';

// `herald doctor`: checks every setting and service Herald depends on.
// The checks (./checks/*.ts) load the clients they test when it runs; see
// src/doctor/README.md for what each one does.

const MAX_PROCESSES = 1000;

function count(flag: string, min: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!/^[0-9]+$/.test(value) || n < min || n > MAX_PROCESSES) throw new InvalidArgumentError(`${flag}: must be a whole number from ${min} to ${MAX_PROCESSES}, got "${value}"`);
    return n;
  };
}

function millis(value: string): number {
  const n = Number(value);
  if (!/^[0-9]+$/.test(value) || n < 100 || n > 120_000) throw new InvalidArgumentError(`--timeout: must be a whole number of milliseconds from 100 to 120000, got "${value}"`);
  return n;
}

export function registerDoctorCommand(program: Command): void {
  program
    .command('doctor')
    .description(
      'Check the configuration and every service Herald uses: Postgres (reachable, migrations, max_connections), Redis, S3 (bucket and a probe object), ' +
        'the HMRC token endpoint, the e-invoicing providers, SMTP, and the envelope XSD validator (xmllint, or libxml2-wasm). Prints OK / FAIL / SKIP with the fix; exit 1 on any FAIL.',
    )
    .option('--workers <n>', 'how many `herald worker` processes will run (for the max_connections check)', count('--workers', 0), 1)
    .option('--servers <n>', 'how many `herald serve` processes will run (for the max_connections check)', count('--servers', 0), 1)
    .option('--timeout <ms>', 'how long each check may take', millis, 5000)
    .option('--json', 'print the checks as JSON')
    .action(async (opts: DoctorOptions) => (await import('./run.js')).runDoctor(opts));
}
