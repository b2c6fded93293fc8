import { ConfigError, loadConfig, type Config } from '../config.js';
import { printJson } from '../lib/cli/context.js';
import { createLogger } from '../log.js';
import { runChecks, type Check, type CheckResult } from './check.js';
import { hmrcCheck } from './checks/hmrc.js';
import { postgresCheck } from './checks/postgres.js';
import { providersCheck } from './checks/providers.js';
import { redisCheck } from './checks/redis.js';
import { s3Check } from './checks/s3.js';
import { smtpCheck } from './checks/smtp.js';
import { xsdCheck } from './checks/xsd.js';

/** `herald doctor`'s options (commands.ts parses them; this module, loaded on use, runs the checks). */
export interface DoctorOptions {
  workers: number;
  servers: number;
  timeout: number;
  json?: boolean;
}

// `herald doctor`: the configuration first (every bad setting listed); with
// a valid one, every service check side by side, each under --timeout.

export const CHECKS: readonly Check[] = [postgresCheck, redisCheck, s3Check, hmrcCheck, providersCheck, smtpCheck, xsdCheck];

/** What each check reports on when the configuration is invalid: they cannot run. */
const CHECK_NAMES = ['postgres', 'migrations', 'connections', 'redis', 's3', 'hmrc', 'provider-pac', 'provider-invoicing', 'smtp', 'xsd-validator'];

function configCheck(env: NodeJS.ProcessEnv): { config?: Config; result: CheckResult } {
  const started = Date.now();
  try {
    const config = loadConfig(env);
    const set = Object.keys(env).filter((k) => k in config && env[k]).length;
    return { config, result: { name: 'configuration', status: 'ok', detail: `valid (${set} settings from the environment, defaults for the rest)`, ms: Date.now() - started } };
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    return { result: { name: 'configuration', status: 'fail', detail: err.problems.join('; '), fix: 'fix these settings (README: Configuration)', ms: Date.now() - started } };
  }
}

export async function doctor(opts: Pick<DoctorOptions, 'workers' | 'servers' | 'timeout'>, env: NodeJS.ProcessEnv = process.env): Promise<CheckResult[]> {
  const { config, result } = configCheck(env);
  if (!config) return [result, ...CHECK_NAMES.map((name) => ({ name, status: 'skip' as const, detail: 'the configuration is invalid', ms: 0 }))];
  const log = createLogger(config.LOG_LEVEL);
  return [result, ...(await runChecks(CHECKS, { config, log, timeoutMs: opts.timeout, workers: opts.workers, servers: opts.servers }))];
}

export function formatResults(results: readonly CheckResult[]): string {
  const width = Math.max(...results.map((r) => r.name.length));
  const lines = results.map((r) => {
    const row = `${r.status.toUpperCase().padEnd(4)}  ${r.name.padEnd(width)}  ${r.detail}`;
    return r.fix && r.status !== 'ok' ? `${row}\n${' '.repeat(width + 8)}fix: ${r.fix}` : row;
  });
  const failed = results.filter((r) => r.status === 'fail').length;
  lines.push(failed ? `\n${failed} check(s) failed` : '\nno problems found');
  return `${lines.join('\n')}\n`;
}

export async function runDoctor(opts: DoctorOptions): Promise<void> {
  const results = await doctor(opts);
  const failed = results.some((r) => r.status === 'fail');
  if (opts.json) printJson({ ok: !failed, checks: results });
  else process.stdout.write(formatResults(results));
  if (failed) process.exitCode = 1;
}
