import fs from 'node:fs';
import path from 'node:path';
import { InvalidArgumentError, type Command } from 'commander';
import { CliError, printJson, withApp } from '../cli/context.js';
import { progressBar } from '../cli/progress.js';
import { importJsonText } from './import/import-json.js';
import { importXmlWorkbasket } from './import/import-xml.js';
import type { ImportResult } from './import/import-records.js';
import { dumpEnvelopes } from './envelope/dump.js';
import { formatWarning, ImportError, TaricError } from './errors.js';
import { getWorkbasket, listWorkbaskets, setWorkbasketStatusIf, WORKBASKET_STATUSES, type WorkbasketStatus } from './store.js';

// `herald workbaskets import|ready|list` and `herald envelopes dump`.
// Expected failures (bad file, wrong status) become one CliError each; the
// commands print JSON with --json and a progress bar only on a terminal.

/** Below this not even one small transaction fits in an envelope (as config). */
const MIN_ENVELOPE_SIZE = 4096;

function positiveInt(label: string) {
  return (value: string): number => {
    if (!/^[0-9]+$/.test(value) || Number(value) < 1 || !Number.isSafeInteger(Number(value))) {
      throw new InvalidArgumentError(`${label}: must be a positive whole number, got "${value}"`);
    }
    return Number(value);
  };
}

function status(value: string): WorkbasketStatus {
  const upper = value.toUpperCase();
  if (!(WORKBASKET_STATUSES as readonly string[]).includes(upper)) {
    throw new InvalidArgumentError(`--status: must be one of ${WORKBASKET_STATUSES.join(', ')}, got "${value}"`);
  }
  return upper as WorkbasketStatus;
}

function envelopeSize(value: string): number {
  const n = positiveInt('--max-envelope-size')(value);
  if (n < MIN_ENVELOPE_SIZE) throw new InvalidArgumentError(`--max-envelope-size: must be at least ${MIN_ENVELOPE_SIZE} bytes, got ${n}`);
  return n;
}

/** Turns the taric errors a user can fix into one CliError; anything else propagates. */
function asCliError(err: unknown): unknown {
  if (err instanceof ImportError || err instanceof TaricError) return new CliError(err.message);
  return err;
}

interface ImportCommandOptions {
  title?: string;
  json?: boolean;
  strict?: boolean;
}

async function importFile(file: string, opts: ImportCommandOptions): Promise<ImportResult> {
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
  return withApp(async ({ db }) => {
    try {
      if (first === '{') return await importJsonText(db, await fs.promises.readFile(file, 'utf8'), { title: opts.title, strict: opts.strict });
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
  });
}

export function registerTaricCommands(program: Command): void {
  const workbaskets = program.command('workbaskets').description('TARIC workbaskets: import them, mark them ready for export, list them');

  workbaskets
    .command('import')
    .description('Load a workbasket from a JSON file or a TARIC3 XML envelope; nothing is stored unless all of it is valid')
    .argument('<file>', 'JSON workbasket ({"title", "reason", "transactions": [...]}) or TARIC3 XML envelope')
    .option('--title <title>', 'workbasket title (overrides the JSON title; default for XML: the file name)')
    .option(
      '--strict',
      "refuse the file if it needs any normalisation (printed as warnings otherwise); XML must first be valid against Herald's import schema (xsd/envelope-import.xsd)",
    )
    .option('--json', 'print {workbasketId, transactions, records, warnings} as JSON')
    .action(async (file: string, opts: ImportCommandOptions) => {
      const result = await importFile(file, opts);
      if (opts.json) return printJson(result);
      process.stdout.write(`imported workbasket ${result.workbasketId}: ${result.transactions} transactions, ${result.records} records\n`);
      for (const w of result.warnings) process.stderr.write(`warning: ${formatWarning(w)}\n`);
    });

  workbaskets
    .command('ready')
    .description('Move a workbasket from EDITING to READY_FOR_EXPORT (its records are then frozen)')
    .argument('<id>', 'workbasket id', positiveInt('workbasket id'))
    .option('--json', 'print the workbasket as JSON')
    .action(async (id: number, opts: { json?: boolean }) => {
      const wb = await withApp(async ({ db }) => {
        const moved = await setWorkbasketStatusIf(db, id, 'EDITING', 'READY_FOR_EXPORT');
        if (moved) return moved;
        const current = await getWorkbasket(db, id);
        throw new CliError(current ? `workbasket ${id} is ${current.status}, not EDITING: unchanged` : `workbasket ${id} does not exist`);
      });
      if (opts.json) printJson(wb);
      else process.stdout.write(`workbasket ${wb.id} is ${wb.status}\n`);
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
    .option('--workbasket <id...>', 'only these workbaskets, in any status', (v: string, prev: number[] = []) => [...prev, positiveInt('--workbasket')(v)])
    .option('--max-envelope-size <bytes>', `byte limit of each file (default: EXPORTER_MAX_ENVELOPE_SIZE; at least ${MIN_ENVELOPE_SIZE})`, envelopeSize)
    .option('--json', 'print the envelopes as JSON')
    .action(async (opts: { dir: string; workbasket?: number[]; maxEnvelopeSize?: number; json?: boolean }) => {
      const result = await withApp(async ({ db, config }) => {
        const bar = progressBar(opts.json, 'transactions');
        try {
          return await dumpEnvelopes(db, {
            now: new Date(),
            maxEnvelopeBytes: opts.maxEnvelopeSize ?? config.EXPORTER_MAX_ENVELOPE_SIZE,
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
