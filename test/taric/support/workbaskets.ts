import type { Knex } from 'knex';
import type { TaricRecord } from '../../../src/taric/model.js';
import { getRecordType } from '../../../src/taric/registry/index.js';
import { importJsonWorkbasket } from '../../../src/taric/import/import-json.js';
import { setWorkbasketStatusIf } from '../../../src/taric/store.js';

// Test data for the workbasket, export and dump tests: row counts to prove
// "nothing stored", generated workbaskets of valid records, and a minimal
// envelope writer of the test's own (so import tests do not depend on the
// exporter they are checking against).

export interface RowCounts {
  workbaskets: number;
  transactions: number;
  records: number;
  envelopes: number;
  envelope_transactions: number;
}

export async function countRows(db: Knex): Promise<RowCounts> {
  const { rows } = await db.raw(`
    SELECT (SELECT count(*)::int FROM workbaskets) AS workbaskets,
           (SELECT count(*)::int FROM transactions) AS transactions,
           (SELECT count(*)::int FROM records) AS records,
           (SELECT count(*)::int FROM envelopes) AS envelopes,
           (SELECT count(*)::int FROM envelope_transactions) AS envelope_transactions`);
  return rows[0] as RowCounts;
}

/** Two- or three-letter footnote type id for `n` (AA, AB, ... ZZ, AAA, ...). */
export function footnoteTypeId(n: number): string {
  const letters = (k: number, width: number) =>
    Array.from({ length: width }, (_, i) => String.fromCharCode(65 + (Math.floor(k / 26 ** (width - 1 - i)) % 26))).join('');
  return n < 676 ? letters(n, 2) : letters(n - 676, 3);
}

/** A valid footnote type + description transaction; `padding` lengthens the description. */
export function footnoteTransaction(n: number, padding = 0): TaricRecord[] {
  const id = footnoteTypeId(n);
  return [
    { type: 'footnote.type', updateType: 3, fields: { 'footnote.type.id': id, 'validity.start.date': '2026-01-01', 'application.code': '7' } },
    {
      type: 'footnote.type.description',
      updateType: 3,
      fields: { 'footnote.type.id': id, 'language.id': 'EN', description: `Footnote type ${n} & <notes>${'x'.repeat(padding)}` },
    },
  ];
}

/**
 * A footnote with a long description (LongDescription allows 20,000
 * characters): a transaction of about `textLength` + 1,500 bytes in XML, for
 * filling envelopes. `n` makes the footnote id unique (up to 100,000).
 */
export function longFootnoteTransaction(n: number, textLength: number): TaricRecord[] {
  const type = 'TN';
  const id = String(n % 100_000).padStart(5, '0');
  const sid = String(n + 1);
  return [
    { type: 'footnote', updateType: 3, fields: { 'footnote.type.id': type, 'footnote.id': id, 'validity.start.date': '2026-01-01' } },
    {
      type: 'footnote.description.period',
      updateType: 3,
      fields: { 'footnote.description.period.sid': sid, 'footnote.type.id': type, 'footnote.id': id, 'validity.start.date': '2026-01-01' },
    },
    {
      type: 'footnote.description',
      updateType: 3,
      fields: {
        'footnote.description.period.sid': sid,
        'language.id': 'EN',
        'footnote.type.id': type,
        'footnote.id': id,
        description: `Footnote ${n}: ${'lorem ipsum <&> '.repeat(Math.ceil(textLength / 16)).slice(0, textLength)}`,
      },
    },
  ];
}

export interface JsonWorkbasket {
  title?: string;
  reason?: string;
  transactions: Array<{ records: Array<{ type: string; update_type: number; fields: Record<string, string> }> }>;
}

export function toJsonWorkbasket(transactions: TaricRecord[][], title = 'test workbasket'): JsonWorkbasket {
  return {
    title,
    reason: 'test',
    transactions: transactions.map((records) => ({
      records: records.map((r) => ({ type: r.type, update_type: r.updateType, fields: { ...r.fields } })),
    })),
  };
}

export function footnoteWorkbasket(count: number, first = 0, title = `footnotes ${first}..${first + count - 1}`): JsonWorkbasket {
  return toJsonWorkbasket(Array.from({ length: count }, (_, i) => footnoteTransaction(first + i)), title);
}

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

