import { Decimal } from 'decimal.js';
import { z } from 'zod';
import { BIGINT_ID_MAX, INT4_MAX } from './column-limits.js';

// Boundary types: what a value from outside (HTTP body, path, query, form,
// CLI argument, a stored payload read back) must look like before any of it
// reaches arithmetic or a column. Each type is bounded by the column it
// feeds, so Postgres never sees a value it would refuse (22003 out of range,
// 22008 date overflow, 22021 NUL in text, 22P02 bad number): those become a
// 400 naming the field here instead of a 500 there. docs/decisions/0004.
//
// Every schema reports the first problem only (later checks guard on the
// earlier ones), so a message never comes from arithmetic on a value already
// known to be malformed.

export { BIGINT_ID_MAX, INT4_MAX };

/** The dates Herald accepts. The upper end leaves one day of room (see DATE_LIMIT). */
export const DATE_MIN = '1900-01-01';
export const DATE_MAX = '9999-12-30';
/** The last date any computed date (to + 1 day, issueDate + 30 days) may reach. */
export const DATE_LIMIT = '9999-12-31';

const NUL = /\u0000/;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** Why a text cannot be stored (Postgres text holds neither NUL nor half a character), or null. */
export function textProblem(value: string): string | null {
  if (NUL.test(value)) return 'must not contain U+0000 (NUL)';
  if (LONE_SURROGATE.test(value)) return 'must not contain a lone surrogate (not valid Unicode)';
  return null;
}

type Check<T> = (value: T) => string | null;

/** One custom check, run only on a value of the right type. */
function checked<S extends z.ZodType>(schema: S, check: Check<z.output<S>>): S {
  return schema.superRefine((value, ctx) => {
    const problem = check(value);
    if (problem) ctx.addIssue({ code: 'custom', message: problem, input: value });
  }) as unknown as S;
}

export interface TextOptions {
  max: number;
  /** Default 0. With trim, counted after trimming. */
  min?: number;
  /** Trim white space first (names, descriptions). */
  trim?: boolean;
}

/** A string fit for a text column: at most `max` characters, no NUL, no lone surrogate. */
export function text(opts: TextOptions) {
  const min = opts.min ?? 0;
  return checked(z.string({ error: 'must be a string' }), (raw) => {
    const v = opts.trim ? raw.trim() : raw;
    if (v.length > opts.max) return `must be at most ${opts.max} characters`;
    if (v.length < min) return min === 1 ? 'must not be empty' : `must be at least ${min} characters`;
    return textProblem(v);
  }).transform((v) => (opts.trim ? v.trim() : v));
}

const ID_MESSAGE = (max: number) => `must be a positive id (a whole number from 1 to ${max})`;

/** An id in a JSON body: a number, whole, 1..INT4_MAX (an int4/serial column). */
export function intId(max = INT4_MAX) {
  return z
    .number({ error: ID_MESSAGE(max) })
    .int({ error: ID_MESSAGE(max) })
    .min(1, { error: ID_MESSAGE(max) })
    .max(max, { error: ID_MESSAGE(max) });
}

/**
 * A whole number written as ASCII digits (a path segment, a query or form
 * field, a CLI argument): no sign, no space, no exponent, no other script's
 * digits; then range-checked. The pattern comes first, so "1e3", " 1 ", ""
 * and "١٢" never reach Number().
 */
export function digitsInt(opts: { min: number; max: number; message?: string }) {
  const message = opts.message ?? `must be a whole number from ${opts.min} to ${opts.max}`;
  const maxDigits = String(opts.max).length;
  return z
    .string({ error: message })
    .regex(new RegExp(`^[0-9]{1,${maxDigits}}$`), { error: message })
    .transform(Number)
    .pipe(z.number().int().min(opts.min, { error: message }).max(opts.max, { error: message }));
}

/** An int4 id in a path, query or form field. */
export const idText = (max = INT4_MAX) => digitsInt({ min: 1, max, message: ID_MESSAGE(max) });

/** An id given either way (a JSON number, or digits from a CLI --param or a form). */
export const idTextOrNumber = (max = INT4_MAX) => z.union([intId(max), idText(max)], { error: ID_MESSAGE(max) });

