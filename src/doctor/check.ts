import type { Config } from '../config.js';
import type { Logger } from '../log.js';
import { connectionFailure, type Endpoint } from '../lib/connection-failure.js';

// What a check is and what it reports. Every check gets the configuration
// and a deadline (its signal aborts when the deadline passes); runChecks
// turns a check that overstays into a FAIL of its own, so one dead service
// cannot hang the doctor.

export type CheckStatus = 'ok' | 'fail' | 'skip';

export interface CheckResult {
  /** Short and stable (scripts read --json): postgres, migrations, redis... */
  name: string;
  status: CheckStatus;
  /** What was found: version, counts, the failure. */
  detail: string;
  /** What to do, for a FAIL (and a SKIP that production should not have). */
  fix?: string;
  ms: number;
}

export interface CheckContext {
  config: Config;
  log: Logger;
  /** Aborted when the check's time is up. */
  signal: AbortSignal;
  timeoutMs: number;
  /** `herald worker` processes that will run (--workers). */
  workers: number;
  /** `herald serve` processes that will run (--servers). */
  servers: number;
}

export type Outcome = Omit<CheckResult, 'ms' | 'name'> & { name?: string };

export interface Check {
  /** The name its results carry unless they name themselves. */
  name: string;
  /** One result, or several (the Postgres check also reports migrations and connections). */
  run(ctx: CheckContext): Promise<Outcome | Outcome[]>;
}

export const ok = (detail: string): Outcome => ({ status: 'ok', detail });
export const skip = (detail: string, fix?: string): Outcome => ({ status: 'skip', detail, ...(fix && { fix }) });
export const fail = (detail: string, fix: string): Outcome => ({ status: 'fail', detail, fix });

/** A FAIL for an error: a connection failure in its parts, anything else by its first line. */
export function failed(err: unknown, endpoint: Endpoint | undefined, fallbackFix: string): Outcome {
  const f = connectionFailure(err, endpoint ? [endpoint] : []);
  if (f) return fail(`${f.where ? `${f.where}: ` : ''}${f.reason}`, f.fix);
  const e = err as { message?: unknown; nextStep?: unknown };
  const message = String(e?.message ?? err).split('\n')[0]!;
  return fail(message, typeof e?.nextStep === 'string' ? e.nextStep : fallbackFix);
}

/** Runs the checks side by side, each under its own deadline; results in the checks' order. */
export async function runChecks(checks: readonly Check[], base: Omit<CheckContext, 'signal'>): Promise<CheckResult[]> {
  const results = await Promise.all(
    checks.map(async (check) => {
      const started = Date.now();
      const controller = new AbortController();
      let timer: NodeJS.Timeout | undefined;
      const overdue = new Promise<Outcome>((resolve) => {
        timer = setTimeout(() => {
          controller.abort(new Error(`no answer within ${base.timeoutMs} ms`));
          resolve(fail(`no answer within ${base.timeoutMs} ms`, 'is it running and reachable from here? (--timeout gives it longer)'));
        }, base.timeoutMs);
      });
      let outcome: Outcome | Outcome[];
      try {
        outcome = await Promise.race([check.run({ ...base, signal: controller.signal }), overdue]);
      } catch (err) {
        outcome = failed(err, undefined, 'see the detail');
      } finally {
        clearTimeout(timer);
      }
      const ms = Date.now() - started;
      return (Array.isArray(outcome) ? outcome : [outcome]).map((o) => ({ ...o, name: o.name ?? check.name, ms }));
    }),
  );
  return results.flat();
}
