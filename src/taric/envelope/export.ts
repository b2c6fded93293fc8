import fs from 'node:fs';
import path from 'node:path';
import { once } from 'node:events';
import { finished } from 'node:stream/promises';
import type { Knex } from 'knex';
import { crashPoint } from '../../lib/crash-point.js';
import type { PhaseTimes } from '../../lib/phase-times.js';
import { buildEnvelopes, type BuildEnvelopesOptions, type BuiltEnvelope, type EnvelopeSink } from './envelope-writer.js';
import type { XsdValidatorChoice } from './envelope-check.js';
import { EnvelopeIdSequence, withEnvelopeNumbering } from './allocate.js';
import { EnvelopeInvalidError, TaricError } from '../errors.js';
import { EnvelopeRows, type StoredEnvelope } from './envelope-rows.js';
import {
  countPendingTransactions,
  selectWorkbasketsForExport,
  readPendingTransactions,
  type Workbasket,
  type WorkbasketStatus,
} from '../store.js';

export { renderStoredEnvelope } from './render-stored.js';

// Export: READY_FOR_EXPORT workbaskets -> validated envelope files + the
// envelopes / envelope_transactions rows that number them, all or nothing.
// Workbasket status is left alone: the upload step moves workbaskets to SENT
// once the files are in S3. Crash points (HERALD_CRASH_AT):
//   taric-export.validating     mid-envelope (envelope-writer.ts): an xmllint process is reading it
//   taric-export.rendered       every file written and validated, rows (being) inserted, nothing committed
//   taric-export.before-commit  every row inserted, transaction not committed

export interface ExportProgress {
  transactions: number;
  totalTransactions: number;
  bytes: number;
}

export interface ExportOptions {
  /** Decides the envelope ids' year. */
  now: Date;
  /** Byte limit of each envelope file (config EXPORTER_MAX_ENVELOPE_SIZE). */
  maxEnvelopeBytes: number;
  /** Which XSD validator (config EXPORTER_XSD_VALIDATOR; default auto). */
  xsdValidator?: XsdValidatorChoice | undefined;
  /** TARIC transaction id of the first export ever (config EXPORTER_FIRST_TRANSACTION_ID). */
  firstTransactionId: number;
  /** Where DIT{envelopeId}.xml files are written (must exist). */
  workDir: string;
  /** Export only these workbaskets (each must be READY_FOR_EXPORT); default: every one that is. */
  workbasketIds?: number[] | undefined;
  onProgress?: ((p: ExportProgress) => void) | undefined;
  /**
   * Adds the run's phases (ms): lock (taking the numbering lock and reading
   * the next ids), read (the database reads), the writer's phases (see
   * BuildEnvelopesOptions.times), store (inserting the rows, overlapping
   * rendering and validation), store-wait (inserts still running after the
   * last validation) and commit.
   */
  times?: PhaseTimes | undefined;
}

export interface ExportedEnvelope {
  /** envelopes.id */
  id: number;
  envelopeId: string;
  file: string;
  bytes: number;
  md5: string;
  workbasketIds: number[];
  transactionCount: number;
  firstTaricTransactionId: number;
  lastTaricTransactionId: number;
}

export function envelopeFileName(envelopeId: string): string {
  return `DIT${envelopeId}.xml`;
}

/**
 * Renders, validates and numbers every transaction of the READY_FOR_EXPORT
 * workbaskets that is in no envelope yet. The rows are inserted as the files
 * are completed and committed only when every envelope is valid; otherwise
 * the transaction rolls back (nothing is stored), the files are deleted, and EnvelopeInvalidError (validator messages) or the writer's
 * OversizeTransactionError is thrown.
 */
export async function exportReadyWorkbaskets(db: Knex, opts: ExportOptions): Promise<{ envelopes: ExportedEnvelope[] }> {
  const files: string[] = [];
  const times = opts.times;
  let mark = performance.now();
  const lap = (phase: string) => {
    const now = performance.now();
    times?.add(phase, now - mark);
    mark = now;
  };
  try {
    const result = await withEnvelopeNumbering(db, opts, async (trx, next) => {
      lap('lock');
      const workbaskets = await selectWorkbaskets(trx, { ids: opts.workbasketIds ?? null, statuses: ['READY_FOR_EXPORT'], lock: true });
      lap('read');
      const sequence = new EnvelopeIdSequence(next.year, next.nextCounter);
      // The rows are inserted while the envelopes are written and validated
      // (envelope-rows.ts), and committed only if every envelope is valid.
      const rows = new EnvelopeRows(trx, sequence, times);
      let built: BuiltEnvelope[];
      try {
        built = await renderPending(trx, {
          workbasketIds: workbaskets.map((w) => w.id),
          firstTaricTransactionId: next.nextTaricTransactionId,
          nextEnvelopeId: () => sequence.next(),
          maxEnvelopeBytes: opts.maxEnvelopeBytes,
          xsdValidator: opts.xsdValidator,
          openSink: (envelopeId) => {
            const file = path.join(opts.workDir, envelopeFileName(envelopeId));
            files.push(file);
            return fileSink(file);
          },
          onPlaced: (envelopeId, t) => rows.placed(envelopeId, t),
          onWritten: (e) => rows.written(e),
          onProgress: opts.onProgress,
          times,
        });
      } catch (err) {
        // The transaction may end (roll back) only with no statement of it in flight.
        await rows.settled().catch(() => undefined);
        throw err;
      }
      mark = performance.now();
      crashPoint('taric-export.rendered');
      const invalid = built.filter((e) => !e.valid);
      if (invalid.length > 0) {
        await rows.settled().catch(() => undefined);
        throw new EnvelopeInvalidError(invalid.map((e) => ({ envelopeId: e.envelopeId, issues: e.issues })));
      }
      const out = (await rows.envelopes()).map((e) => exported(e, opts.workDir));
      lap('store-wait');
      crashPoint('taric-export.before-commit');
      return { envelopes: out };
    });
    lap('commit');
    return result;
  } catch (err) {
    await Promise.all(files.map((f) => fs.promises.rm(f, { force: true })));
    throw err;
  }
}

