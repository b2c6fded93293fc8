import fs from 'node:fs';
import path from 'node:path';
import type { Knex } from 'knex';
import { EnvelopeIdSequence, readNextIds } from './allocate.js';
import { envelopeFileName, fileSink, renderPending, selectWorkbaskets, type ExportOptions } from './export.js';
import type { ValidationIssue } from './validation-types.js';

// `herald envelopes dump`: the export's rendering and validation without its
// side effects. Nothing is stored and no id is used; the ids in the files are
// the ones an export started now would take (unless another commits first).
// Named workbaskets may be in any status, so an EDITING one can be checked
// before it is marked ready; only their transactions not yet exported are
// rendered, as an export would.

/** As an export's options, but the files go to `dir` (created when missing). */
export type DumpOptions = Omit<ExportOptions, 'workDir'> & { dir: string };

export interface DumpedEnvelope {
  envelopeId: string;
  file: string;
  transactions: number;
  bytes: number;
  md5: string;
  valid: boolean;
  issues: ValidationIssue[];
  workbasketIds: number[];
  firstTaricTransactionId: number;
  lastTaricTransactionId: number;
}

export async function dumpEnvelopes(db: Knex, opts: DumpOptions): Promise<{ envelopes: DumpedEnvelope[] }> {
  await fs.promises.mkdir(opts.dir, { recursive: true });
  // One transaction so that every batch reads the same committed state as
  // far as READ COMMITTED allows; it writes nothing, so it simply commits.
  return db.transaction(async (trx) => {
    const ids = opts.workbasketIds && opts.workbasketIds.length > 0 ? opts.workbasketIds : null;
    const workbaskets = await selectWorkbaskets(trx, { ids, statuses: ids ? null : ['READY_FOR_EXPORT'], lock: false });
    const next = await readNextIds(trx, { now: opts.now, firstTransactionId: opts.firstTransactionId });
    const sequence = new EnvelopeIdSequence(next.year, next.nextCounter);
    const built = await renderPending(trx, {
      workbasketIds: workbaskets.map((w) => w.id),
      firstTaricTransactionId: next.nextTaricTransactionId,
      nextEnvelopeId: () => sequence.next(),
      maxEnvelopeBytes: opts.maxEnvelopeBytes,
      openSink: (envelopeId) => fileSink(path.join(opts.dir, envelopeFileName(envelopeId))),
      onProgress: opts.onProgress,
    });
    return {
      envelopes: built.map((e) => ({
        envelopeId: e.envelopeId,
        file: path.join(opts.dir, envelopeFileName(e.envelopeId)),
        transactions: e.transactions.length,
        bytes: e.bytes,
        md5: e.md5,
        valid: e.valid,
        issues: e.issues,
        workbasketIds: [...new Set(e.transactions.map((t) => t.workbasketId))],
        firstTaricTransactionId: e.transactions[0]?.taricTransactionId ?? next.nextTaricTransactionId,
        lastTaricTransactionId: e.transactions[e.transactions.length - 1]?.taricTransactionId ?? next.nextTaricTransactionId - 1,
      })),
    };
  });
}
