import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { once } from 'node:events';
import { finished } from 'node:stream/promises';
import type { Knex } from 'knex';
import { crashPoint } from '../lib/crash-point.js';
import type { SourceTransaction } from './model.js';
import { buildEnvelopes, type BuiltEnvelope, type EnvelopeSink } from './envelope-writer.js';
import { EnvelopeIdSequence, withEnvelopeNumbering } from './allocate.js';
import { EnvelopeInvalidError, TaricError } from './errors.js';
import {
  countPendingTransactions,
  getEnvelope,
  insertEnvelope,
  insertEnvelopeTransactions,
  selectWorkbasketsForExport,
  readEnvelopeTransactions,
  readPendingTransactions,
  type Workbasket,
  type WorkbasketStatus,
} from './store.js';

// Export: READY_FOR_EXPORT workbaskets -> validated envelope files + the
// envelopes / envelope_transactions rows that number them, all or nothing.
// Workbasket status is left alone: the upload step moves workbaskets to SENT
// once the files are in S3. Crash points (HERALD_CRASH_AT):
//   taric-export.rendered       every file written, no row inserted yet
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
  /** TARIC transaction id of the first export ever (config EXPORTER_FIRST_TRANSACTION_ID). */
  firstTransactionId: number;
  /** Where DIT{envelopeId}.xml files are written (must exist). */
  workDir: string;
  /** Export only these workbaskets (each must be READY_FOR_EXPORT); default: every one that is. */
  workbasketIds?: number[] | undefined;
  onProgress?: ((p: ExportProgress) => void) | undefined;
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
 * workbaskets that is in no envelope yet. Only when every envelope is valid
 * are the rows inserted and committed; otherwise nothing is stored, the files
 * are deleted, and EnvelopeInvalidError (validator messages) or the writer's
 * OversizeTransactionError is thrown.
 */
export async function exportReadyWorkbaskets(db: Knex, opts: ExportOptions): Promise<{ envelopes: ExportedEnvelope[] }> {
  const files: string[] = [];
  try {
    return await withEnvelopeNumbering(db, opts, async (trx, next) => {
      const workbaskets = await selectWorkbaskets(trx, { ids: opts.workbasketIds ?? null, statuses: ['READY_FOR_EXPORT'], lock: true });
      const sequence = new EnvelopeIdSequence(next.year, next.nextCounter);
      const built = await renderPending(trx, {
        workbasketIds: workbaskets.map((w) => w.id),
        firstTaricTransactionId: next.nextTaricTransactionId,
        nextEnvelopeId: () => sequence.next(),
        maxEnvelopeBytes: opts.maxEnvelopeBytes,
        openSink: (envelopeId) => {
          const file = path.join(opts.workDir, envelopeFileName(envelopeId));
          files.push(file);
          return fileSink(file);
        },
        onProgress: opts.onProgress,
      });
      crashPoint('taric-export.rendered');
      const invalid = built.filter((e) => !e.valid);
      if (invalid.length > 0) throw new EnvelopeInvalidError(invalid.map((e) => ({ envelopeId: e.envelopeId, issues: e.issues })));

      const out: ExportedEnvelope[] = [];
      for (const e of built) {
        const { year, counter } = sequence.lookup(e.envelopeId);
        const row = await insertEnvelope(trx, { envelopeId: e.envelopeId, year, counter, sizeBytes: e.bytes, md5: e.md5 });
        await insertEnvelopeTransactions(
          trx,
          row.id,
          e.transactions.map((t) => ({
            transactionId: t.transactionId,
            workbasketId: t.workbasketId,
            taricTransactionId: t.taricTransactionId,
            position: t.position,
          })),
        );
        out.push({
          id: row.id,
          envelopeId: e.envelopeId,
          file: path.join(opts.workDir, envelopeFileName(e.envelopeId)),
          bytes: e.bytes,
          md5: e.md5,
          workbasketIds: [...new Set(e.transactions.map((t) => t.workbasketId))],
          transactionCount: e.transactions.length,
          firstTaricTransactionId: e.transactions[0]!.taricTransactionId,
          lastTaricTransactionId: e.transactions[e.transactions.length - 1]!.taricTransactionId,
        });
      }
      crashPoint('taric-export.before-commit');
      return { envelopes: out };
    });
  } catch (err) {
    await Promise.all(files.map((f) => fs.promises.rm(f, { force: true })));
    throw err;
  }
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
  openSink(envelopeId: string): EnvelopeSink | Promise<EnvelopeSink>;
  onProgress?: ((p: ExportProgress) => void) | undefined;
}

