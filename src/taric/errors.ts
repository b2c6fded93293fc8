// Errors of the TARIC workbasket and export code. Each carries a stable
// `code` to branch on (never the message) and its underlying error as `cause`.

/** SQLSTATE raised by the guard triggers of migrations/0001_taric.ts. */
export const PG_WORKBASKET_FROZEN = 'HT001';

export type TaricErrorCode =
  | 'import_invalid'
  | 'workbasket_not_found'
  | 'workbasket_status'
  | 'workbasket_frozen'
  | 'envelope_ids_exhausted'
  | 'envelope_invalid'
  | 'envelope_not_found'
  | 'envelope_mismatch'
  | 'dump_target_not_file';

export class TaricError extends Error {
  constructor(
    readonly code: TaricErrorCode,
    message: string,
    options: { cause?: unknown } = {},
  ) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** Where in the input a problem is, and what it is. */
export interface ImportProblem {
  /** 1-based transaction position in the input, when the problem is inside one. */
  transaction?: number;
  /** 1-based record position within its transaction. */
  record?: number;
  /** Record type element name, when known. */
  recordType?: string;
  field?: string;
  /** Line in the XML file, when importing XML. */
  line?: number;
  message: string;
}

export function formatProblem(p: ImportProblem): string {
  const where: string[] = [];
  if (p.transaction !== undefined) where.push(`transaction ${p.transaction}`);
  if (p.record !== undefined) where.push(`record ${p.record}${p.recordType ? ` (${p.recordType})` : ''}`);
  let text = where.join(', ');
  if (p.line !== undefined) text += `${text ? ' ' : ''}[line ${p.line}]`;
  if (p.field !== undefined) text += `${text ? ': ' : ''}field ${p.field}`;
  return `${text ? `${text}: ` : ''}${p.message}`;
}

/**
 * Something the import read other than as the file says it (a normalisation:
 * an envelope id the schema refuses, an element outside its namespace, fields
 * out of schema order, ...): stored anyway, refused by a strict import. The
 * same kind of normalisation is reported once, with the first place and a count.
 */
export interface ImportWarning extends ImportProblem {
  count: number;
}

export function formatWarning(w: ImportWarning): string {
  return `${formatProblem(w)}${w.count > 1 ? ` (${w.count} times; the first is shown)` : ''}`;
}

/** The input was rejected as a whole; nothing was stored. */
export class ImportError extends TaricError {
  constructor(
    readonly problems: ImportProblem[],
    /** Problems found beyond the reporting cap (not in `problems`). */
    readonly omitted: number,
    options: { cause?: unknown } = {},
  ) {
    const total = problems.length + omitted;
    const lines = problems.map((p) => `  ${formatProblem(p)}`);
    if (omitted > 0) lines.push(`  ... and ${omitted} more`);
    super('import_invalid', `workbasket not imported: ${total} problem${total === 1 ? '' : 's'}\n${lines.join('\n')}`, options);
  }
}

export interface InvalidEnvelope {
  envelopeId: string;
  issues: Array<{ line: number; column?: number; element?: string; message: string }>;
}

/** Rendered envelopes failed schema validation; nothing was stored, no id used. */
export class EnvelopeInvalidError extends TaricError {
  constructor(readonly envelopes: InvalidEnvelope[]) {
    const lines = envelopes.flatMap((e) =>
      e.issues.slice(0, 20).map((i) => `  envelope ${e.envelopeId} line ${i.line}${i.element ? ` <${i.element}>` : ''}: ${i.message}`),
    );
    super('envelope_invalid', `${envelopes.length} envelope(s) failed validation; nothing exported\n${lines.join('\n')}`);
  }
}
