import crypto from 'node:crypto';
import { crashPoint } from '../../lib/crash-point.js';
import type { PhaseTimes } from '../../lib/phase-times.js';
import type { SourceTransaction } from '../model.js';
import { type EnvelopeCheck, resolveXsdEngine, startEnvelopeCheck, type XsdEngine, type XsdValidatorChoice } from './envelope-check.js';
import { ENVELOPE_FOOTER, ENVELOPE_FOOTER_BYTES, envelopeHeader, HEADER_LINES, renderTransaction, type RenderedTransaction } from './serialize.js';
import { schemaPathFor } from './validate.js';
import type { ValidationIssue } from './validation-types.js';

export { UnexportableRecordError } from './serialize.js';

// Splits an export into TARIC3 envelope files of at most maxEnvelopeBytes and
// streams each to its sink while a validator checks it (envelope-check.ts). The rules:
// - size is the exact UTF-8 byte length of the file written;
// - a transaction never spans two envelopes; each envelope takes transactions
//   greedily until the next one would not fit, then the next envelope starts
//   from zero (with its own header and footer);
// - a transaction is measured as rendered where it lands (record sequence
//   numbers restart at 1 in every envelope, so its size depends on position);
// - a transaction too big for an envelope of its own fails the whole run with
//   OversizeTransactionError. Nothing is stored here: the caller stores only
//   after this resolves (sinks may have received bytes; the caller cleans up).
// Memory: one segment (256 KiB) being filled, plus what the validator
// queues (a pipe to xmllint, or two chunk slots), never a whole envelope.

export interface EnvelopeSink {
  /** Awaited before the next write. The writer never touches `chunk` again, so the sink may keep it. */
  write(chunk: Buffer): void | Promise<void>;
  end(): Promise<void>;
  /** Called instead of end() when the run fails while this sink is open. */
  abort?(reason: Error): void | Promise<void>;
}

export interface BuildEnvelopesOptions {
  /** In export order. */
  transactions: AsyncIterable<SourceTransaction> | Iterable<SourceTransaction>;
  /** The i-th transaction (0-based) gets first + i. */
  firstTaricTransactionId: number;
  /** Called once per envelope, in order, when it is opened. */
  nextEnvelopeId(): string;
  /** >= 4096: exact UTF-8 byte size limit of each whole file. */
  maxEnvelopeBytes: number;
  openSink(envelopeId: string): EnvelopeSink | Promise<EnvelopeSink>;
  /** Default true: validate every envelope against xsd/ (Herald's schema). */
  validate?: boolean;
  /** Which validator (config EXPORTER_XSD_VALIDATOR; default auto: xmllint where it runs, else libxml2-wasm). */
  xsdValidator?: XsdValidatorChoice | undefined;
  /**
   * Called for each transaction as it is placed in an envelope (in order; a
   * placed transaction stays where it is), and once per envelope as soon as
   * its file is complete. Validation may still be running at either point
   * (its verdict comes with the result of buildEnvelopes): they let the
   * caller do work that can be undone, such as inserting rows it has not
   * committed, while the validator is busy.
   */
  onPlaced?(envelopeId: string, transaction: BuiltTransaction): void;
  onWritten?(envelope: WrittenEnvelope): void;
  onProgress?(p: { transactions: number; bytes: number }): void;
  /** Schema to validate against (default 'herald'); a path selects another envelope.xsd. */
  schema?: 'herald' | string;
  /** Bytes per sink write and per validation chunk (default 256 KiB; measured in scripts/bench/envelope.ts). */
  segmentBytes?: number;
  /**
   * Adds the run's phases (ms): read (waiting for `transactions`), render,
   * checksum, write (sink), validate-wait (the validator not ready for more),
   * validate-tail (validation still running after the last byte), and
   * validate-worker (the validator's own time, overlapping the others).
   */
  times?: PhaseTimes | undefined;
}

