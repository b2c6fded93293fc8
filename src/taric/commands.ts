import fs from 'node:fs';
import path from 'node:path';
import { InvalidArgumentError, type Command } from 'commander';
import { wholeNumber } from '../lib/cli/args.js';
import { CliError, printJson, withApp } from '../lib/cli/context.js';
import { progressBar } from '../lib/cli/progress.js';
import type { Knex } from 'knex';
import type { ImportResult } from './import/import-records.js';
import { formatWarning, ImportError, TaricError } from './errors.js';
import { getWorkbasket, listWorkbaskets, setWorkbasketStatusIf, WORKBASKET_STATUSES, type Workbasket, type WorkbasketStatus } from './store.js';

// `herald workbaskets import|ready|list` and `herald envelopes dump`.
// Expected failures (bad file, wrong status) become one CliError each; the
// commands print JSON with --json and a progress bar only on a terminal.
// The importers and the envelope writer (zod, saxes, the XSD validator) are
// imported inside the actions, so `herald --help` does not load them.

/** Below this not even one small transaction fits in an envelope (as config). */
const MIN_ENVELOPE_SIZE = 4096;

function status(value: string): WorkbasketStatus {
  const upper = value.toUpperCase();
  if (!(WORKBASKET_STATUSES as readonly string[]).includes(upper)) {
    throw new InvalidArgumentError(`--status: must be one of ${WORKBASKET_STATUSES.join(', ')}, got "${value}"`);
  }
  return upper as WorkbasketStatus;
}

function envelopeSize(value: string): number {
  const n = wholeNumber('--max-envelope-size', { max: Number.MAX_SAFE_INTEGER })(value);
  if (n < MIN_ENVELOPE_SIZE) throw new InvalidArgumentError(`--max-envelope-size: must be at least ${MIN_ENVELOPE_SIZE} bytes, got ${n}`);
  return n;
}

/** Turns the taric errors a user can fix into one CliError; anything else propagates. */
function asCliError(err: unknown): unknown {
  if (err instanceof ImportError || err instanceof TaricError) return new CliError(err.message);
  return err;
}

/** Opens the file and says which importer it needs; a CliError naming the file otherwise. */
async function sniffFile(file: string): Promise<{ kind: 'json' | 'xml'; size: number }> {
  let handle: fs.promises.FileHandle;
  try {
    handle = await fs.promises.open(file, 'r');
  } catch (err) {
    throw new CliError(`${file}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message}`);
  }
  const head = Buffer.alloc(512);
  const { bytesRead } = await handle.read(head, 0, head.length, 0);
  const size = (await handle.stat()).size;
  await handle.close();
  const first = head.subarray(0, bytesRead).toString('utf8').replace(/^\uFEFF/, '').trimStart()[0];
  if (first !== '{' && first !== '<') {
    throw new CliError(`${file}: neither a JSON workbasket (starts with "{") nor a TARIC3 XML envelope (starts with "<")`);
  }
  return { kind: first === '{' ? 'json' : 'xml', size };
}

interface ImportCommandOptions {
  title?: string;
  json?: boolean;
  strict?: boolean;
}

/** One file, in its own transaction (the importers': nothing is stored unless all of it is valid). */
async function importFile(db: Knex, file: string, opts: ImportCommandOptions): Promise<ImportResult> {
  const { kind, size } = await sniffFile(file);
  try {
    if (kind === 'json') {
      const { importJsonText } = await import('./import/import-json.js');
      return await importJsonText(db, await fs.promises.readFile(file, 'utf8'), { title: opts.title, strict: opts.strict });
    }
    const { importXmlWorkbasket } = await import('./import/import-xml.js');
    const bar = progressBar(opts.json, 'bytes');
    bar?.start(size, 0);
    try {
      return await importXmlWorkbasket(db, file, {
        title: opts.title?.trim() || `Imported from ${path.basename(file)}`,
        strict: opts.strict ?? false,
        onProgress: (read) => bar?.update(read),
      });
    } finally {
      bar?.stop();
    }
  } catch (err) {
    throw asCliError(err);
  }
}

