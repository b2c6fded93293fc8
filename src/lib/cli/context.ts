import type { Config } from '../../config.js';
import type { DbHandle } from '../../db/index.js';
import type { Logger } from '../../log.js';
import { configuredEndpoints, describeConnectionFailure, type Endpoint } from '../connection-failure.js';

// What every command gets: validated config, a database (migrated when the
// command asks for it) and a logger. Commands never read process.env.
// This module is loaded by every command's registration (src/*/commands.ts),
// so it imports nothing heavy at the top: config (zod), the database (knex,
// pg) and the logger (pino) load when a command runs, not for `--help`.

export interface AppContext {
  config: Config;
  db: DbHandle['db'];
  embedded: boolean;
  log: Logger;
}

export interface ContextOptions {
  /** Migrate before running (default: only the embedded database). */
  migrate?: boolean;
  env?: NodeJS.ProcessEnv;
  /** Settings on top of the environment's. */
  overrides?: Record<string, string>;
  /** Connections in the pool (default: the database module's). A worker needs its concurrency plus a few. */
  poolMax?: (config: Config) => number;
}

// The services the running command was configured with, so a connection
// failure anywhere below it can be named (reportFatal).
let endpoints: Endpoint[] = [];

export async function withApp<T>(fn: (app: AppContext) => Promise<T>, opts: ContextOptions = {}): Promise<T> {
  const [{ loadConfig }, { openDb }, { migrateLatest }, { createLogger }] = await Promise.all([
    import('../../config.js'),
    import('../../db/index.js'),
    import('../../db/migrate.js'),
    import('../../log.js'),
  ]);
  const config = loadConfig(opts.env, opts.overrides);
  endpoints = configuredEndpoints(config);
  const log = createLogger(config.LOG_LEVEL);
  const handle = await openDb({ databaseUrl: config.DATABASE_URL, dataDir: config.HERALD_DATA_DIR, poolMax: opts.poolMax?.(config), log });
  try {
    // The embedded database is private to this process, so it is always
    // brought up to date; a shared Postgres is migrated by `herald migrate`.
    if (opts.migrate ?? handle.embedded) await migrateLatest(handle.db);
    return await fn({ config, db: handle.db, embedded: handle.embedded, log });
  } finally {
    await handle.close();
  }
}

/**
 * withApp plus what the composition root wires for this context (job runners,
 * services, routes). A command states the part of the wiring it needs as W;
 * the root hands it a WithWiredApp whose wiring has at least that.
 */
export type WithWiredApp<W> = <T>(fn: (app: AppContext & W) => Promise<T>, opts?: ContextOptions) => Promise<T>;

/** wire may load the wiring on demand (the composition root imports every capability). */
export function wiredApp<W extends { close(): void }>(wire: (app: AppContext) => W | Promise<W>): WithWiredApp<W> {
  return (fn, opts) =>
    withApp(async (app) => {
      const wiring = await wire(app);
      try {
        return await fn({ ...app, ...wiring });
      } finally {
        wiring.close();
      }
    }, opts);
}

/** Thrown by commands for expected failures: printed as one line, exit code given. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
    this.name = 'CliError';
  }
}

/** One line (or the configuration's list) on stderr; returns the exit code. HERALD_DEBUG=1 adds the stack. */
export function reportFatal(err: unknown): number {
  const e = err as Error | undefined;
  // By name: importing ConfigError would load the config schema (zod) for every command.
  if (e?.name === 'ConfigError') {
    process.stderr.write(`herald: ${e.message}\n`);
    return 2;
  }
  if (err instanceof CliError) {
    process.stderr.write(`herald: ${err.message}\n`);
    return err.exitCode;
  }
  process.stderr.write(`herald: ${describeFailure(err)}\n`);
  if (process.env.HERALD_DEBUG) process.stderr.write(`${e?.stack ?? ''}\n`);
  return 1;
}

/** One line for an unexpected error: the service it could not reach (named by its setting), else its message's first line. */
export function describeFailure(err: unknown): string {
  return describeConnectionFailure(err, endpoints) ?? String((err as Error | undefined)?.message ?? err).split('\n')[0]!;
}

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}
