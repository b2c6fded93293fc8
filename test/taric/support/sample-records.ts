import type { SourceTransaction, TaricRecord, UpdateType } from '../../../src/taric/model.js';
import { getRecordType, getSimpleType, isExportable, RECORD_TYPES, type RecordType, type SimpleType } from '../../../src/taric/registry/index.js';
import { checkFieldValue } from '../../../src/taric/import/values.js';
import { parseXsdRegex, type RegexNode } from '../../../src/taric/import/xsd-regex.js';

// Valid sample data built from the registry's facets: every record type, every
// simple type. Used by the tests (a record of each type must validate against
// both schemas), by the envelope benchmark and by anything that needs
// plausible TARIC data without a fixture file. Deterministic for a seed.
// Test code, so it lives under test/; the benchmarks in scripts/bench import
// it from here (the compiled build emits it to dist/test/taric/support/).

/** Small deterministic PRNG (mulberry32): same seed, same samples. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// Text that exercises escaping and multi-byte UTF-8: & < > quotes, accents
// (2 bytes), euro sign (3 bytes), a musical symbol outside the BMP (4 bytes).
const PHRASES = [
  'Live animals',
  'of a weight > 300 kg & < 500 kg',
  'so-called "pure-bred" breeding',
  "other than the farmer's own",
  'café crème',
  'price per 100 € net',
  'notation 𝄞 sample',
  'tab\there',
];

function richText(chars: number, rnd: () => number): string {
  let out = '';
  let n = 0;
  while (n < chars) {
    const phrase = PHRASES[Math.floor(rnd() * PHRASES.length)]!;
    for (const c of `${phrase} `) {
      if (n >= chars) break;
      out += c;
      n++;
    }
  }
  return out;
}

const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';

function fromRegex(node: RegexNode, rnd: () => number): string {
  const pick = (n: number) => Math.floor(rnd() * n);
  switch (node.kind) {
    case 'alt': return fromRegex(node.branches[pick(node.branches.length)]!, rnd);
    case 'seq': return node.items.map((i) => fromRegex(i, rnd)).join('');
    case 'char': return String.fromCodePoint(node.cp);
    case 'any': return ALNUM[pick(ALNUM.length)]!;
    case 'escape':
      if (node.name === 'd') return String(pick(10));
      throw new Error(`sample-records: no sample for \\${node.name}`);
    case 'repeat': {
      const max = node.max ?? node.min + 3;
      const count = node.min + pick(max - node.min + 1);
      let s = '';
      for (let i = 0; i < count; i++) s += fromRegex(node.node, rnd);
      return s;
    }
    case 'class': {
      if (node.negated) throw new Error('sample-records: no sample for a negated class');
      const item = node.items[pick(node.items.length)]!;
      if ('escape' in item) {
        if (item.escape === 'd') return String(pick(10));
        throw new Error(`sample-records: no sample for \\${item.escape} in a class`);
      }
      return String.fromCodePoint(item.from + pick(item.to - item.from + 1));
    }
  }
}

const DAY_MS = 86_400_000;
const BASE_DAY = Date.UTC(2020, 0, 1);

function candidate(type: SimpleType, rnd: () => number, textLength: number): string {
  const pick = (n: number) => Math.floor(rnd() * n);
  if (type.enumeration) return type.enumeration[pick(type.enumeration.length)]!;
  if (type.base === 'date' || type.base === 'dateTime') {
    const iso = new Date(BASE_DAY + pick(3650) * DAY_MS + (type.base === 'dateTime' ? pick(DAY_MS / 1000) * 1000 : 0)).toISOString();
    return type.base === 'date' ? iso.slice(0, 10) : iso.slice(0, 19);
  }
  if (type.pattern) return fromRegex(parseXsdRegex(type.pattern), rnd);
  if (type.base === 'int') {
    const min = Number(type.minInclusive ?? 0);
    const max = Number(type.maxInclusive ?? 2147483647);
    return String(min + pick(Math.min(max - min + 1, 1_000_000)));
  }
  if (type.base === 'decimal') {
    const digits = type.fractionDigits ?? 2;
    const frac = digits === 0 ? '' : `.${String(pick(10 ** Math.min(digits, 6))).padStart(Math.min(digits, 6), '0')}`;
    return `${1 + pick(999)}${frac}`;
  }
  const length = type.length ?? Math.min(type.maxLength ?? textLength, textLength);
  if ((type.maxLength ?? 0) >= 100) return richText(length, rnd);
  let s = '';
  for (let i = 0; i < length; i++) s += ALNUM[pick(ALNUM.length)];
  return s;
}

export interface SampleOptions {
  /** Characters in free-text fields (descriptions); default 40. */
  textLength?: number;
}

/** A valid value of the simple type (checked with checkFieldValue). */
export function sampleValue(typeName: string, seed: number, opts: SampleOptions = {}): string {
  const type = getSimpleType(typeName);
  if (!type) throw new Error(`sample-records: unknown simple type ${typeName}`);
  const rnd = prng(seed);
  for (let attempt = 0; attempt < 50; attempt++) {
    const value = candidate(type, rnd, opts.textLength ?? 40);
    if (checkFieldValue(typeName, value) === null) return value;
  }
  throw new Error(`sample-records: could not build a valid ${typeName}`);
}

export interface SampleRecordOptions extends SampleOptions {
  /** Which optional fields to fill: all, none, or a seed-dependent mix (default). */
  optional?: 'all' | 'none' | 'some';
  updateType?: UpdateType;
}

export function sampleRecord(typeOrElement: RecordType | string, seed: number, opts: SampleRecordOptions = {}): TaricRecord {
  const type = typeof typeOrElement === 'string' ? getRecordType(typeOrElement) : typeOrElement;
  if (!type) throw new Error(`sample-records: unknown record type ${String(typeOrElement)}`);
  const rnd = prng(seed);
  const fields: Record<string, string> = {};
  type.fields.forEach((f, i) => {
    const mode = opts.optional ?? 'some';
    if (f.optional && (mode === 'none' || (mode === 'some' && rnd() < 0.5))) return;
    fields[f.name] = sampleValue(f.type, seed * 131 + i, opts);
  });
  return { type: type.element, updateType: opts.updateType ?? ((1 + (seed % 3)) as UpdateType), fields };
}

/** Record types that export can render (all but those without a record code). */
export const EXPORTABLE_TYPES: readonly RecordType[] = RECORD_TYPES.filter(isExportable);

export interface SampleTransactionOptions extends SampleRecordOptions {
  count: number;
  workbasketId?: number;
  firstTransactionId?: number;
  /** Records per transaction: a fixed number or a [min, max] range; default [1, 6]. */
  records?: number | [number, number];
  types?: readonly RecordType[];
  seed?: number;
}

/** Lazily generated transactions (a generator: nothing is held in memory). */
export function* sampleTransactions(opts: SampleTransactionOptions): Generator<SourceTransaction> {
  const rnd = prng(opts.seed ?? 1);
  const types = opts.types ?? EXPORTABLE_TYPES;
  const [lo, hi] = typeof opts.records === 'number' ? [opts.records, opts.records] : (opts.records ?? [1, 6]);
  for (let t = 0; t < opts.count; t++) {
    const n = lo + Math.floor(rnd() * (hi - lo + 1));
    const records: TaricRecord[] = [];
    for (let r = 0; r < n; r++) {
      records.push(sampleRecord(types[Math.floor(rnd() * types.length)]!, Math.floor(rnd() * 2 ** 31), opts));
    }
    yield { transactionId: (opts.firstTransactionId ?? 1) + t, workbasketId: opts.workbasketId ?? 1, records };
  }
}
