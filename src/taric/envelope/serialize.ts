import type { SourceTransaction, TaricRecord } from '../model.js';
import { getRecordType, isExportable, type RecordType } from '../registry/index.js';
import { escapeAttribute, escapeText, ForbiddenXmlCharError } from './xml-escape.js';
import { ENVELOPE_NS, MESSAGE_NS } from './xsd.js';

// The TARIC3 envelope text, built by string concatenation (measured: a
// 40 MB envelope renders in about half a second this way; xmlbuilder2 takes
// 25 s and 2 GB). Layout, chosen so a line number names one element:
//
//   <?xml version="1.0" encoding="UTF-8"?>
//   <env:envelope xmlns="…MESSAGE:1.0" xmlns:env="…ENVELOPE:1.0" id="230001">
//   <env:transaction id="{taric transaction id}">
//   <env:app.message id="{n}"><oub:transmission xmlns:oub=… xmlns:env=…><oub:record>
//   <oub:transaction.id>…</oub:transaction.id>          one line per element,
//   …                                                    no indentation
//   <oub:footnote.type>
//   <oub:footnote.type.id>AA</oub:footnote.type.id>
//   </oub:footnote.type></oub:record></oub:transmission></env:app.message>
//   </env:transaction>
//   </env:envelope>
//
// Values go out exactly as stored (escaped), so nothing is reformatted; the
// serializer does not check them (validation does), but it refuses what it
// cannot write faithfully: unknown types or fields, types without a record
// code, and characters XML 1.0 forbids.

export const HEADER_LINES = 2;
export const ENVELOPE_FOOTER = '</env:envelope>\n';
export const ENVELOPE_FOOTER_BYTES = Buffer.byteLength(ENVELOPE_FOOTER);

export function envelopeHeader(envelopeId: string): string {
  return `<?xml version="1.0" encoding="UTF-8"?>\n<env:envelope xmlns="${MESSAGE_NS}" xmlns:env="${ENVELOPE_NS}" id="${escapeAttribute(envelopeId)}">\n`;
}

export class UnexportableRecordError extends Error {
  constructor(
    readonly workbasketId: number,
    readonly transactionId: number,
    /** 1-based position of the record in its transaction. */
    readonly recordPosition: number,
    readonly recordType: string,
    readonly field: string | undefined,
    reason: string,
    options?: { cause?: unknown },
  ) {
    super(
      `cannot export workbasket ${workbasketId}, transaction ${transactionId}, record ${recordPosition} (${recordType})` +
        `${field ? `, field ${field}` : ''}: ${reason}`,
      options,
    );
    this.name = 'UnexportableRecordError';
  }
}

interface FieldPlan {
  name: string;
  open: string;
  close: string;
}

interface RecordPlan {
  codes: string;
  open: string;
  close: string;
  fields: FieldPlan[];
  names: Set<string>;
}

const plans = new Map<string, RecordPlan>();

function planFor(type: RecordType): RecordPlan {
  let plan = plans.get(type.element);
  if (!plan) {
    plan = {
      codes: `<oub:record.code>${type.recordCode}</oub:record.code>\n<oub:subrecord.code>${type.subrecordCode}</oub:subrecord.code>\n`,
      open: `<oub:${type.element}>\n`,
      close: `</oub:${type.element}></oub:record></oub:transmission></env:app.message>\n`,
      fields: type.fields.map((f) => ({ name: f.name, open: `<oub:${f.name}>`, close: `</oub:${f.name}>\n` })),
      names: new Set(type.fields.map((f) => f.name)),
    };
    plans.set(type.element, plan);
  }
  return plan;
}

const TRANSMISSION_OPEN = `"><oub:transmission xmlns:oub="${MESSAGE_NS}" xmlns:env="${ENVELOPE_NS}"><oub:record>\n<oub:transaction.id>`;
/** Lines of one record besides its fields: opening, 5 header elements, type open, closing. */
const RECORD_FIXED_LINES = 8;

export interface RenderedTransaction {
  text: string;
  /** Exact UTF-8 byte length of text. */
  bytes: number;
  records: number;
  lines: number;
}

/**
 * One transaction as envelope text. Record sequence numbers (and app.message
 * ids) start at firstSequence, so the same transaction renders to a different
 * size depending on where in its envelope it lands.
 */
export function renderTransaction(tx: SourceTransaction, taricTransactionId: number, firstSequence: number): RenderedTransaction {
  const tid = String(taricTransactionId);
  let text = `<env:transaction id="${tid}">\n`;
  let lines = 2;
  let seq = firstSequence;
  for (let i = 0; i < tx.records.length; i++) {
    const record = tx.records[i]!;
    const plan = recordPlan(tx, record, i);
    const fields = record.fields;
    let body = '';
    let written = 0;
    for (const f of plan.fields) {
      const value = fields[f.name];
      if (value === undefined || value === null) continue;
      body += f.open + escapeValue(tx, record, i, f.name, value) + f.close;
      written++;
    }
    if (written !== definedCount(fields)) unknownField(tx, record, i, plan);
    text +=
      `<env:app.message id="${seq}${TRANSMISSION_OPEN}${tid}</oub:transaction.id>\n${plan.codes}` +
      `<oub:record.sequence.number>${seq}</oub:record.sequence.number>\n` +
      `<oub:update.type>${escapeValue(tx, record, i, 'updateType', String(record.updateType))}</oub:update.type>\n` +
      plan.open + body + plan.close;
    lines += RECORD_FIXED_LINES + written;
    seq++;
  }
  text += '</env:transaction>\n';
  return { text, bytes: Buffer.byteLength(text), records: tx.records.length, lines };
}

function recordPlan(tx: SourceTransaction, record: TaricRecord, index: number): RecordPlan {
  const type = getRecordType(record.type);
  const fail = (reason: string): never => {
    throw new UnexportableRecordError(tx.workbasketId, tx.transactionId, index + 1, String(record.type), undefined, reason);
  };
  if (!type) return fail(`unknown record type "${record.type}"`);
  if (!isExportable(type)) return fail(`record type ${type.element} has no record code known to Herald, so it cannot be exported`);
  return planFor(type);
}

function escapeValue(tx: SourceTransaction, record: TaricRecord, index: number, field: string, value: unknown): string {
  const fail = (reason: string, cause?: unknown): never => {
    throw new UnexportableRecordError(tx.workbasketId, tx.transactionId, index + 1, record.type, field, reason, { cause });
  };
  if (typeof value !== 'string') return fail(`value must be a string, got ${typeof value}`);
  try {
    return escapeText(value);
  } catch (err) {
    if (err instanceof ForbiddenXmlCharError) return fail(err.message, err);
    throw err;
  }
}

function definedCount(fields: Record<string, unknown>): number {
  let n = 0;
  for (const k in fields) if (fields[k] !== undefined && fields[k] !== null) n++;
  return n;
}

function unknownField(tx: SourceTransaction, record: TaricRecord, index: number, plan: RecordPlan): never {
  const name = Object.keys(record.fields).find((k) => !plan.names.has(k)) ?? '?';
  throw new UnexportableRecordError(tx.workbasketId, tx.transactionId, index + 1, record.type, name, `is not a field of ${record.type}`);
}