export interface BuiltTransaction {
  transactionId: number;
  workbasketId: number;
  taricTransactionId: number;
  /** 1-based within the envelope. */
  position: number;
  bytes: number;
}

export interface WrittenEnvelope {
  envelopeId: string;
  bytes: number;
  /** Hex. */
  md5: string;
  transactions: BuiltTransaction[];
}

export interface BuiltEnvelope extends WrittenEnvelope {
  issues: ValidationIssue[];
  valid: boolean;
  /** Every issue found; `issues` keeps the first MAX_ISSUES_PER_ENVELOPE. */
  issueCount: number;
  /** Records (app.message elements) in the envelope. */
  records: number;
  /** The validator's time on this envelope (0 when not validated). */
  validationMs: number;
}

export class OversizeTransactionError extends Error {
  constructor(
    readonly workbasketId: number,
    /** transactions.id (the database row). */
    readonly transactionId: number,
    /** Size of an envelope holding only this transaction. */
    readonly bytes: number,
    readonly maxBytes: number,
    /** The TARIC transaction id it was given in the envelope being written. */
    readonly taricTransactionId: number,
    /** Its 1-based position in the workbasket, as import problems count them, when known. */
    readonly workbasketPosition?: number,
  ) {
    const which = workbasketPosition === undefined ? `transaction (row ${transactionId})` : `transaction ${workbasketPosition} (row ${transactionId})`;
    super(
      `workbasket ${workbasketId}, ${which}, TARIC transaction id ${taricTransactionId}: needs ${bytes} bytes as an envelope of its own, ` +
        `more than the limit of ${maxBytes} bytes; split it into smaller transactions`,
    );
    this.name = 'OversizeTransactionError';
  }
}

export const MIN_ENVELOPE_BYTES = 4096;
const MAX_TARIC_TRANSACTION_ID = 99_999_999;
const DEFAULT_SEGMENT_BYTES = 256 * 1024;

function checkOptions(opts: BuildEnvelopesOptions): void {
  if (!Number.isSafeInteger(opts.maxEnvelopeBytes) || opts.maxEnvelopeBytes < MIN_ENVELOPE_BYTES) {
    throw new RangeError(`maxEnvelopeBytes must be a whole number >= ${MIN_ENVELOPE_BYTES}, got ${opts.maxEnvelopeBytes}`);
  }
  const first = opts.firstTaricTransactionId;
  if (!Number.isSafeInteger(first) || first < 1 || first > MAX_TARIC_TRANSACTION_ID) {
    throw new RangeError(`firstTaricTransactionId must be a whole number from 1 to ${MAX_TARIC_TRANSACTION_ID}, got ${first}`);
  }
  if (opts.segmentBytes !== undefined && (!Number.isSafeInteger(opts.segmentBytes) || opts.segmentBytes < 1)) {
    throw new RangeError(`segmentBytes must be a whole number >= 1, got ${opts.segmentBytes}`);
  }
}

interface Context {
  opts: BuildEnvelopesOptions;
  engine: XsdEngine | null;
  schemaPath: string;
  segmentBytes: number;
  bytesWritten: number;
  transactionsDone: number;
  times: PhaseTimes | null;
}

/** One envelope being written: its sink, running size and checksum. */
class OpenEnvelope {
  readonly transactions: BuiltTransaction[] = [];
  readonly header: string;
  bytes = 0;
  records = 0;
  private lines = 0;
  // The segment: a fresh buffer each time, written as each transaction is
  // rendered (so rendered strings die young), handed to the sink and never
  // touched again, so a sink may keep it as long as it likes.
  private segment: Buffer | null = null;
  private segmentLength = 0;
  private segmentStartLine = 1;
  private segmentTransactions = 0;
  private segmentHasHeader = true;
  private readonly md5 = crypto.createHash('md5');
  readonly check: EnvelopeCheck | null;

