import { createRequire } from 'node:module';
import type cliProgress from 'cli-progress';

// cli-progress is loaded on the first bar, not with every command's
// registration: piped and --json runs never load it.
const require = createRequire(import.meta.url);

/**
 * A progress bar on stderr when it is a terminal and output is not JSON;
 * null otherwise, so piped and scripted runs stay quiet.
 */
export function progressBar(json: boolean | undefined, unit: string): cliProgress.SingleBar | null {
  if (json || !process.stderr.isTTY) return null;
  const { SingleBar, Presets } = require('cli-progress') as typeof cliProgress;
  return new SingleBar(
    { stream: process.stderr, format: `{bar} {percentage}% | {value}/{total} ${unit}`, hideCursor: true, clearOnComplete: true },
    Presets.shades_classic,
  );
}
