import type { SaxesTagNS } from 'saxes';
import type { TaricRecord, UpdateType } from '../model.js';
import { getRecordType } from '../registry/index.js';
import { checkImportedRecord, type ProblemList, type WarningList } from './import-records.js';
import { HEADER_FIELDS, Normalisations, type RecordSeen } from './import-xml-normalise.js';
import { fieldTextLimit, longerThan, MAX_XML_TEXT_CHARS, XmlLimitError, STOPPED, type TextLimit } from './xml-limits.js';

// The TARIC3 envelope layout (envelope > transaction > app.message >
// transmission > record > header fields + one record element > fields),
// walked event by event for import-xml.ts. Problems are added to the list
// with transaction/record positions and the line; each complete, valid record
// is handed to `emit` in document order. What it reads other than as written
// (import-xml-normalise.ts) goes to the warning list.

const HEADER_NAMES = new Set(HEADER_FIELDS.map(([name]) => name));
/** Envelope-level elements that carry no records (headers, status reports). */
const SKIPPED = new Set(['header', 'status']);

interface OpenRecord extends RecordSeen {
  line: number;
  fields: Record<string, string>;
  broken: boolean;
}

/** The envelope structure as a small state machine over a stack of local names. */
export class EnvelopeWalker {
  private stack: string[] = [];
  private skipDepth = -1;
  private transaction = 0;
  private recordInTransaction = 0;
  private record: OpenRecord | null = null;
  private textBuffer: string | null = null;
  /** The limit of the field whose text is being read (textBuffer is not null). */
  private textLimitNow: TextLimit | null = null;
  private lastLine = 1;
  private sawEnvelope = false;
  private readonly normalise: Normalisations;

  constructor(
    private readonly problems: ProblemList,
    warnings: WarningList,
    private readonly emit: (transaction: number, record: number, value: TaricRecord) => void,
  ) {
    this.normalise = new Normalisations(warnings);
  }

  open(tag: SaxesTagNS, line: number): void {
    const name = tag.local;
    const parent = this.stack[this.stack.length - 1];
    const depth = this.stack.length;
    this.stack.push(name);
    this.lastLine = line;
    if (this.skipDepth >= 0) return;

    if (depth === 0) {
      if (name !== 'envelope') return this.fail({ line, message: `the root element must be an envelope, not <${tag.name}>` });
      this.sawEnvelope = true;
      return this.normalise.element(tag, depth, { line });
    }
    if (SKIPPED.has(name) && (parent === 'envelope' || parent === 'transaction')) {
      this.normalise.element(tag, depth, this.position(line), false);
      return this.skip();
    }
    switch (parent) {
      case 'envelope':
        if (name !== 'transaction') return this.unexpected(tag, line);
        this.transaction += 1;
        this.recordInTransaction = 0;
        return this.normalise.element(tag, depth, this.position(line));
      case 'transaction':
        return name === 'app.message' ? this.normalise.element(tag, depth, this.position(line)) : this.unexpected(tag, line);
      case 'app.message':
        return name === 'transmission' ? this.normalise.element(tag, depth, this.position(line)) : this.unexpected(tag, line);
      case 'transmission':
        if (name !== 'record') return this.unexpected(tag, line);
        this.recordInTransaction += 1;
        this.record = { line, header: {}, type: null, fields: {}, broken: false, order: [], fieldOrder: [] };
        return this.normalise.element(tag, depth, this.position(line));
      case 'record': {
        const rec = this.record!;
        if (HEADER_NAMES.has(name)) {
          if (name in rec.header) {
            rec.broken = true;
            this.problems.add({ ...this.position(line), field: name, message: 'appears more than once' });
          }
          rec.order.push([name, line]);
          this.normalise.element(tag, depth, this.position(line));
          return this.startText(name, undefined, line);
        }
        if (rec.type !== null) {
          rec.broken = true;
          this.problems.add({ ...this.position(line), recordType: rec.type, message: `a record holds one record element, found a second <${tag.name}>` });
          return this.skip();
        }
        rec.type = name;
        rec.order.push(['*', line]);
        return this.normalise.element(tag, depth, { ...this.position(line), recordType: name });
      }
      default:
        break;
    }
    const rec = this.record;
    if (rec && rec.type !== null && parent === rec.type && this.stack[depth - 2] === 'record') {
      if (name in rec.fields) {
        rec.broken = true;
        this.problems.add({ ...this.position(line), recordType: rec.type, field: name, message: 'appears more than once' });
      }
      rec.fieldOrder.push([name, line]);
      this.normalise.element(tag, depth, { ...this.position(line), recordType: rec.type, field: name });
      return this.startText(name, getRecordType(rec.type)?.fields.find((f) => f.name === name)?.type, line);
    }
    if (rec && rec.type !== null) {
      rec.broken = true;
      this.problems.add({ ...this.position(line), recordType: rec.type, field: parent, message: `must hold text, not the element <${tag.name}>` });
      return this.skip();
    }
    this.unexpected(tag, line);
  }

  text(text: string): void {
    if (this.skipDepth >= 0) return;
    if (this.textBuffer === null) {
      const parent = this.stack[this.stack.length - 1];
      if (parent !== undefined) this.normalise.text(text, this.position(this.lastLine), parent);
      return;
    }
    this.textBuffer += text;
    // Text, entities and CDATA sections arrive as separate pieces: their sum counts.
    const limit = this.textLimitNow!;
    if (longerThan(this.textBuffer, limit.chars)) {
      throw new XmlLimitError({ ...limit.at, message: `longer than ${limit.chars} characters (${STOPPED})` });
    }
  }

  /** Elements open now. */
  get depth(): number {
    return this.stack.length;
  }

  /** The limit on the text saxes is reading now: the open field's, else any text's. */
  textLimit(): TextLimit {
    return this.textLimitNow ?? { chars: MAX_XML_TEXT_CHARS, subject: 'a text, comment or attribute value', at: this.position(this.lastLine) };
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
      this.textLimitNow = null;
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
    this.normalise.record(rec, where);
    let ok = !rec.broken;
    const updateType = rec.header['update.type'];
    if (updateType === undefined) {
      this.problems.add({ ...where, field: 'update.type', message: 'is missing' });
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
    // A value other than exactly 1, 2 or 3 ("01", " 1", "99") becomes NaN, which
    // checkRecord reports once; a missing one is reported above, not again.
    const updateNumber = updateType === undefined ? 3 : ['1', '2', '3'].includes(updateType) ? Number(updateType) : Number.NaN;
    const record: TaricRecord = { type: rec.type, updateType: updateNumber as UpdateType, fields: rec.fields };
    if (checkImportedRecord(record, at, this.problems) && ok) this.emit(at.transaction, at.record, record);
  }

  private startText(field: string, typeName: string | undefined, line: number): void {
    this.textBuffer = '';
    const recordType = this.record?.type;
    const at = { ...this.position(line), ...(recordType ? { recordType } : {}), field };
    this.textLimitNow = { chars: fieldTextLimit(typeName), subject: '', at };
  }

  /** Where the parser is: transaction and record positions when inside them, and the line. */
  position(line: number): { transaction?: number; record?: number; line: number } {
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
