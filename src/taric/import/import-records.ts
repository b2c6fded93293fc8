import type { Knex } from 'knex';
import type { TaricRecord } from '../model.js';
import { getRecordType, isExportable } from '../registry/index.js';
import { checkRecord } from './values.js';
import { ImportError, type ImportProblem, type ImportWarning } from '../errors.js';
import { insertRecords, insertTransactions, insertWorkbasket, type NewRecord } from '../store.js';

// What the JSON and the XML importer share: the per-record checks against the
// registry, the problem list (every problem up to a cap, so one run shows the
// author all of them), and the batch writer that stores a workbasket inside
// the caller's database transaction.

/** Enough to fix a file in one pass without flooding a terminal. */
export const MAX_REPORTED_PROBLEMS = 100;

export class ProblemList {
  readonly items: ImportProblem[] = [];
  omitted = 0;

  constructor(private readonly cap = MAX_REPORTED_PROBLEMS) {}

  add(p: ImportProblem): void {
    if (this.items.length < this.cap) this.items.push(p);
    else this.omitted += 1;
  }

  get empty(): boolean {
    return this.items.length === 0 && this.omitted === 0;
  }

  throwIfAny(): void {
    if (!this.empty) throw new ImportError(this.items, this.omitted);
  }
}

/** Normalisations, one per kind (`key`), with the first place and how often it happened; at most `cap` kinds. */
export class WarningList {
  private readonly byKey = new Map<string, ImportWarning>();
  omitted = 0;

  constructor(private readonly cap = MAX_REPORTED_PROBLEMS) {}

  add(key: string, w: ImportProblem): void {
    const seen = this.byKey.get(key);
    if (seen) seen.count += 1;
    else if (this.byKey.size < this.cap) this.byKey.set(key, { ...w, count: 1 });
    else this.omitted += 1;
  }

  get items(): ImportWarning[] {
    const items = [...this.byKey.values()];
    if (this.omitted > 0) items.push({ message: `and ${this.omitted} more of other kinds`, count: this.omitted });
    return items;
  }

  /** A strict import refuses any normalisation: the warnings become the problems. */
  throwIfStrict(strict: boolean | undefined): void {
    if (!strict || (this.byKey.size === 0 && this.omitted === 0)) return;
    const problems = [...this.byKey.values()].map(({ count, ...p }) => ({ ...p, message: `${p.message} (refused by --strict${count > 1 ? `; ${count} times` : ''})` }));
    throw new ImportError(problems, this.omitted);
  }
}

export interface RecordPosition {
  transaction: number;
  record: number;
  line?: number;
}

/**
 * Checks one record against the registry: known type, exportable (has a
 * record code), and every field known, present when required and well formed.
 * Returns true when the record can be stored.
 */
export function checkImportedRecord(record: TaricRecord, at: RecordPosition, problems: ProblemList): boolean {
  const where = { transaction: at.transaction, record: at.record, recordType: record.type, ...(at.line !== undefined ? { line: at.line } : {}) };
  const type = getRecordType(record.type);
  if (!type) {
    problems.add({ ...where, message: `unknown record type "${record.type}"` });
    return false;
  }
  if (!isExportable(type)) {
    problems.add({
      ...where,
      message: `record type ${record.type} has no known TARIC record code, so Herald cannot export it; leave it out of the workbasket`,
    });
    return false;
  }
  const issues = checkRecord(record);
  for (const issue of issues) problems.add({ ...where, field: issue.field, message: issue.message });
  return issues.length === 0;
}

export interface ImportResult {
  workbasketId: number;
  transactions: number;
  records: number;
  /** What was read other than as written (stored anyway); empty for a file that needed none. */
  warnings: ImportWarning[];
}

/**
 * Stores a workbasket's transactions and records in batches of `batchSize`
 * records. Records must arrive in order (transaction position, then record
 * position); a transaction row is inserted with the batch holding its first
 * record, so even a transaction of 100,000 records never sits in memory whole.
 */
export class WorkbasketWriter {
  private pending: Array<{ transaction: number; record: number; value: TaricRecord }> = [];
  private current: { position: number; id: number } | null = null;
  transactions = 0;
  records = 0;

  private constructor(
    private readonly trx: Knex.Transaction,
    readonly workbasketId: number,
    private readonly batchSize: number,
  ) {}

  static async open(trx: Knex.Transaction, w: { title: string; reason: string }, batchSize = 1000): Promise<WorkbasketWriter> {
    const wb = await insertWorkbasket(trx, w);
    return new WorkbasketWriter(trx, wb.id, batchSize);
  }

  add(transaction: number, record: number, value: TaricRecord): void {
    this.pending.push({ transaction, record, value });
  }

  get full(): boolean {
    return this.pending.length >= this.batchSize;
  }

  async flush(): Promise<void> {
    if (this.pending.length === 0) return;
    const ids = new Map<number, number>();
    if (this.current) ids.set(this.current.position, this.current.id);
    const fresh = [...new Set(this.pending.map((p) => p.transaction))].filter((p) => !ids.has(p));
    if (fresh.length > 0) {
      for (const row of await insertTransactions(this.trx, this.workbasketId, fresh)) ids.set(row.position, row.id);
      this.transactions += fresh.length;
    }
    const rows: NewRecord[] = this.pending.map((p) => ({ transactionId: ids.get(p.transaction)!, position: p.record, record: p.value }));
    await insertRecords(this.trx, rows);
    this.records += rows.length;
    const last = this.pending[this.pending.length - 1]!;
    this.current = { position: last.transaction, id: ids.get(last.transaction)! };
    this.pending = [];
  }

  async finish(warnings: WarningList): Promise<ImportResult> {
    await this.flush();
    return { workbasketId: this.workbasketId, transactions: this.transactions, records: this.records, warnings: warnings.items };
  }
}
