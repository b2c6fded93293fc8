import type { TaricRecord } from '../model.js';
import { getRecordType, getSimpleType, isExportable, type SimpleType } from '../registry/index.js';
import { findForbiddenXmlChar, formatCodePoint } from '../envelope/xml-escape.js';
import { compileXsdPattern } from './xsd-regex.js';

// Value checks that mirror the XSD facets of Herald's registry, so import can
// refuse a bad value with a reason before it is stored, long before an export
// fails validation. Numbers are compared as exact decimal strings (no floats:
// 99999999.99999999 is not representable as a double).
//
// Where XSD is more lenient Herald is deliberately stricter, never looser:
// - non-string values (int, decimal, date, dateTime) must not carry leading
//   or trailing whitespace (XSD would collapse it away);
// - dates take years 0001-9999 only (XSD also allows 5+ digit and negative
//   years; the TARIC Date pattern rules those out anyway).
// test/taric/values.test.ts checks these rules against libxml2 itself.

const INT_MIN = '-2147483648';
const INT_MAX = '2147483647';
const INT_RE = /^[+-]?[0-9]+$/;
const DECIMAL_RE = /^[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)$/;
const DATE_RE = /^([0-9]{4})-([0-9]{2})-([0-9]{2})(Z|[+-](?:0[0-9]|1[0-4]):[0-5][0-9])?$/;
const DATETIME_RE = /^([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.[0-9]+)?(Z|[+-](?:0[0-9]|1[0-4]):[0-5][0-9])?$/;
const XML_SPACE_EDGE = /^[ \t\n\r]|[ \t\n\r]$/;

const patternCache = new Map<string, RegExp>();
function pattern(source: string): RegExp {
  let re = patternCache.get(source);
  if (!re) patternCache.set(source, (re = compileXsdPattern(source)));
  return re;
}

/** A decimal literal split into parts without leading/trailing zeros. */
interface Dec {
  negative: boolean;
  int: string;
  frac: string;
}

function parseDecimal(text: string): Dec {
  const negative = text.startsWith('-');
  const body = text.replace(/^[+-]/, '');
  const [i = '', f = ''] = body.split('.');
  const int = i.replace(/^0+/, '');
  const frac = f.replace(/0+$/, '');
  return { negative: negative && (int !== '' || frac !== ''), int, frac };
}

function compareMagnitude(a: Dec, b: Dec): number {
  if (a.int.length !== b.int.length) return a.int.length < b.int.length ? -1 : 1;
  if (a.int !== b.int) return a.int < b.int ? -1 : 1;
  const width = Math.max(a.frac.length, b.frac.length);
  const fa = a.frac.padEnd(width, '0');
  const fb = b.frac.padEnd(width, '0');
  return fa === fb ? 0 : fa < fb ? -1 : 1;
}

/** Exact comparison of two decimal literals: -1, 0 or 1. */
export function compareDecimals(a: string, b: string): number {
  const da = parseDecimal(a);
  const db = parseDecimal(b);
  if (da.negative !== db.negative) return da.negative ? -1 : 1;
  const m = compareMagnitude(da, db);
  return da.negative ? -m : m;
}

function isLeapYear(y: number): boolean {
  return y % 4 === 0 && (y % 100 !== 0 || y % 400 === 0);
}

function checkCalendarDate(y: string, m: string, d: string): string | null {
  const year = Number(y);
  const month = Number(m);
  const day = Number(d);
  if (year === 0) return 'year 0000 does not exist';
  if (month < 1 || month > 12) return `month ${m} does not exist`;
  const days = [31, isLeapYear(year) ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1]!;
  if (day < 1 || day > days) return `day ${d} does not exist in ${y}-${m}`;
  return null;
}

function checkBase(type: SimpleType, value: string): string | null {
  if (type.base === 'string') return null;
  if (XML_SPACE_EDGE.test(value)) return 'must not start or end with whitespace';
  switch (type.base) {
    case 'int':
      if (!INT_RE.test(value)) return 'must be a whole number';
      if (compareDecimals(value, INT_MIN) < 0 || compareDecimals(value, INT_MAX) > 0) return 'is outside the xs:int range';
      return null;
    case 'decimal':
      return DECIMAL_RE.test(value) ? null : 'must be a decimal number';
    case 'date': {
      const m = DATE_RE.exec(value);
      if (!m) return 'must be a date YYYY-MM-DD';
      return checkCalendarDate(m[1]!, m[2]!, m[3]!);
    }
    case 'dateTime': {
      const m = DATETIME_RE.exec(value);
      if (!m) return 'must be a date and time YYYY-MM-DDThh:mm:ss';
      if (Number(m[4]) > 23 || Number(m[5]) > 59 || Number(m[6]) > 59) return 'has a time of day that does not exist';
      return checkCalendarDate(m[1]!, m[2]!, m[3]!);
    }
  }
}

function characterCount(value: string): number {
  let n = 0;
  for (const _ of value) n++; // code points, as XSD counts them (not UTF-16 units)
  return n;
}

const plural = (n: number) => `${n} character${n === 1 ? '' : 's'}`;

function checkFacets(type: SimpleType, value: string): string | null {
  const numeric = type.base === 'int' || type.base === 'decimal';
  if (type.length !== undefined || type.minLength !== undefined || type.maxLength !== undefined) {
    const n = characterCount(value);
    if (type.length !== undefined && n !== type.length) return `must be exactly ${plural(type.length)} long`;
    if (type.minLength !== undefined && n < type.minLength) return `shorter than ${plural(type.minLength)}`;
    if (type.maxLength !== undefined && n > type.maxLength) return `longer than ${plural(type.maxLength)}`;
  }
  if (type.pattern !== undefined && !pattern(type.pattern).test(value)) return `must match ${type.pattern}`;
  if (type.enumeration !== undefined) {
    // Enumerations of numeric types compare values ("01" equals "1"), as XSD does.
    const ok = numeric ? type.enumeration.some((e) => compareDecimals(e, value) === 0) : type.enumeration.includes(value);
    if (!ok) return `must be one of ${type.enumeration.join(', ')}`;
  }
  if (numeric) {
    if (type.minInclusive !== undefined && compareDecimals(value, type.minInclusive) < 0) return `must be at least ${type.minInclusive}`;
    if (type.minExclusive !== undefined && compareDecimals(value, type.minExclusive) <= 0) return `must be greater than ${type.minExclusive}`;
    if (type.maxInclusive !== undefined && compareDecimals(value, type.maxInclusive) > 0) return `must be at most ${type.maxInclusive}`;
    if (type.fractionDigits !== undefined && parseDecimal(value).frac.length > type.fractionDigits) {
      return `has more than ${type.fractionDigits} decimal places`;
    }
  }
  return null;
}

/** null when `value` is a valid `typeName`, else a short reason. */
export function checkFieldValue(typeName: string, value: string): string | null {
  const type = getSimpleType(typeName);
  if (!type) return `unknown simple type ${typeName}`;
  if (typeof value !== 'string') return 'must be a string';
  const bad = findForbiddenXmlChar(value);
  if (bad) return `contains ${formatCodePoint(bad.codePoint)}, which XML 1.0 cannot carry`;
  return checkBase(type, value) ?? checkFacets(type, value);
}

export interface RecordIssue {
  field: string;
  message: string;
}

/** Every problem with one record: type, update type, unknown/missing fields, bad values. */
export function checkRecord(record: TaricRecord): RecordIssue[] {
  const type = getRecordType(record.type);
  if (!type) return [{ field: 'type', message: `unknown record type "${record.type}"` }];
  const issues: RecordIssue[] = [];
  if (!isExportable(type)) {
    issues.push({ field: 'type', message: `record type ${type.element} has no record code known to Herald, so it cannot be exported` });
  }
  if (record.updateType !== 1 && record.updateType !== 2 && record.updateType !== 3) {
    issues.push({ field: 'update.type', message: 'must be 1 (update), 2 (delete) or 3 (insert)' });
  }
  const fields = record.fields ?? {};
  const known = new Set(type.fields.map((f) => f.name));
  for (const name of Object.keys(fields)) {
    if (!known.has(name)) issues.push({ field: name, message: `is not a field of ${type.element}` });
  }
  for (const def of type.fields) {
    const value = Object.hasOwn(fields, def.name) ? fields[def.name] : undefined;
    if (value === undefined || value === null) {
      if (!def.optional) issues.push({ field: def.name, message: 'is required' });
      continue;
    }
    const reason = checkFieldValue(def.type, value);
    if (reason) issues.push({ field: def.name, message: reason });
  }
  return issues;
}
