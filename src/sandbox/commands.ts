import path from 'node:path';
import { InvalidArgumentError, type Command } from 'commander';
import { CliError, printJson } from '../lib/cli/context.js';
import { SANDBOXES, SandboxStartError, startSandboxes, DEFAULT_S3_BUCKET, type StartedSandboxes } from './sandboxes.js';
import { EnvFileError, checkEnvFileTarget, formatEnvFile, writeEnvFile } from './env-file.js';

// `herald sandbox`: run every local stand-in until SIGINT/SIGTERM and print
// the settings that point Herald at them. Needs no database.

const FORCE_EXIT_AFTER_MS = 5_000;

interface SandboxCommandOptions {
  json?: boolean;
  host: string;
  dataDir?: string;
  bucket: string;
  writeEnvFile?: string;
  [portOption: string]: unknown;
}

export function registerSandboxCommands(program: Command): void {
  const cmd = program
    .command('sandbox')
    .description('Run the local stand-ins (S3-compatible store, HMRC SDES API) on loopback and print the env settings that point Herald at them')
    .option('--json', 'print URLs and env settings as JSON')
    .option('--host <address>', 'loopback address to listen on', '127.0.0.1')
    .option('--data-dir <dir>', 'where sandbox data is kept (default: HERALD_DATA_DIR, i.e. .herald)')
    .option('--bucket <name>', 'S3 bucket to create', DEFAULT_S3_BUCKET)
    // Not --env-file: node itself claims that flag anywhere on its command
    // line and exits 9 ("not found") before Herald runs when PATH does not exist yet.
    .option('--write-env-file <path>', 'also write the env settings to PATH as KEY=value lines for .env use (mode 0600; replaces a regular file, refuses anything else)');
  for (const def of SANDBOXES) {
    cmd.option(`--${def.name}-port <port>`, `port for the ${def.description} (0: any free port)`, parsePort(`--${def.name}-port`), def.defaultPort);
  }
  cmd.addHelpText('after', '\nStops on Ctrl-C (SIGINT) or SIGTERM. HMRC admin endpoints: GET /__sandbox/requests, POST /__sandbox/faults.\n');
  cmd.action(async (opts: SandboxCommandOptions) => {
    if (!isLoopback(opts.host)) throw new CliError(`--host must be a loopback address (127.x.x.x, ::1 or localhost), got ${opts.host}`, 2);
    const dataDir = path.resolve(opts.dataDir ?? (await import('../config.js')).loadConfig().HERALD_DATA_DIR);
    const envFile = opts.writeEnvFile === undefined ? undefined : path.resolve(opts.writeEnvFile);
    // Checked before anything starts, so a bad path costs no sandbox start-up.
    if (envFile) envFileStep(() => checkEnvFileTarget(envFile), 2);
    const ports = Object.fromEntries(SANDBOXES.map((d) => [d.name, opts[`${camel(d.name)}Port`] as number]));
    const started = await startSandboxes({ host: opts.host, dataDir, ports, s3Bucket: opts.bucket }).catch((err: unknown) => {
      if (err instanceof SandboxStartError && err.code === 'EADDRINUSE') {
        throw new CliError(`--${err.sandbox}-port ${err.port} is in use; pick another port (0: any free port)`, 2);
      }
      throw err;
    });
    if (envFile) {
      try {
        envFileStep(() => writeEnvFile(envFile, formatEnvFile(started.env, ENV_FILE_HEADER)), 1);
      } catch (err) {
        await started.close();
        throw err;
      }
    }
    if (opts.json) printJson({ ...describe(started), ...(envFile ? { envFile } : {}) });
    else printText(started, envFile);
    await untilSignal();
    await started.close();
    if (!opts.json) process.stderr.write('herald sandbox: stopped\n');
  });
}

const ENV_FILE_HEADER = [
  'Written by `herald sandbox`: settings that point Herald at its local stand-ins.',
  'They work while that sandbox runs (same ports: keep its --*-port options).',
];

/** A bad path is a usage error (exit 2); a failed write is a failure (exit 1). */
function envFileStep(fn: () => void, exitCode: number): void {
  try {
    fn();
  } catch (err) {
    if (err instanceof EnvFileError) throw new CliError(`--write-env-file: ${err.message}`, exitCode);
    throw err;
  }
}

function describe(started: StartedSandboxes) {
  return {
    sandboxes: started.list.map((s) => ({ name: s.name, url: s.url, description: s.description })),
    env: started.env,
  };
}

function printText(started: StartedSandboxes, envFile: string | undefined): void {
  const width = Math.max(...started.list.map((s) => s.name.length));
  const lines = [
    'herald sandbox: running (Ctrl-C stops)',
    ...started.list.map((s) => `  ${s.name.padEnd(width)}  ${s.url}  ${s.description}`),
    '',
    '# env settings that point Herald at them:',
    ...Object.entries(started.env).map(([k, v]) => `${k}=${v}`),
    ...(envFile ? ['', `# written to ${envFile}`] : []),
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}

function untilSignal(): Promise<void> {
  return new Promise((resolve) => {
    // One Ctrl-C reaches us more than once (npm and tsx relay it to the
    // process group too), so later signals do not force anything: closing
    // gets a few seconds, then the process ends regardless.
    const stop = () => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      process.on('SIGINT', () => {});
      process.on('SIGTERM', () => {});
      setTimeout(() => process.exit(1), FORCE_EXIT_AFTER_MS).unref();
      resolve();
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
}

function parsePort(flag: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!/^\d+$/.test(value) || n > 65535) throw new InvalidArgumentError(`${flag} must be a port number from 0 to 65535`);
    return n;
  };
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

function camel(name: string): string {
  return name.replace(/-(\w)/g, (_m, c: string) => c.toUpperCase());
}
