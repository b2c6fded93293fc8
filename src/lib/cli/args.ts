import { InvalidArgumentError } from 'commander';
import { INT4_MAX } from '../column-limits.js';
import { CliError } from './context.js';

// Whole-number arguments and options, checked the same way as the HTTP
// boundary (src/lib/boundary.ts): ASCII digits only, then a range bounded by
// the column or timer the number feeds, so "1e3", "-1", "١٢" or an id past
// int4 never reach Number() or the database.

export interface WholeNumberOptions {
  /** Default 1. */
  min?: number;
  /** Default INT4_MAX (an int4/serial id); BIGINT_ID_MAX for bigserial ids. */
  max?: number;
}

/** The number, or a CliError naming `label`: `LABEL: must be a positive whole number, got "x"`. */
export function parseWholeNumber(label: string, value: string, opts: WholeNumberOptions = {}): number {
  const min = opts.min ?? 1;
  const max = opts.max ?? INT4_MAX;
  if (!/^[0-9]+$/.test(value)) throw new CliError(`${label}: must be a ${min === 1 ? 'positive ' : ''}whole number, got "${value}"`);
  const digits = value.replace(/^0+(?=[0-9])/, '');
  const n = Number(digits);
  if (digits.length > String(max).length || n < min || n > max) throw new CliError(`${label}: must be a whole number from ${min} to ${max}, got "${value}"`);
  return n;
}

/** parseWholeNumber as a commander argument/option parser (commander prints the one line and exits 1). */
export function wholeNumber(label: string, opts: WholeNumberOptions = {}): (value: string) => number {
  return (value) => {
    try {
      return parseWholeNumber(label, value, opts);
    } catch (err) {
      throw new InvalidArgumentError((err as Error).message);
    }
  };
}