/** Plain decimal shape: ASCII digits with an optional point (and nothing else). */
const PLAIN_DECIMAL = /^[0-9]{1,40}(\.[0-9]{1,40})?$/;

/** true when decimal.js may safely parse the value (guards cross-field arithmetic in refinements). */
export function isPlainDecimal(value: unknown): value is string {
  return typeof value === 'string' && PLAIN_DECIMAL.test(value);
}

export interface DecimalOptions {
  /** Digits before the point (the NUMERIC column's precision minus scale, or less). */
  intDigits: number;
  /** Digits after the point (the column's scale, or less). */
  scale: number;
  /** Shown in messages: "2.5". */
  example: string;
  /** The value must be greater than this. */
  above?: string;
  /** The value must be at most this. */
  atMost?: string;
}

/**
 * A non-negative decimal string for a NUMERIC column, checked by pattern
 * (ASCII digits, at most intDigits before the point and scale after) before
 * decimal.js ever sees it, then against its bounds.
 */
export function decimalText(opts: DecimalOptions) {
  const shape = new RegExp(`^[0-9]{1,${opts.intDigits}}(\\.[0-9]{1,${opts.scale}})?$`);
  const like = `must be a decimal string like "${opts.example}"`;
  return checked(z.string({ error: like }), (v) => {
    if (!shape.test(v)) return `${like} (ASCII digits, at most ${opts.intDigits} before the point and ${opts.scale} after)`;
    if (opts.above !== undefined && !new Decimal(v).greaterThan(opts.above)) return `must be greater than ${opts.above}`;
    if (opts.atMost !== undefined && new Decimal(v).greaterThan(opts.atMost)) return `must be at most ${opts.atMost}`;
    return null;
  });
}

const DATE_SHAPE = /^([0-9]{4})-([0-9]{2})-([0-9]{2})$/;
const DATE_MESSAGE = `must be a date YYYY-MM-DD from ${DATE_MIN} to ${DATE_MAX}`;

/** Why a string is not an accepted date, or null: shape, a real calendar day, within DATE_MIN..DATE_MAX. */
export function dateProblem(value: string): string | null {
  const m = DATE_SHAPE.exec(value);
  if (!m) return DATE_MESSAGE;
  if (value < DATE_MIN || value > DATE_MAX) return DATE_MESSAGE;
  const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const day = new Date(Date.UTC(y, mo - 1, d));
  if (day.getUTCMonth() !== mo - 1 || day.getUTCDate() !== d) return `must be a date that exists (${value} does not)`;
  return null;
}

/** A calendar date YYYY-MM-DD within DATE_MIN..DATE_MAX. */
export function isoDate(opts: { requiredMessage?: string } = {}) {
  return checked(
    z.string({ error: (iss) => (iss.input === undefined && opts.requiredMessage ? opts.requiredMessage : DATE_MESSAGE) }),
    dateProblem,
  );
}

/** date + days, or null when the result would leave DATE_MIN..DATE_LIMIT. */
export function addDays(date: string, days: number): string | null {
  const d = new Date(`${date}T00:00:00Z`);
  if (Number.isNaN(d.getTime())) return null;
  d.setUTCDate(d.getUTCDate() + days);
  const out = d.toISOString().slice(0, 10);
  return d.getUTCFullYear() >= 1900 && d.getUTCFullYear() <= 9999 && out >= DATE_MIN && out <= DATE_LIMIT ? out : null;
}

// A relative path on this site: one '/', then visible ASCII only. No '//' or
// '/\' (browsers read both as another host), no CR/LF (header injection), no
// space, nothing a Location header cannot carry.
const LOCAL_PATH = /^\/(?![/\\])[\x21-\x7e]*$/;

/**
 * Where a redirect may go: `target` when it is a local ASCII path under
 * `under` (e.g. /admin), else `fallback`. A crafted next/back never becomes
 * an error page or an open redirect; the user just lands on the fallback.
 */
export function safeRedirect(target: unknown, opts: { under: string; fallback: string }): string {
  if (typeof target !== 'string' || target.length > 2000 || !LOCAL_PATH.test(target) || target.includes('\\')) return opts.fallback;
  const rest = target.slice(opts.under.length);
  return target.startsWith(opts.under) && (rest === '' || /^[/?#]/.test(rest)) ? target : opts.fallback;
}