export interface XmlStyle {
  /** Prefix of the envelope namespace ('' = default namespace). */
  env?: string;
  /** Prefix of the message namespace ('' = default namespace). */
  msg?: string;
  /** Override a record's codes: (transaction, record) -> [record.code, subrecord.code]. */
  codes?: (t: number, r: number) => [string, string] | undefined;
}

const ENV_NS = 'urn:publicid:-:DGTAXUD:GENERAL:ENVELOPE:1.0';
const MSG_NS = 'urn:publicid:-:DGTAXUD:TARIC:MESSAGE:1.0';

/** An envelope in the published layout; fields in the record's own order. */
export function xmlEnvelope(transactions: TaricRecord[][], style: XmlStyle = {}): string {
  const e = style.env === '' ? '' : `${style.env ?? 'env'}:`;
  const m = style.msg === '' ? '' : `${style.msg ?? 'oub'}:`;
  const envDecl = style.env === '' ? `xmlns="${ENV_NS}"` : `xmlns:${style.env ?? 'env'}="${ENV_NS}"`;
  const msgDecl = style.msg === '' ? `xmlns="${MSG_NS}"` : `xmlns:${style.msg ?? 'oub'}="${MSG_NS}"`;
  const out: string[] = ['<?xml version="1.0" encoding="UTF-8"?>', `<${e}envelope ${envDecl} id="260001">`];
  let seq = 0;
  transactions.forEach((records, ti) => {
    out.push(`  <${e}transaction id="${ti + 1}">`);
    records.forEach((r, ri) => {
      const type = getRecordType(r.type);
      const [code, sub] = style.codes?.(ti + 1, ri + 1) ?? [type?.recordCode ?? '999', type?.subrecordCode ?? '99'];
      seq += 1;
      out.push(`    <${e}app.message id="${seq}">`);
      out.push(`      <${m}transmission ${msgDecl}>`);
      out.push(`        <${m}record>`);
      out.push(`          <${m}transaction.id>${ti + 1}</${m}transaction.id>`);
      out.push(`          <${m}record.code>${code}</${m}record.code>`);
      out.push(`          <${m}subrecord.code>${sub}</${m}subrecord.code>`);
      out.push(`          <${m}record.sequence.number>${seq}</${m}record.sequence.number>`);
      out.push(`          <${m}update.type>${r.updateType}</${m}update.type>`);
      out.push(`          <${m}${r.type}>`);
      for (const [k, v] of Object.entries(r.fields)) out.push(`            <${m}${k}>${esc(v)}</${m}${k}>`);
      out.push(`          </${m}${r.type}>`);
      out.push(`        </${m}record>`);
      out.push(`      </${m}transmission>`);
      out.push(`    </${e}app.message>`);
    });
    out.push(`  </${e}transaction>`);
  });
  out.push(`</${e}envelope>`);
  return `${out.join('\n')}\n`;
}

/** Stored records of a workbasket, by transaction then record position. */
export async function storedRecords(db: Knex, workbasketId: number): Promise<TaricRecord[][]> {
  const { rows } = await db.raw(
    `SELECT t.position AS tp, r.position AS rp, r.record_type, r.update_type, r.fields
       FROM transactions t JOIN records r ON r.transaction_id = t.id
      WHERE t.workbasket_id = ? ORDER BY t.position, r.position`,
    [workbasketId],
  );
  const out: TaricRecord[][] = [];
  for (const row of rows as Array<{ tp: number; rp: number; record_type: string; update_type: number; fields: Record<string, string> }>) {
    (out[row.tp - 1] ??= []).push({ type: row.record_type, updateType: row.update_type as 1 | 2 | 3, fields: row.fields });
  }
  return out;
}

/** Imports `transactions` as a workbasket and marks it READY_FOR_EXPORT. */
export async function readyWorkbasket(db: Knex, transactions: TaricRecord[][], title = 'ready workbasket'): Promise<number> {
  const { workbasketId } = await importJsonWorkbasket(db, toJsonWorkbasket(transactions, title));
  await setWorkbasketStatusIf(db, workbasketId, 'EDITING', 'READY_FOR_EXPORT');
  return workbasketId;
}

/** The TARIC transaction ids written in an envelope file, in order. */
export function transactionIdsInFile(text: string): number[] {
  return [...text.matchAll(/<env:transaction id="(\d+)">/g)].map((m) => Number(m[1]));
}
