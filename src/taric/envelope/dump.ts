import fs from 'node:fs';
import path from 'node:path';
import type { Knex } from 'knex';
import { EnvelopeIdSequence, readNextIds } from './allocate.js';
import { envelopeFileName, fileSink, renderPending, selectWorkbaskets, type ExportOptions } from './export.js';
import type { ValidationIssue } from './validation-types.js';
import type { EnvelopeSink } from './envelope-writer.js';
import { TaricError } from '../errors.js';

// `herald envelopes dump`: the export's rendering and validation without its
// side effects. Nothing is stored and no id is used; the ids in the files are
// the ones an export started now would take (unless another commits first).
// Named workbaskets may be in any status, so an EDITING one can be checked
// before it is marked ready; only their transactions not yet exported are
// rendered, as an export would.
//
// Files are written into a fresh private directory inside `dir`
// (.herald-dump-XXXXXX, made by mkdtemp) and renamed into `dir` only once
// every envelope has been rendered: a dump that fails part-way leaves nothing
// it wrote, and a path already in `dir` that is not a regular file (a
// symlink, a directory, a fifo) is refused, never followed. rename() replaces
// the directory entry itself, so even a symlink planted after the check is
// replaced rather than written through. A dump killed outright can leave only
// its hidden .herald-dump-* directory behind, never a DIT file.

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
  const staging = await DumpStaging.open(opts.dir);
  try {
    const result = await render(db, opts, staging);
    await staging.publish();
    return result;
  } catch (err) {
    await staging.discard();
    throw err;
  }
}

async function render(db: Knex, opts: DumpOptions, staging: DumpStaging): Promise<{ envelopes: DumpedEnvelope[] }> {
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
      xsdValidator: opts.xsdValidator,
      openSink: (envelopeId) => staging.sink(envelopeFileName(envelopeId)),
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

/** The files of one dump: written in a private directory, moved into `dir` all together at the end. */
class DumpStaging {
  private readonly names: string[] = [];
  private readonly published: string[] = [];

  private constructor(
    private readonly dir: string,
    private readonly temp: string,
  ) {}

  static async open(dir: string): Promise<DumpStaging> {
    return new DumpStaging(dir, await fs.promises.mkdtemp(path.join(dir, '.herald-dump-')));
  }

  async sink(name: string): Promise<EnvelopeSink> {
    await refuseNonRegular(path.join(this.dir, name));
    this.names.push(name);
    return fileSink(path.join(this.temp, name));
  }

  /** Every target checked again first, so a refusal moves nothing; then one rename each. */
  async publish(): Promise<void> {
    for (const name of this.names) await refuseNonRegular(path.join(this.dir, name));
    for (const name of this.names) {
      await fs.promises.rename(path.join(this.temp, name), path.join(this.dir, name));
      this.published.push(name);
    }
    await fs.promises.rm(this.temp, { recursive: true, force: true });
  }

  /** Removes everything this dump wrote: the private directory and any file already moved out of it. */
  async discard(): Promise<void> {
    await Promise.all(this.published.map((name) => fs.promises.rm(path.join(this.dir, name), { force: true })));
    await fs.promises.rm(this.temp, { recursive: true, force: true });
  }
}

function kindOf(stat: fs.Stats): string {
  if (stat.isSymbolicLink()) return 'symbolic link';
  if (stat.isDirectory()) return 'directory';
  if (stat.isFIFO()) return 'fifo';
  if (stat.isSocket()) return 'socket';
  return 'device';
}

async function refuseNonRegular(file: string): Promise<void> {
  const stat = await fs.promises.lstat(file).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return null;
    throw err;
  });
  if (!stat || stat.isFile()) return;
  throw new TaricError('dump_target_not_file', `${file} exists and is a ${kindOf(stat)}, not a regular file: remove it or dump to another --dir (nothing was written)`);
}
