import cliProgress from 'cli-progress';

/**
 * A progress bar on stderr when it is a terminal and output is not JSON;
 * null otherwise, so piped and scripted runs stay quiet.
 */
export function progressBar(json: boolean | undefined, unit: string): cliProgress.SingleBar | null {
  if (json || !process.stderr.isTTY) return null;
  return new cliProgress.SingleBar(
    { stream: process.stderr, format: `{bar} {percentage}% | {value}/{total} ${unit}`, hideCursor: true, clearOnComplete: true },
    cliProgress.Presets.shades_classic,
  );
}
