import { InvalidArgumentError, type Command } from 'commander';
import { CliError, printJson, withApp, type WithWiredApp } from '../lib/cli/context.js';
import type { JobRunner } from '../jobs/runtime/runner.js';
import type { JobsRuntime } from '../jobs/runtime/jobs-runtime.js';
import type { RoutesPlugin } from './route-types.js';
import { ApiKeyNameTaken, createApiKey } from './api-keys.js';
import { listApiKeys, revokeApiKey } from './store.js';

// `herald serve` and `herald apikeys`. serve owns its signals: the first
// SIGTERM/SIGINT stops accepting connections and lets requests in flight
// finish; a second one exits at once. Nothing is lost either way: a request
// is either committed (request + job rows) or was never acknowledged.

const FORCE_EXIT_AFTER_MS = 10_000;

function port(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n > 65535) throw new InvalidArgumentError(`--port: must be a whole number from 0 to 65535, got "${value}"`);
  return n;
}

function keyName(value: string): string {
  if (!/^[\w.@:-]{1,100}$/.test(value)) throw new InvalidArgumentError(`NAME: must be 1 to 100 letters, digits or _ . @ : -, got "${value}"`);
  return value;
}

interface ServeOptions {
  host?: string;
  port?: number;
  worker?: boolean;
  json?: boolean;
}

/** What `herald serve` needs from the composition root: the route list and the jobs runtime for --worker. */
export interface ServeWiring {
  jobs: JobsRuntime;
  routes: readonly RoutesPlugin[];
}

export function registerHttpCommands(program: Command, withServeApp: WithWiredApp<ServeWiring>): void {
  program
    .command('serve')
    .description('Serve the HTTP API (OpenAPI document at /openapi.json). Queued invoice requests are run by `herald worker`, or in this process with --worker.')
    .option('--host <address>', 'address to listen on (default: HTTP_HOST, 127.0.0.1)')
    .option('--port <n>', 'port to listen on, 0 for any free port (default: HTTP_PORT, 8080)', port)
    .option('--worker', 'also run queued jobs in this process (default: only with the embedded database, which one process owns)')
    .option('--no-worker', 'never run jobs here, even with the embedded database')
    .option('--json', 'print {"url": ...} as JSON once listening')
    .addHelpText('after', '\nStops on SIGTERM or Ctrl-C after requests in flight finish; a second signal exits at once.\n')
    .action(async (opts: ServeOptions) => serve(opts, withServeApp));

  const keys = program.command('apikeys').description('Manage API keys for the HTTP API (only a SHA-256 of each key is stored)');
  keys
    .command('create')
    .description('Create an API key and print it once (it cannot be shown again)')
    .argument('<name>', 'a unique name for the key, e.g. the client system', keyName)
    .option('--json', 'print {id, name, key} as JSON')
    .action(async (name: string, opts: { json?: boolean }) => {
      const created = await withApp(({ db }) =>
        createApiKey(db, name).catch((err: unknown) => {
          if (err instanceof ApiKeyNameTaken) throw new CliError(`NAME: ${err.message}; pick another name or revoke it first`);
          throw err;
        }),
      );
      if (opts.json) printJson({ id: created.id, name: created.name, key: created.key });
      else process.stdout.write(`${created.key}\n`);
      if (!opts.json && process.stderr.isTTY) process.stderr.write(`API key "${name}" created (id ${created.id}); store it now, it is not shown again.\n`);
    });
  keys
    .command('list')
    .description('List API keys (name, prefix, created, revoked); never the keys themselves')
    .option('--json', 'print as JSON')
    .action(async (opts: { json?: boolean }) => {
      const rows = await withApp(({ db }) => listApiKeys(db));
      const out = rows.map((r) => ({ id: r.id, name: r.name, prefix: r.key_prefix, createdAt: r.created_at, revokedAt: r.revoked_at }));
      if (opts.json) return printJson(out);
      for (const r of out) process.stdout.write(`${r.id}\t${r.name}\t${r.prefix}…\t${r.revokedAt ? 'revoked' : 'active'}\n`);
    });
  keys
    .command('revoke')
    .description('Revoke an API key by name (servers stop accepting it within 30 s)')
    .argument('<name>', 'the key name', keyName)
    .option('--json', 'print the revoked key as JSON')
    .action(async (name: string, opts: { json?: boolean }) => {
      const row = await withApp(({ db }) => revokeApiKey(db, name));
      if (!row) throw new CliError(`NAME: no active API key named "${name}"`);
      if (opts.json) printJson({ id: row.id, name: row.name, revokedAt: row.revoked_at });
      else process.stdout.write(`revoked API key "${name}"\n`);
    });
}

async function serve(opts: ServeOptions, withServeApp: WithWiredApp<ServeWiring>): Promise<void> {
  await withServeApp(async ({ config, db, embedded, log, jobs, routes }) => {
    const { requireCurrentSchema } = await import('../db/migrate.js');
    await requireCurrentSchema(db);
    // fastify and the route modules load only for `serve`.
    const { buildServer } = await import('./server.js');
    const app = await buildServer({ db, config, log, plugins: routes });
    let runner: JobRunner | undefined;
    if (opts.worker ?? embedded) {
      runner = jobs.createRunner(db, { concurrency: embedded ? 1 : config.JOBS_CONCURRENCY });
      await runner.start();
    }
    let url: string;
    try {
      url = await app.listen({ host: opts.host ?? config.HTTP_HOST, port: opts.port ?? config.HTTP_PORT });
    } catch (err) {
      await Promise.all([app.close(), runner?.stop({ graceMs: 0 })]);
      if ((err as { code?: string }).code === 'EADDRINUSE') throw new CliError(`--port: ${opts.port ?? config.HTTP_PORT} is in use; pick another (0: any free port)`, 2);
      throw err;
    }
    if (opts.json) printJson({ url, openapi: `${url}/openapi.json`, worker: Boolean(runner) });
    else process.stdout.write(`listening on ${url} (OpenAPI: ${url}/openapi.json${runner ? '; running jobs in this process' : ''})\n`);
    await new Promise<void>((resolve) => {
      const onSignal = (signal: NodeJS.Signals) => {
        log.info({ signal }, `${signal}: closing the HTTP server after requests in flight (send it again to exit now)`);
        process.off('SIGTERM', onSignal).off('SIGINT', onSignal);
        process.once('SIGTERM', () => process.exit(1)).once('SIGINT', () => process.exit(1));
        setTimeout(() => process.exit(1), FORCE_EXIT_AFTER_MS).unref();
        Promise.all([app.close(), runner?.stop()]).then(() => resolve(), () => resolve());
      };
      process.on('SIGTERM', onSignal).on('SIGINT', onSignal);
    });
  });
}
