import crypto from 'node:crypto';
import { z } from 'zod';
import { isoDate } from '../lib/boundary.js';
import { ReportInputError } from './errors.js';

// Report params: validated per type, then hashed over a canonical JSON so that
// {"from":..,"to":..} and {"to":..,"from":..}, "3" from the CLI and 3 from
// JSON, an omitted optional and ... all give one hash, and so one dedupe key.

/** JSON with object keys sorted at every depth; undefined members dropped (as JSON.stringify does). */
export function canonicalJson(value: unknown): string {
  if (value !== null && typeof value === 'object' && typeof (value as { toJSON?: unknown }).toJSON === 'function') {
    return canonicalJson((value as { toJSON(): unknown }).toJSON());
  }
  if (Array.isArray(value)) return `[${value.map((v) => (v === undefined ? 'null' : canonicalJson(v))).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const obj = value as Record<string, unknown>;
    const members = Object.keys(obj)
      .filter((k) => obj[k] !== undefined)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonicalJson(obj[k])}`);
    return `{${members.join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

export function hashParams(params: unknown): string {
  return crypto.createHash('sha256').update(canonicalJson(params)).digest('hex');
}

/** A date param: YYYY-MM-DD, a real calendar date from 1900-01-01 to 9999-12-30 (so `to + 1 day` in SQL stays a date). */
const dateParam = isoDate({ requiredMessage: 'is required' });

/** from/to, inclusive, to not before from. */
export function dateRange<T extends z.ZodRawShape>(shape: T) {
  return z
    .strictObject({ from: dateParam, to: dateParam, ...shape })
    .refine((p) => {
      const { from, to } = p as unknown as { from: unknown; to: unknown };
      return typeof from !== 'string' || typeof to !== 'string' || to >= from;
    }, { path: ['to'], message: 'must not be before from' });
}

/** Parses with the type's schema; the first problem becomes a ReportInputError naming params.<field>. */
export function parseParams<T>(schema: z.ZodType<T>, input: unknown): T {
  const parsed = schema.safeParse(input ?? {});
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0]!;
  const path = issue.path.map(String);
  if (issue.code === 'unrecognized_keys') {
    return fail(['params', ...path, issue.keys[0]!].join('.'), 'unknown parameter');
  }
  if (path.length === 0 && issue.code === 'invalid_type') return fail('params', 'must be an object of parameters');
  return fail(['params', ...path].join('.'), issue.message);
}

function fail(field: string, message: string): never {
  throw new ReportInputError(field, message);
}

/**
 * `--param k=v` pairs from the CLI into a params object (values stay strings:
 * the type's schema coerces). A repeated key is an error, not "last one wins".
 */
export function paramsFromPairs(pairs: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new ReportInputError('--param', `expected key=value, got "${pair}"`);
    const key = pair.slice(0, eq).trim();
    if (Object.hasOwn(out, key)) throw new ReportInputError(`params.${key}`, 'given more than once');
    out[key] = pair.slice(eq + 1);
  }
  return out;
}
