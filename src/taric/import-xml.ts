import fs from 'node:fs';
import type { Knex } from 'knex';
import { SaxesParser, type SaxesTagNS } from 'saxes';
import type { TaricRecord, UpdateType } from './model.js';
import { getRecordType } from './registry/index.js';
import { ProblemList, WorkbasketWriter, checkImportedRecord, type ImportResult } from './import-records.js';

// Imports a TARIC3 envelope as the EU and HMRC publish them. Streaming (saxes,
// 64 KB chunks, records flushed to Postgres in batches between chunks), so a
// 40 MB envelope needs memory for one batch, not for the document.
//
// Elements are matched by local name: publishers bind the envelope and
// message namespaces to different prefixes (env:, oub:, ns2:, the default
// namespace), and no TARIC3 element name is used by both namespaces. The
// envelope's own transaction and sequence numbers are not kept: Herald
// allocates new ones when it exports.

const HEADER_FIELDS = new Set(['transaction.id', 'record.code', 'subrecord.code', 'record.sequence.number', 'update.type']);
/** Envelope-level elements that carry no records (headers, status reports). */
const SKIPPED = new Set(['header', 'status']);

interface OpenRecord {
  line: number;
  header: Record<string, string>;
  type: string | null;
  fields: Record<string, string>;
  broken: boolean;
}

export interface XmlImportOptions {
  title: string;
  reason?: string;
}

export type XmlSource = string | AsyncIterable<string | Buffer>;

/**
 * Parses and checks the envelope while storing it inside one database
 * transaction; any problem (malformed XML, unknown type or field, bad value,
 * mismatched record code) rolls everything back and is reported with its
 * transaction/record position, line and field. `source` is a file path or a
 * stream of text.
 */
export async function importXmlWorkbasket(db: Knex, source: XmlSource, opts: XmlImportOptions): Promise<ImportResult> {
  return db.transaction(async (trx) => {
    const writer = await WorkbasketWriter.open(trx, { title: opts.title, reason: opts.reason ?? '' });
    const problems = new ProblemList();
    const walker = new EnvelopeWalker(problems, (t, r, record) => {
      // After the first problem nothing more is stored (it will all be rolled
      // back), but parsing goes on to report every problem in one run.
      if (problems.empty) writer.add(t, r, record);
    });
    const parser = new SaxesParser({ xmlns: true, position: true });
    let broken = false;
    parser.on('opentag', (tag) => {
      if (!broken) walker.open(tag, parser.line);
    });
    parser.on('closetag', (tag) => {
      if (!broken) walker.close(tag);
    });
    parser.on('text', (text) => {
      if (!broken) walker.text(text);
    });
    parser.on('cdata', (text) => {
      if (!broken) walker.text(text);
    });
    // Only saxes' own well-formedness errors arrive here (an error thrown by a
    // handler above propagates out of write() instead). The first one ends
    // the walk: what follows a syntax error cannot be placed reliably.
    parser.on('error', (err) => {
      if (!broken) problems.add({ line: parser.line, message: `not well-formed XML: ${err.message.replace(/^(undefined:)?\d+:\d+:\s*/, '')}` });
      broken = true;
    });

    // Bytes are decoded here (not by the stream) so that invalid UTF-8 is an
    // error instead of silently becoming U+FFFD in a stored description.
    const decoder = new TextDecoder('utf-8', { fatal: true });
    const chunks = typeof source === 'string' ? fs.createReadStream(source, { highWaterMark: 64 * 1024 }) : source;
    for await (const chunk of chunks) {
      const text = decodeChunk(decoder, chunk, problems);
      if (text === null) {
        broken = true;
        break;
      }
      parser.write(text);
      if (broken) break;
      if (writer.full && problems.empty) await writer.flush();
    }
    if (!broken) {
      if (decodeChunk(decoder, null, problems) === null) broken = true;
      else parser.close();
    }
    if (!broken) walker.finish();
    problems.throwIfAny();
    return writer.finish();
  });
}

function decodeChunk(decoder: TextDecoder, chunk: string | Buffer | null, problems: ProblemList): string | null {
  if (typeof chunk === 'string') return chunk;
  try {
    return chunk === null ? decoder.decode() : decoder.decode(chunk, { stream: true });
  } catch (err) {
    if ((err as { code?: unknown }).code !== 'ERR_ENCODING_INVALID_ENCODED_DATA') throw err;
    problems.add({ message: 'the file is not valid UTF-8' });
    return null;
  }
}

/** The envelope structure as a small state machine over a stack of local names. */
class EnvelopeWalker {
  private stack: string[] = [];
  private skipDepth = -1;
  private transaction = 0;
  private recordInTransaction = 0;
  private record: OpenRecord | null = null;
  private textBuffer: string | null = null;
  private sawEnvelope = false;

  constructor(
    private readonly problems: ProblemList,
    private readonly emit: (transaction: number, record: number, value: TaricRecord) => void,
  ) {}