  private constructor(
    private readonly ctx: Context,
    readonly envelopeId: string,
    readonly sink: EnvelopeSink,
  ) {
    this.header = envelopeHeader(envelopeId);
    this.check = ctx.engine ? startEnvelopeCheck(ctx.engine, ctx.schemaPath, this.header) : null;
  }

  static async open(ctx: Context, envelopeId: string): Promise<OpenEnvelope> {
    const envelope = new OpenEnvelope(ctx, envelopeId, await ctx.opts.openSink(envelopeId));
    await envelope.append(envelope.header, Buffer.byteLength(envelope.header), HEADER_LINES, true);
    return envelope;
  }

  /** Bytes of the whole file if `r` were the last transaction. */
  sizeWith(r: RenderedTransaction): number {
    return this.bytes + r.bytes + ENVELOPE_FOOTER_BYTES;
  }

  async add(tx: SourceTransaction, taricTransactionId: number, r: RenderedTransaction): Promise<void> {
    const placed: BuiltTransaction = {
      transactionId: tx.transactionId,
      workbasketId: tx.workbasketId,
      taricTransactionId,
      position: this.transactions.length + 1,
      bytes: r.bytes,
    };
    this.transactions.push(placed);
    this.ctx.opts.onPlaced?.(this.envelopeId, placed);
    this.records += r.records;
    await this.append(r.text, r.bytes, r.lines, true);
    this.segmentTransactions++;
  }

  async close(): Promise<BuiltEnvelope> {
    // Every other append left room for the footer, so this one cannot flush.
    await this.append(ENVELOPE_FOOTER, ENVELOPE_FOOTER_BYTES, 1, false);
    await this.flush(true);
    const t0 = performance.now();
    await this.sink.end();
    this.ctx.times?.add('write', performance.now() - t0);
    return {
      envelopeId: this.envelopeId,
      bytes: this.bytes,
      md5: this.md5.digest('hex'),
      transactions: this.transactions,
      issues: [],
      valid: true,
      issueCount: 0,
      records: this.records,
      validationMs: 0,
    };
  }

  private async append(text: string, bytes: number, lines: number, reserveFooter: boolean): Promise<void> {
    const room = bytes + (reserveFooter ? ENVELOPE_FOOTER_BYTES : 0);
    if (!this.segment || this.segmentLength + room > this.segment.length) {
      if (this.segmentLength > 0) await this.flush(false);
      this.segment = Buffer.allocUnsafeSlow(Math.max(this.ctx.segmentBytes, room));
      this.segmentLength = 0;
    }
    const t0 = performance.now();
    this.segmentLength += this.segment.write(text, this.segmentLength);
    this.ctx.times?.add('render', performance.now() - t0);
    this.bytes += bytes;
    this.lines += lines;
  }

  private async flush(last: boolean): Promise<void> {
    const buf = this.segment!.subarray(0, this.segmentLength);
    this.segment = null;
    this.segmentLength = 0;
    const times = this.ctx.times;
    const t0 = performance.now();
    this.md5.update(buf);
    const t1 = performance.now();
    times?.add('checksum', t1 - t0);
    await this.check?.segment(buf, { hasHeader: this.segmentHasHeader, last, startLine: this.segmentStartLine, transactions: this.segmentTransactions });
    // Mid-envelope, the validator (an xmllint process) still reading: what a kill here leaves behind is tested.
    if (!last) crashPoint('taric-export.validating');
    const t2 = performance.now();
    times?.add('validate-wait', t2 - t1);
    await this.sink.write(buf);
    times?.add('write', performance.now() - t2);
    this.ctx.bytesWritten += buf.length;
    this.ctx.opts.onProgress?.({ transactions: this.ctx.transactionsDone, bytes: this.ctx.bytesWritten });
    this.segmentStartLine = this.lines + 1;
    this.segmentTransactions = 0;
    this.segmentHasHeader = false;
  }
}

