import fs from 'node:fs';
import os from 'node:os';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Command } from 'commander';
import type { Knex } from 'knex';
import { CliError, printJson, type WithWiredApp } from '../lib/cli/context.js';
import { progressBar } from '../lib/cli/progress.js';
import type { JobsRuntime } from '../jobs/runtime/jobs-runtime.js';
import { openReportDownload, ReportFileMissingError } from './download.js';
import { ReportInputError, ReportNotReadyError } from './errors.js';
import type { ReportType } from './report-types.js';
import type { ReportServices } from './services.js';
import { getReport, type ReportRow } from './store.js';

// `herald report create|show|download`. Without REDIS_URL there is no worker
// to hand the generation to, so `create` runs the due jobs in this process
// (the embedded database is private to it anyway) and prints how it ended.
// The report types, params and presentation (zod) are imported when a report
// command runs, not when the commands are registered (`herald --help`).

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const POLL_MS = 500;
/** --wait gives up this long after the deadline: a report still RUNNING then has no worker running its timeout job. */
const WAIT_PAST_DEADLINE_MS = 60_000;

/** Runs fn; a ReportInputError becomes the one-line CLI error naming the field. */
function inputOrExit<T>(fn: () => T): T {
  const fail = (err: unknown): never => {
    if (err instanceof ReportInputError) throw new CliError(err.message);
    throw err;
  };
  try {
    const value = fn();
    return (value instanceof Promise ? value.catch(fail) : value) as T;
  } catch (err) {
    return fail(err);
  }
}

function reportId(value: string): string {
  if (!UUID.test(value)) throw new CliError(`ID: must be a report id (UUID), got "${value}"`);
  return value;
}

const collect = (value: string, previous: string[]) => [...previous, value];

function typesHelp(types: ReadonlyMap<string, ReportType>): string {
  const lines = [...types.values()].map((t) => `  ${t.name.padEnd(9)} ${t.description}`);
  return `\nReport types:\n${lines.join('\n')}\n\nExample:\n  herald report create uploads --param from=2026-01-01 --param to=2026-01-31 --json\n`;
}

interface CreateOptions {
  param: string[];
  wait?: boolean;
  json?: boolean;
}

/** What the report commands need from the composition root. */
export interface ReportWiring {
  jobs: JobsRuntime;
  reports(): ReportServices;
}

