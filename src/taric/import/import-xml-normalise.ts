import type { SaxesTagNS } from 'saxes';
import type { ImportProblem } from '../errors.js';
import { ENVELOPE_NS, MESSAGE_NS } from '../envelope/xsd.js';
import { getRecordType } from '../registry/index.js';
import type { WarningList } from './import-records.js';
import { checkFieldValue } from './values.js';

// What the schema refuses but the XML import can still read, reported as
// warnings (a strict import refuses them) instead of being normalised in
// silence. Seen in published files: envelope id "1" (tamato), app.message in
// the message namespace (trade-tariff-backend), fields out of schema order.
// Each kind is reported once, at its first place, with a count.

const XMLNS_NS = 'http://www.w3.org/2000/xmlns/';
const XSI_NS = 'http://www.w3.org/2001/XMLSchema-instance';
const XML_NS = 'http://www.w3.org/XML/1998/namespace';

/** The published envelope.xsd's rule (EU daily files: 5 digits; Herald's own: 6). */
const ENVELOPE_ID = /^[0-9]{5,6}$/;
/** Herald's import schema for transaction and app.message ids (TransactionId: 1..99999999). */
const MESSAGE_ID = /^[1-9][0-9]{0,7}$/;

/** Record header elements in schema order, with their simple types. */
export const HEADER_FIELDS: ReadonlyArray<readonly [string, string]> = [
  ['transaction.id', 'TransactionId'],
  ['record.code', 'RecordCode'],
  ['subrecord.code', 'SubRecordCode'],
  ['record.sequence.number', 'RecordSequenceNumber'],
  ['update.type', 'UpdateType'],
];
const HEADER_INDEX = new Map(HEADER_FIELDS.map(([name], i) => [name, i]));
/** Header elements that only number things in the file; Herald numbers its own, so they are not kept. */
const NUMBERING = ['transaction.id', 'record.sequence.number'];

type Where = Omit<ImportProblem, 'message'>;

/** A record as the walker saw it, for the order checks. */
export interface RecordSeen {
  type: string | null;
  header: Record<string, string>;
  /** Header element names, and '*' for the record element, in document order, with their lines. */
  order: Array<[string, number]>;
  /** Field names in document order, with their lines. */
  fieldOrder: Array<[string, number]>;
}

export class Normalisations {
  constructor(private readonly warnings: WarningList) {}

  /**
   * An element the walker accepted, `depth` 0 being the envelope: its
   * namespace, its attributes (`attributes` false for skipped headers and
   * status reports) and the ids the schema requires.
   */
  element(tag: SaxesTagNS, depth: number, where: Where, attributes = true): void {
    const expected = depth <= 2 ? ENVELOPE_NS : MESSAGE_NS;
    if (tag.uri !== expected) {
      const actual = tag.uri ? `in namespace ${tag.uri}` : 'in no namespace';
      this.warnings.add(`ns:${tag.local}:${tag.uri}`, { ...where, message: `<${tag.name}> is ${actual}, not ${expected}; read by its name` });
    }
    if (!attributes) return;
    const hasId = depth <= 2 && (tag.local === 'envelope' || tag.local === 'transaction' || tag.local === 'app.message');
    for (const a of Object.values(tag.attributes)) {
      if (a.uri === XMLNS_NS || a.uri === XSI_NS || (a.uri === XML_NS && tag.local === 'transmission') || (hasId && a.name === 'id')) continue;
      this.warnings.add(`attr:${tag.local}:${a.name}`, { ...where, message: `attribute ${a.name} on <${tag.name}> is not in the schema; ignored` });
    }
    if (!hasId) return;
    const id = tag.attributes.id?.value;
    const pattern = tag.local === 'envelope' ? ENVELOPE_ID : MESSAGE_ID;
    if (id !== undefined && pattern.test(id)) return;
    const what = id === undefined ? `<${tag.name}> has no id` : `<${tag.name}> id "${id}" does not match ${pattern.source.slice(1, -1)}`;
    this.warnings.add(`id:${tag.local}`, { ...where, message: `${what}; ignored: Herald gives what it exports ids of its own` });
  }

  /** Text outside any field (the schema allows none there): dropped. */
  text(text: string, where: Where, parent: string): void {
    const shown = text.trim();
    if (shown === '') return;
    this.warnings.add(`text:${parent}`, { ...where, message: `text "${shown.length > 40 ? `${shown.slice(0, 40)}…` : shown}" inside <${parent}> is not in the schema; ignored` });
  }

  /** The header and fields of one record: presence, values and order. */
  record(rec: RecordSeen, where: Where): void {
    for (const name of NUMBERING) {
      const value = rec.header[name];
      const reason = value === undefined ? 'is missing' : checkFieldValue(HEADER_FIELDS[HEADER_INDEX.get(name)!]![1], value);
      if (reason !== null) {
        this.warnings.add(`header:${name}`, { ...where, field: name, message: `${reason}; not needed: Herald numbers what it exports` });
      }
    }
    const h = firstInversion(rec.order.map(([n]) => (n === '*' ? HEADER_FIELDS.length : HEADER_INDEX.get(n)!)));
    if (h !== null) {
      const show = (n: string) => (n === '*' ? `<${rec.type}>` : `<${n}>`);
      const [a, line] = rec.order[h]!;
      const [b] = rec.order[h + 1]!;
      this.warnings.add('order:header', { ...where, line, message: `${show(a)} comes before ${show(b)}, against the schema's order; read as if in order` });
    }
    const type = rec.type ? getRecordType(rec.type) : undefined;
    if (!type) return;
    const index = new Map(type.fields.map((f, i) => [f.name, i]));
    const known = rec.fieldOrder.filter(([n]) => index.has(n));
    const f = firstInversion(known.map(([n]) => index.get(n)!));
    if (f !== null) {
      const [a, line] = known[f]!;
      const [b] = known[f + 1]!;
      this.warnings.add(`order:${type.element}`, {
        ...where,
        line,
        message: `field ${a} comes before ${b}, against the schema's order; stored, and exported, in schema order`,
      });
    }
  }
}

/** Index i of the first pair (i, i + 1) out of ascending order, or null. */
function firstInversion(xs: number[]): number | null {
  for (let i = 0; i + 1 < xs.length; i++) if (xs[i]! > xs[i + 1]!) return i;
  return null;
}
