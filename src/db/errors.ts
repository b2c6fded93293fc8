// SQLSTATE codes Herald branches on; branch on err.code, never the message.
export const PG_UNIQUE_VIOLATION = '23505';
export const PG_FOREIGN_KEY_VIOLATION = '23503';
export const PG_CHECK_VIOLATION = '23514';
export const PG_SERIALIZATION_FAILURE = '40001';
export const PG_DEADLOCK_DETECTED = '40P01';
export const PG_LOCK_NOT_AVAILABLE = '55P03';

export function pgCode(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && 'code' in err ? String((err as { code: unknown }).code) : undefined;
}

export function isUniqueViolation(err: unknown, constraint?: string): boolean {
  if (pgCode(err) !== PG_UNIQUE_VIOLATION) return false;
  return constraint === undefined || (err as { constraint?: string }).constraint === constraint;
}

// Condition names (PostgreSQL appendix A) of the codes clients may meet.
const CONDITIONS: Record<string, string> = {
  '22001': 'string_data_right_truncation',
  '22003': 'numeric_value_out_of_range',
  '22007': 'invalid_datetime_format',
  '22008': 'datetime_field_overflow',
  '22012': 'division_by_zero',
  '22021': 'character_not_in_repertoire',
  '22P02': 'invalid_text_representation',
  '22P05': 'untranslatable_character',
  '23502': 'not_null_violation',
  '23503': 'foreign_key_violation',
  '23505': 'unique_violation',
  '23514': 'check_violation',
  '40001': 'serialization_failure',
  '40P01': 'deadlock_detected',
  '42703': 'undefined_column',
  '42P01': 'undefined_table',
  '53300': 'too_many_connections',
  '55P03': 'lock_not_available',
  '57014': 'query_canceled',
  '57P01': 'admin_shutdown',
};

/** An error the server sent (pg's and PGlite's DatabaseError): a SQLSTATE and a severity. */
export function isPgError(err: unknown): err is Error & { code: string; severity: string } {
  return err instanceof Error && /^[0-9A-Z]{5}$/.test(pgCode(err) ?? '') && typeof (err as { severity?: unknown }).severity === 'string';
}

/** SQLSTATE class 22: a value the column or function refuses. The same value fails the same way on every try. */
export function isDataException(err: unknown): boolean {
  return isPgError(err) && err.code.startsWith('22');
}

/**
 * A database error as clients and the job ledger may see it: the condition
 * and its SQLSTATE, never the message (knex puts the statement and its values
 * in front of it) nor the server's detail.
 */
export function describePgError(err: Error & { code: string }): string {
  const what = err.code.startsWith('22') ? 'the database refused a value' : 'database error';
  return `${what}: ${CONDITIONS[err.code] ?? 'SQLSTATE'} (${err.code})`;
}