function exported(e: StoredEnvelope, workDir: string): ExportedEnvelope {
  return {
    id: e.id,
    envelopeId: e.envelopeId,
    file: path.join(workDir, envelopeFileName(e.envelopeId)),
    bytes: e.bytes,
    md5: e.md5,
    workbasketIds: [...new Set(e.transactions.map((t) => t.workbasketId))],
    transactionCount: e.transactions.length,
    firstTaricTransactionId: e.transactions[0]!.taricTransactionId,
    lastTaricTransactionId: e.transactions[e.transactions.length - 1]!.taricTransactionId,
  };
}

/**
 * The workbaskets an export (locked FOR SHARE) or a dump (not locked) reads.
 * Named ones must exist and be in `statuses`; unnamed: every one in `statuses`.
 */
export async function selectWorkbaskets(
  db: Knex | Knex.Transaction,
  filter: { ids: number[] | null; statuses: WorkbasketStatus[] | null; lock: boolean },
): Promise<Workbasket[]> {
  if (filter.ids === null) return selectWorkbasketsForExport(db, filter);
  const found = await selectWorkbasketsForExport(db, { ...filter, statuses: null });
  for (const id of filter.ids) {
    const w = found.find((f) => f.id === id);
    if (!w) throw new TaricError('workbasket_not_found', `workbasket ${id} does not exist`);
    if (filter.statuses && !filter.statuses.includes(w.status)) {
      throw new TaricError('workbasket_status', `workbasket ${id} is ${w.status}, not ${filter.statuses.join(' or ')}`);
    }
  }
  return found;
}

export interface RenderPendingOptions {
  workbasketIds: number[];
  firstTaricTransactionId: number;
  nextEnvelopeId(): string;
  maxEnvelopeBytes: number;
  xsdValidator?: XsdValidatorChoice | undefined;
  openSink(envelopeId: string): EnvelopeSink | Promise<EnvelopeSink>;
  onPlaced?: BuildEnvelopesOptions['onPlaced'];
  onWritten?: BuildEnvelopesOptions['onWritten'];
  onProgress?: ((p: ExportProgress) => void) | undefined;
  times?: PhaseTimes | undefined;
}

/** Streams the workbaskets' unexported transactions through the envelope writer. */
export async function renderPending(db: Knex | Knex.Transaction, opts: RenderPendingOptions): Promise<BuiltEnvelope[]> {
  if (opts.workbasketIds.length === 0) return [];
  const t0 = performance.now();
  const total = await countPendingTransactions(db, opts.workbasketIds);
  opts.times?.add('read', performance.now() - t0);
  // An envelope without transactions would use an envelope id for nothing.
  if (total === 0) return [];
  const onProgress = opts.onProgress;
  return buildEnvelopes({
    transactions: readPendingTransactions(db, opts.workbasketIds),
    firstTaricTransactionId: opts.firstTaricTransactionId,
    nextEnvelopeId: opts.nextEnvelopeId,
    maxEnvelopeBytes: opts.maxEnvelopeBytes,
    xsdValidator: opts.xsdValidator,
    openSink: opts.openSink,
    ...(opts.onPlaced ? { onPlaced: opts.onPlaced } : {}),
    ...(opts.onWritten ? { onWritten: opts.onWritten } : {}),
    times: opts.times,
    ...(onProgress ? { onProgress: (p: { transactions: number; bytes: number }) => onProgress({ ...p, totalTransactions: total }) } : {}),
  });
}

// Up to 1 MiB (four of the writer's segments) queued for the disk before the
// writer waits: with the default 16 KiB every 256 KiB segment waited for its
// own write, and rendering stalled on the thread pool (scripts/bench/export.ts).
const SINK_BUFFER_BYTES = 1024 * 1024;

/** A file sink that honours back-pressure and reports write errors. */
export function fileSink(file: string): EnvelopeSink {
  const out = fs.createWriteStream(file, { highWaterMark: SINK_BUFFER_BYTES });
  return {
    async write(chunk) {
      if (!out.write(chunk)) await once(out, 'drain');
    },
    async end() {
      out.end();
      await finished(out);
    },
    // The caller deletes the file; this only closes the descriptor.
    abort() {
      out.destroy();
    },
  };
}
