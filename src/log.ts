import pino, { type Logger } from 'pino';

export type { Logger };

// Logs go to stderr so that --json output on stdout stays machine-readable.
// Errors are logged as {type, message, code}: a stack in every warning buries
// the message on a terminal and in the journal. LOG_LEVEL=debug (or trace)
// keeps the stacks for whoever is chasing a bug.
export function createLogger(level: string): Logger {
  const withStacks = level === 'debug' || level === 'trace';
  return pino(
    { level, base: { pid: process.pid }, serializers: withStacks ? {} : { err: briefError } },
    pino.destination(2),
  );
}

function briefError(err: unknown): unknown {
  if (!(err instanceof Error)) return err;
  const e = err as Error & { code?: unknown };
  return { type: e.name, message: e.message, ...(e.code !== undefined && { code: e.code }) };
}