type Outcome<T> = ({ ok: true } & T) | { ok: false; error: string };

/**
 * Runs each item on its own, so one failure does not stop the rest; a
 * failure is one stderr line (prefixed with the item when there are several)
 * and exit code 1. Failures that are not the item's fault (the database is
 * gone) still stop the batch.
 */
async function eachOnItsOwn<I, T>(items: readonly I[], label: (item: I) => string, run: (item: I) => Promise<T>): Promise<Array<{ item: I; outcome: Outcome<T> }>> {
  const out: Array<{ item: I; outcome: Outcome<T> }> = [];
  for (const item of items) {
    try {
      out.push({ item, outcome: { ok: true, ...(await run(item)) } });
    } catch (err) {
      if (!(err instanceof CliError)) throw err;
      const prefix = items.length > 1 && !err.message.startsWith(label(item)) ? `${label(item)}: ` : '';
      process.stderr.write(`herald: ${prefix}${err.message}\n`);
      process.exitCode = 1;
      out.push({ item, outcome: { ok: false, error: err.message } });
    }
  }
  return out;
}

/** EDITING -> READY_FOR_EXPORT (compare-and-set), or a CliError saying why not. */
async function makeReady(db: Knex, id: number): Promise<Workbasket> {
  const moved = await setWorkbasketStatusIf(db, id, 'EDITING', 'READY_FOR_EXPORT');
  if (moved) return moved;
  const current = await getWorkbasket(db, id);
  throw new CliError(current ? `workbasket ${id} is ${current.status}, not EDITING: unchanged` : `workbasket ${id} does not exist`);
}

