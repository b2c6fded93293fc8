import type { Knex } from 'knex';
import { z } from 'zod';
import type { TaricRecord, UpdateType } from '../model.js';
import { ProblemList, WarningList, WorkbasketWriter, checkImportedRecord, type ImportResult } from './import-records.js';

// A workbasket written by hand or by another tool:
//   {"title", "reason", "transactions": [{"records": [
//     {"type": "footnote.type", "update_type": 3, "fields": {"footnote.type.id": "TN", ...}}]}]}
// Type and field names are TARIC3 element names. The outer shape is checked
// first; then each record on its own, so one bad record does not hide the
// problems of the others.

// Values are strings exactly as they will appear in the XML ("12.500" keeps
// its zeros); whole numbers are accepted for convenience and become their
// decimal digits, but fractions must be strings so that no float rounds them.
const fieldValue = z.union([z.string(), z.number().int()], {
  error: 'must be a string (or a whole number)',
});

const recordShape = z.strictObject({
  type: z.string({ error: 'must be a record type name such as "footnote.type"' }).min(1, 'must not be empty'),
  update_type: z.union([z.literal(1), z.literal(2), z.literal(3)], { error: 'must be 1 (update), 2 (delete) or 3 (insert)' }),
  fields: z.record(z.string(), fieldValue, { error: 'must be an object of field name -> value' }),
});

const workbasketShape = z.strictObject({
  title: z.string({ error: 'must be a string' }).trim().min(1, 'must not be empty').optional(),
  reason: z.string({ error: 'must be a string' }).optional(),
  transactions: z
    .array(
      z.strictObject({
        records: z.array(z.unknown(), { error: 'must be a list of records' }).min(1, 'a transaction needs at least one record'),
      }),
      { error: 'must be a list of transactions' },
    )
    .min(1, 'a workbasket needs at least one transaction'),
});

export interface ImportOptions {
  /** Overrides the file's title. */
  title?: string | undefined;
  /** Refuse the workbasket if reading it needed any normalisation (a whole number read as text). */
  strict?: boolean | undefined;
}

/**
 * Checks a parsed JSON workbasket and, only when it has no problem at all,
 * stores it in one database transaction. Throws ImportError listing every
 * problem (up to a cap) with transaction/record positions and field names.
 */
export async function importJsonWorkbasket(db: Knex, input: unknown, opts: ImportOptions = {}): Promise<ImportResult> {
  const problems = new ProblemList();
  const warnings = new WarningList();
  const shape = workbasketShape.safeParse(input);
  if (!shape.success) {
    for (const issue of shape.error.issues) problems.add(shapeProblem(issue.path, issue.message));
    problems.throwIfAny();
  }
  const doc = shape.data!;
  const title = opts.title?.trim() || doc.title;
  if (!title) problems.add({ field: 'title', message: 'required: give "title" in the file or --title' });

  const transactions: TaricRecord[][] = doc.transactions.map((t, ti) =>
    t.records.flatMap((raw, ri) => {
      const at = { transaction: ti + 1, record: ri + 1 };
      const parsed = recordShape.safeParse(raw);
      if (!parsed.success) {
        const recordType = typeof (raw as { type?: unknown })?.type === 'string' ? (raw as { type: string }).type : undefined;
        for (const issue of parsed.error.issues) {
          const [key, field] = issue.path.map(String);
          problems.add({
            ...at,
            ...(recordType ? { recordType } : {}),
            ...(key === 'fields' && field !== undefined ? { field, message: issue.message } : { message: key ? `${key}: ${issue.message}` : issue.message }),
          });
        }
        return [];
      }
      const record: TaricRecord = {
        type: parsed.data.type,
        updateType: parsed.data.update_type as UpdateType,
        fields: Object.fromEntries(
          Object.entries(parsed.data.fields).map(([field, v]) => {
            if (typeof v === 'number') {
              warnings.add(`number:${parsed.data.type}:${field}`, { ...at, recordType: parsed.data.type, field, message: `the number ${v} was read as the text "${v}"` });
            }
            return [field, String(v)];
          }),
        ),
      };
      return checkImportedRecord(record, at, problems) ? [record] : [];
    }),
  );
  problems.throwIfAny();
  warnings.throwIfStrict(opts.strict);

  return db.transaction(async (trx) => {
    const writer = await WorkbasketWriter.open(trx, { title: title!, reason: doc.reason ?? '' });
    for (const [ti, records] of transactions.entries()) {
      for (const [ri, record] of records.entries()) {
        writer.add(ti + 1, ri + 1, record);
        if (writer.full) await writer.flush();
      }
    }
    return writer.finish(warnings);
  });
}

/** Parses JSON text first, reporting a syntax error as an import problem. */
export async function importJsonText(db: Knex, text: string, opts: ImportOptions = {}): Promise<ImportResult> {
  let input: unknown;
  try {
    input = JSON.parse(text);
  } catch (err) {
    const problems = new ProblemList();
    problems.add({ message: `not valid JSON: ${(err as Error).message}` });
    problems.throwIfAny();
  }
  return importJsonWorkbasket(db, input, opts);
}

function shapeProblem(path: PropertyKey[], message: string): { transaction?: number; message: string } {
  // transactions.<i>.records -> "transaction i+1: records: ..."
  if (path[0] === 'transactions' && typeof path[1] === 'number') {
    const rest = path.slice(2).map(String).join('.');
    return { transaction: path[1] + 1, message: rest ? `${rest}: ${message}` : message };
  }
  return { message: path.length ? `${path.map(String).join('.')}: ${message}` : message };
}