/** Render, split, checksum and validate; see the rules at the top of this file. */
export async function buildEnvelopes(opts: BuildEnvelopesOptions): Promise<BuiltEnvelope[]> {
  checkOptions(opts);
  const ctx: Context = {
    opts,
    engine: (opts.validate ?? true) ? resolveXsdEngine(opts.xsdValidator ?? 'auto') : null,
    schemaPath: schemaPathFor(opts.schema ?? 'herald'),
    segmentBytes: opts.segmentBytes ?? DEFAULT_SEGMENT_BYTES,
    bytesWritten: 0,
    transactionsDone: 0,
    times: opts.times ?? null,
  };
  const built: Array<{ envelope: BuiltEnvelope; open: OpenEnvelope }> = [];
  const state: { current: OpenEnvelope | null } = { current: null };
  try {
    await splitIntoEnvelopes(ctx, state, built);
  } catch (err) {
    // The envelope being written (or closed) when the run failed; those
    // already ended are the caller's to clean up.
    state.current?.check?.abort();
    await state.current?.sink.abort?.(err as Error);
    throw err;
  }
  for (const { envelope, open } of built) {
    if (!open.check) continue;
    const t0 = performance.now();
    const r = await open.check.result();
    ctx.times?.add('validate-tail', performance.now() - t0);
    envelope.issueCount = r.count;
    envelope.issues = r.issues;
    envelope.valid = r.count === 0;
    envelope.validationMs = r.ms;
    ctx.times?.add('validate-worker', envelope.validationMs);
  }
  return built.map((b) => b.envelope);
}

async function splitIntoEnvelopes(
  ctx: Context,
  state: { current: OpenEnvelope | null },
  built: Array<{ envelope: BuiltEnvelope; open: OpenEnvelope }>,
): Promise<void> {
  const { opts } = ctx;
  const max = opts.maxEnvelopeBytes;
  let index = 0;
  const close = async (open: OpenEnvelope) => {
    const envelope = await open.close();
    built.push({ envelope, open });
    state.current = null;
    opts.onWritten?.(envelope);
  };
  const render = (tx: SourceTransaction, taricId: number, firstSequence: number) => {
    const t0 = performance.now();
    const r = renderTransaction(tx, taricId, firstSequence);
    ctx.times?.add('render', performance.now() - t0);
    return r;
  };
  for await (const tx of ctx.times ? timedSource(opts.transactions, ctx.times) : opts.transactions) {
    const taricId = opts.firstTaricTransactionId + index++;
    if (taricId > MAX_TARIC_TRANSACTION_ID) {
      throw new RangeError(`TARIC transaction id ${taricId} for transaction ${tx.transactionId} would exceed ${MAX_TARIC_TRANSACTION_ID}`);
    }
    const current = state.current;
    if (current) {
      const r = render(tx, taricId, current.records + 1);
      if (current.sizeWith(r) <= max) {
        await current.add(tx, taricId, r);
        ctx.transactionsDone++;
        continue;
      }
      await close(current);
    }
    const envelopeId = opts.nextEnvelopeId();
    const r = render(tx, taricId, 1);
    const alone = Buffer.byteLength(envelopeHeader(envelopeId)) + r.bytes + ENVELOPE_FOOTER_BYTES;
    if (alone > max) throw new OversizeTransactionError(tx.workbasketId, tx.transactionId, alone, max, taricId, tx.workbasketPosition);
    state.current = await OpenEnvelope.open(ctx, envelopeId);
    await state.current.add(tx, taricId, r);
    ctx.transactionsDone++;
  }
  if (state.current) await close(state.current);
}

/** `source`, adding the time spent waiting for each item to `times` as 'read'. */
async function* timedSource<T>(source: AsyncIterable<T> | Iterable<T>, times: PhaseTimes): AsyncGenerator<T> {
  let t0 = performance.now();
  for await (const item of source) {
    times.add('read', performance.now() - t0);
    yield item;
    t0 = performance.now();
  }
}