export function registerTaricCommands(program: Command): void {
  const workbaskets = program.command('workbaskets').description('TARIC workbaskets: import them, mark them ready for export, list them');

  workbaskets
    .command('import')
    .description(
      'Load workbaskets from JSON files or TARIC3 XML envelopes, one workbasket per file, each in its own transaction: ' +
        'nothing of a file is stored unless all of it is valid. Exit 1 if any file failed (the others are still imported).',
    )
    .argument('<file...>', 'JSON workbasket ({"title", "reason", "transactions": [...]}) or TARIC3 XML envelope; several may be given')
    .option('--title <title>', 'workbasket title (overrides the JSON title; default for XML: the file name)')
    .option(
      '--strict',
      "refuse a file that needs any normalisation (printed as warnings otherwise); XML must first be valid against Herald's import schema (xsd/envelope-import.xsd)",
    )
    .option('--json', 'print [{file, ok, workbasketId, transactions, records, warnings} | {file, ok: false, error}] as JSON, one entry per file')
    .action(async (files: string[], opts: ImportCommandOptions) => {
      const results = await withApp(({ db }) => eachOnItsOwn(files, (f) => f, (f) => importFile(db, f, opts)));
      if (opts.json) return printJson(results.map(({ item, outcome }) => ({ file: item, ...outcome })));
      for (const { item, outcome: r } of results) {
        if (!r.ok) continue;
        const label = files.length > 1 ? `${item}: ` : '';
        process.stdout.write(`${label}imported workbasket ${r.workbasketId}: ${r.transactions} transactions, ${r.records} records\n`);
        for (const w of r.warnings) process.stderr.write(`${label}warning: ${formatWarning(w)}\n`);
      }
    });

  workbaskets
    .command('ready')
    .description(
      'Move workbaskets from EDITING to READY_FOR_EXPORT (their records are then frozen; the export is queued): the IDs given, or with --all every EDITING one. ' +
        'Exit 1 if any could not be moved (the others still are).',
    )
    .argument('[id...]', 'workbasket ids', (v: string, prev: number[] = []) => [...prev, wholeNumber('workbasket id')(v)])
    .option('--all', 'every workbasket that is EDITING now')
    .option('--json', 'print the moved workbaskets as a JSON array')
    .action(async (ids: number[], opts: { all?: boolean; json?: boolean }) => {
      if (opts.all === (ids.length > 0)) throw new CliError('give workbasket IDs or --all (not both)');
      const results = await withApp(async ({ db }) => {
        const targets = opts.all ? (await listWorkbaskets(db, { status: 'EDITING' })).map((w) => w.id) : ids;
        return eachOnItsOwn(targets, (id) => `workbasket ${id}`, (id) => makeReady(db, id));
      });
      const moved = results.flatMap(({ outcome }) => (outcome.ok ? [outcome] : []));
      if (opts.json) return printJson(moved.map(({ ok: _ok, ...wb }) => wb));
      if (opts.all && results.length === 0) process.stdout.write('no EDITING workbaskets\n');
      for (const wb of moved) process.stdout.write(`workbasket ${wb.id} is ${wb.status}\n`);
    });

  workbaskets
    .command('list')
    .description('List workbaskets with their status and size')
    .option('--status <status>', `only workbaskets in this status (${WORKBASKET_STATUSES.join(', ')})`, status)
    .option('--json', 'print the list as JSON')
    .action(async (opts: { status?: WorkbasketStatus; json?: boolean }) => {
      const rows = await withApp(({ db }) => listWorkbaskets(db, opts.status ? { status: opts.status } : {}));
      if (opts.json) return printJson(rows);
      if (rows.length === 0) return void process.stdout.write('no workbaskets\n');
      for (const w of rows) {
        process.stdout.write(
          `${String(w.id).padStart(6)}  ${w.status.padEnd(16)}  ${String(w.transactions).padStart(6)} tx  ${String(w.records).padStart(7)} records  ${w.title}\n`,
        );
      }
    });

  const envelopes = program.command('envelopes').description('TARIC3 envelopes');

  envelopes
    .command('dump')
    .description('Render and validate envelopes for the READY_FOR_EXPORT workbaskets (or those named) without storing anything or using ids; exit 1 if any is invalid')
    .requiredOption('--dir <dir>', 'directory for the DIT{envelope id}.xml files (created if missing)')
    .option('--workbasket <id...>', 'only these workbaskets, in any status', (v: string, prev: number[] = []) => [...prev, wholeNumber('--workbasket')(v)])
    .option('--max-envelope-size <bytes>', `byte limit of each file (default: EXPORTER_MAX_ENVELOPE_SIZE; at least ${MIN_ENVELOPE_SIZE})`, envelopeSize)
    .option('--json', 'print the envelopes as JSON')
    .action(async (opts: { dir: string; workbasket?: number[]; maxEnvelopeSize?: number; json?: boolean }) => {
      const result = await withApp(async ({ db, config }) => {
        const { dumpEnvelopes } = await import('./envelope/dump.js');
        const bar = progressBar(opts.json, 'transactions');
        try {
          return await dumpEnvelopes(db, {
            now: new Date(),
            maxEnvelopeBytes: opts.maxEnvelopeSize ?? config.EXPORTER_MAX_ENVELOPE_SIZE,
            xsdValidator: config.EXPORTER_XSD_VALIDATOR,
            firstTransactionId: config.EXPORTER_FIRST_TRANSACTION_ID,
            dir: opts.dir,
            workbasketIds: opts.workbasket,
            onProgress: bar
              ? (p) => {
                  if (bar.getTotal() !== p.totalTransactions) bar.start(p.totalTransactions, 0);
                  bar.update(p.transactions);
                }
              : undefined,
          });
        } catch (err) {
          throw asCliError(err);
        } finally {
          bar?.stop();
        }
      });
      const invalid = result.envelopes.filter((e) => !e.valid).length;
      if (opts.json) printJson(result);
      else if (result.envelopes.length === 0) process.stdout.write('nothing to export: no pending transactions\n');
      else {
        for (const e of result.envelopes) {
          process.stdout.write(`${e.file}  transactions ${e.transactions}  bytes ${e.bytes}  ${e.valid ? 'valid' : `INVALID (${e.issues.length} issues)`}\n`);
          for (const i of e.issues.slice(0, 20)) process.stderr.write(`  ${path.basename(e.file)}:${i.line}${i.element ? ` <${i.element}>` : ''}: ${i.message}\n`);
        }
      }
      if (invalid > 0) process.exitCode = 1;
    });
}