  open(tag: SaxesTagNS, line: number): void {
    const name = tag.local;
    const parent = this.stack[this.stack.length - 1];
    const depth = this.stack.length;
    this.stack.push(name);
    if (this.skipDepth >= 0) return;
    const at = this.position(line);

    if (depth === 0) {
      if (name !== 'envelope') this.fail({ line, message: `the root element must be an envelope, not <${tag.name}>` });
      this.sawEnvelope = true;
      return;
    }
    if (SKIPPED.has(name) && (parent === 'envelope' || parent === 'transaction')) return this.skip();
    switch (parent) {
      case 'envelope':
        if (name !== 'transaction') return this.unexpected(tag, line);
        this.transaction += 1;
        this.recordInTransaction = 0;
        return;
      case 'transaction':
        return name === 'app.message' ? undefined : this.unexpected(tag, line);
      case 'app.message':
        return name === 'transmission' ? undefined : this.unexpected(tag, line);
      case 'transmission':
        if (name !== 'record') return this.unexpected(tag, line);
        this.recordInTransaction += 1;
        this.record = { line, header: {}, type: null, fields: {}, broken: false };
        return;
      case 'record': {
        const rec = this.record!;
        if (HEADER_FIELDS.has(name)) {
          this.textBuffer = '';
          return;
        }
        if (rec.type !== null) {
          rec.broken = true;
          this.problems.add({ ...this.position(line), recordType: rec.type, message: `a record holds one record element, found a second <${tag.name}>` });
          return this.skip();
        }
        rec.type = name;
        return;
      }
      default:
        break;
    }
    const rec = this.record;
    if (rec && rec.type !== null && parent === rec.type && this.stack[depth - 2] === 'record') {
      if (name in rec.fields) {
        rec.broken = true;
        this.problems.add({ ...at, recordType: rec.type, field: name, message: 'appears more than once' });
      }
      this.textBuffer = '';
      return;
    }
    if (rec && rec.type !== null) {
      rec.broken = true;
      this.problems.add({ ...at, recordType: rec.type, field: parent, message: `must hold text, not the element <${tag.name}>` });
      return this.skip();
    }
    this.unexpected(tag, line);
  }

  text(text: string): void {
    if (this.skipDepth < 0 && this.textBuffer !== null) this.textBuffer += text;
  }

  close(tag: SaxesTagNS): void {
    const name = tag.local;
    const depth = this.stack.length - 1;
    this.stack.pop();
    if (this.skipDepth >= 0) {
      if (depth === this.skipDepth) this.skipDepth = -1;
      return;
    }
    const parent = this.stack[this.stack.length - 1];
    const rec = this.record;
    if (rec && this.textBuffer !== null) {
      if (parent === 'record') rec.header[name] = this.textBuffer;
      else rec.fields[name] = this.textBuffer;
      this.textBuffer = null;
      return;
    }
    if (name === 'record' && parent === 'transmission' && rec) {
      this.finishRecord(rec);
      this.record = null;
    } else if (name === 'transaction' && parent === 'envelope' && this.recordInTransaction === 0) {
      this.problems.add({ transaction: this.transaction, message: 'has no records' });
    }
  }

  finish(): void {
    if (this.sawEnvelope && this.transaction === 0 && this.problems.empty) {
      this.problems.add({ message: 'the envelope has no transactions' });
    }
  }

  private finishRecord(rec: OpenRecord): void {
    const at = { transaction: this.transaction, record: this.recordInTransaction, line: rec.line };
    if (rec.type === null) {
      this.problems.add({ ...at, message: 'has no record element (such as <footnote.type>)' });
      return;
    }
    const where = { ...at, recordType: rec.type };
    let ok = !rec.broken;
    const updateType = rec.header['update.type'];
    if (updateType === undefined || !['1', '2', '3'].includes(updateType)) {
      this.problems.add({ ...where, field: 'update.type', message: updateType === undefined ? 'is missing' : 'must be 1, 2 or 3' });
      ok = false;
    }
    const type = getRecordType(rec.type);
    if (type && type.recordCode !== null) {
      const code = `${rec.header['record.code'] ?? '?'}/${rec.header['subrecord.code'] ?? '?'}`;
      if (code !== `${type.recordCode}/${type.subrecordCode}`) {
        this.problems.add({
          ...where,
          field: 'record.code',
          message: `record.code/subrecord.code ${code} do not match ${rec.type} (${type.recordCode}/${type.subrecordCode})`,
        });
        ok = false;
      }
    }
    const record: TaricRecord = { type: rec.type, updateType: Number(updateType ?? 3) as UpdateType, fields: rec.fields };
    if (checkImportedRecord(record, at, this.problems) && ok) this.emit(at.transaction, at.record, record);
  }

  private position(line: number): { transaction?: number; record?: number; line: number } {
    return {
      ...(this.transaction > 0 ? { transaction: this.transaction } : {}),
      ...(this.record ? { record: this.recordInTransaction } : {}),
      line,
    };
  }

  private unexpected(tag: SaxesTagNS, line: number): void {
    const parent = this.stack[this.stack.length - 2] ?? '';
    this.fail({ ...this.position(line), message: `unexpected element <${tag.name}> inside <${parent}>` });
  }

  private fail(p: { line: number; message: string; transaction?: number; record?: number }): void {
    if (this.record) this.record.broken = true;
    this.problems.add(p);
    this.skip();
  }

  /** Ignores the element just opened and everything inside it. */
  private skip(): void {
    this.skipDepth = this.stack.length - 1;
  }
}
