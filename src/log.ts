import pino, { type Logger } from 'pino';

export type { Logger };

// Logs go to stderr so that --json output on stdout stays machine-readable.
export function createLogger(level: string): Logger {
  return pino({ level, base: { pid: process.pid } }, pino.destination(2));
}