export function registerReportCommands(program: Command, withApp: WithWiredApp<ReportWiring>): void {
  const report = program.command('report').description('Ask for reports (uploads, invoices), see how they ended, download their files');

  const create = report
    .command('create')
    .description(
      'Ask for a report. The same request while one is RUNNING (or SUCCESS within REPORTS_REUSE_WINDOW_MS) returns that report. ' +
        'Without REDIS_URL the report is generated in this process before the command returns. Exit 1 if it ended FAIL.',
    )
    .argument('<type>', 'report type (listed below)')
    .option('--param <key=value>', 'a report parameter; repeat for each (see the types below)', collect, [])
    .option('--wait', 'with REDIS_URL: wait until a worker has finished it (shows elapsed time against the timeout on a terminal)')
    .option('--json', 'print the report record as JSON')
    .action(async (type: string, opts: CreateOptions) => {
      const [{ parseReportRequest }, { paramsFromPairs }, { createReport }, { describeReport, toReportResponse }] = await Promise.all([
        import('./report-types.js'), import('./params.js'), import('./create.js'), import('./present.js'),
      ]);
      // Bad input is reported before a database is opened (the embedded one takes seconds to start).
      const params = inputOrExit(() => parseReportRequest(type, paramsFromPairs(opts.param)).params);
      const { report: row, created } = await withApp(async ({ config, db, log, jobs }) => {
        const result = await inputOrExit(() => createReport(db, { type, params, creator: `cli:${os.userInfo().username}` }, { config }));
        if (result.report.status !== 'running') return result;
        const bar = progressBar(opts.json, 's of the timeout');
        const stopBar = showElapsed(bar, result.report);
        try {
          if (!config.REDIS_URL) {
            // Short retries (S3 hiccups) are waited for; the timeout job's own time is not.
            await jobs.runInline(db, { until: 'idle', waitForRetriesMs: 60_000, log });
            return { report: (await getReport(db, result.report.id))!, created: result.created };
          }
          if (opts.wait) return { report: await waitForEnd(db, result.report), created: result.created };
          return result;
        } finally {
          stopBar();
        }
      });
      const shown = toReportResponse(row);
      if (opts.json) printJson({ ...shown, reused: !created });
      else process.stdout.write(`${created ? '' : 'an identical request was already made; its report:\n'}${describeReport(shown)}`);
      if (row.status === 'fail') process.exitCode = 1;
    });

  report
    .command('show')
    .description('Show a report: status, params, times, file or error message')
    .argument('<id>', 'report id (UUID)', reportId)
    .option('--json', 'print the report record as JSON')
    .action(async (id: string, opts: { json?: boolean }) => {
      const { describeReport, toReportResponse } = await import('./present.js');
      const row = await withApp(({ db }) => getReport(db, id));
      if (!row) throw new CliError(`ID: no report ${id}`);
      const shown = toReportResponse(row);
      if (opts.json) printJson(shown);
      else process.stdout.write(describeReport(shown));
    });

  report
    .command('download')
    .description("Save a SUCCESS report's CSV file (exit 1 with its status if it is RUNNING or FAIL)")
    .argument('<id>', 'report id (UUID)', reportId)
    .requiredOption('--out <file>', 'where to write the CSV file (replaced if it exists)')
    .option('--json', 'print {id, file, bytes} as JSON')
    .action(async (id: string, opts: { out: string; json?: boolean }) => {
      const bytes = await withApp(async ({ db, reports }) => download(db, reports(), id, opts));
      if (opts.json) printJson({ id, file: opts.out, bytes });
      else process.stdout.write(`saved ${bytes} bytes to ${opts.out}\n`);
    });

  // The types' list for `report create --help` comes from their definitions,
  // loaded just before a report subcommand (or its help) runs.
  report.hook('preSubcommand', async () => {
    const { REPORT_TYPES } = await import('./report-types.js');
    create.addHelpText('after', typesHelp(REPORT_TYPES));
  });
}

async function download(db: Knex, services: ReportServices, id: string, opts: { out: string; json?: boolean }): Promise<number> {
  let found;
  try {
    found = await openReportDownload(db, services, id);
  } catch (err) {
    if (err instanceof ReportNotReadyError) throw new CliError(`${err.message}${err.errorMessage ? ` (${err.errorMessage})` : ''}`);
    if (err instanceof ReportFileMissingError) throw new CliError(err.message);
    throw err;
  }
  if (!found) throw new CliError(`ID: no report ${id}`);
  const bar = progressBar(opts.json, 'bytes');
  bar?.start(found.size, 0);
  let written = 0;
  const count = new Transform({
    transform(chunk: Buffer, _enc, done) {
      written += chunk.length;
      bar?.update(written);
      done(null, chunk);
    },
  });
  const partial = `${opts.out}.part`;
  try {
    await pipeline(found.stream, count, fs.createWriteStream(partial));
    // Renamed only when complete: --out never holds half a file.
    await fs.promises.rename(partial, opts.out);
  } catch (err) {
    await fs.promises.rm(partial, { force: true });
    throw new CliError(`could not save the report file to ${opts.out}: ${(err as Error).message}`);
  } finally {
    bar?.stop();
  }
  return written;
}

/** Elapsed seconds against the report's timeout, on a terminal only. */
function showElapsed(bar: ReturnType<typeof progressBar>, report: ReportRow): () => void {
  if (!bar) return () => {};
  const started = Date.now();
  bar.start(Math.ceil(report.timeout_ms / 1000), 0);
  const timer = setInterval(() => bar.update(Math.floor((Date.now() - started) / 1000)), 250);
  return () => {
    clearInterval(timer);
    bar.stop();
  };
}

async function waitForEnd(db: Knex, report: ReportRow): Promise<ReportRow> {
  const giveUpAt = new Date(report.deadline_at).getTime() + WAIT_PAST_DEADLINE_MS;
  for (;;) {
    const current = await getReport(db, report.id);
    if (!current || current.status !== 'running') return current ?? report;
    if (Date.now() > giveUpAt) {
      throw new CliError(`report ${report.id} is still RUNNING a minute past its deadline: is a worker (herald worker) running?`);
    }
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}