/** Streams the workbaskets' unexported transactions through the envelope writer. */
export async function renderPending(db: Knex | Knex.Transaction, opts: RenderPendingOptions): Promise<BuiltEnvelope[]> {
  if (opts.workbasketIds.length === 0) return [];
  const total = await countPendingTransactions(db, opts.workbasketIds);
  // An envelope without transactions would use an envelope id for nothing.
  if (total === 0) return [];
  const onProgress = opts.onProgress;
  return buildEnvelopes({
    transactions: readPendingTransactions(db, opts.workbasketIds),
    firstTaricTransactionId: opts.firstTaricTransactionId,
    nextEnvelopeId: opts.nextEnvelopeId,
    maxEnvelopeBytes: opts.maxEnvelopeBytes,
    openSink: opts.openSink,
    ...(onProgress ? { onProgress: (p: { transactions: number; bytes: number }) => onProgress({ ...p, totalTransactions: total }) } : {}),
  });
}

/** A file sink that honours back-pressure and reports write errors. */
export function fileSink(file: string): EnvelopeSink {
  const out = fs.createWriteStream(file);
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

/**
 * Re-renders a stored envelope, byte for byte, into `sink` (the upload retry
 * after a crash sends the same bytes under the same key). The bytes are
 * checked against the stored size and md5 before `sink.end()` is called: on a
 * mismatch it throws TaricError('envelope_mismatch') and never ends the sink,
 * so a half-checked upload is never completed.
 */
export async function renderStoredEnvelope(db: Knex | Knex.Transaction, envelopeRowId: number, sink: EnvelopeSink): Promise<{ envelopeId: string; bytes: number; md5: string }> {
  const envelope = await getEnvelope(db, envelopeRowId);
  if (!envelope) throw new TaricError('envelope_not_found', `envelope row ${envelopeRowId} does not exist`);
  const mismatch = (what: string) =>
    new TaricError('envelope_mismatch', `envelope ${envelope.envelopeId} re-rendered differently from the stored one: ${what}`);

  // Peek at the first transaction to learn the first TARIC id; every later one
  // must follow it contiguously, as the export stored them.
  const stored = readEnvelopeTransactions(db, envelopeRowId);
  const first = await stored.next();
  if (first.done) throw mismatch('it has no transactions');
  const firstTaric = first.value.taricTransactionId;
  async function* transactions(): AsyncGenerator<SourceTransaction> {
    let expected = firstTaric;
    let item = first;
    while (!item.done) {
      if (item.value.taricTransactionId !== expected) throw mismatch(`TARIC transaction ids are not contiguous at ${expected}`);
      expected += 1;
      yield { transactionId: item.value.transactionId, workbasketId: item.value.workbasketId, records: item.value.records };
      item = await stored.next();
    }
  }

  const hash = crypto.createHash('md5');
  let bytes = 0;
  let opened = 0;
  const checking: EnvelopeSink = {
    write(chunk) {
      hash.update(chunk);
      bytes += chunk.length;
      return sink.write(chunk);
    },
    async end() {
      const md5 = hash.digest('hex');
      const problem =
        bytes !== envelope.sizeBytes ? `${bytes} bytes, stored ${envelope.sizeBytes}` : md5 !== envelope.md5 ? `md5 ${md5}, stored ${envelope.md5}` : null;
      if (problem) {
        const err = mismatch(problem);
        await sink.abort?.(err);
        throw err;
      }
      await sink.end();
    },
    abort: (reason) => sink.abort?.(reason),
  };
  await buildEnvelopes({
    transactions: transactions(),
    firstTaricTransactionId: firstTaric,
    nextEnvelopeId: () => {
      opened += 1;
      if (opened > 1) throw mismatch('it no longer fits one envelope');
      return envelope.envelopeId;
    },
    // The limit was checked when the envelope was made; the md5 check
    // catches any difference, so nothing here may split it again.
    maxEnvelopeBytes: Number.MAX_SAFE_INTEGER,
    openSink: () => checking,
    // Same bytes as the validated original (md5 checked), so no second validation.
    validate: false,
  });
  return { envelopeId: envelope.envelopeId, bytes, md5: envelope.md5 };
}
