import fc from 'fast-check';

// What the generative test (generative.test.ts) sends: the operations
// (from /openapi.json, plus the hidden admin and form routes), the fields of
// each, hostile values by category, and how a mutated request is built.

export type Loc = 'params' | 'query' | 'headers' | 'body';
export type Key = string | number;

export interface Target {
  loc: Loc;
  /** Where in that part of the request ([] = the whole body). */
  path: Key[];
  /** The field as Herald names it in errors: items[0].quantity, idempotency-key, id. */
  name: string;
  /** The value there is an object: extra and prototype keys go into it. */
  object?: boolean;
}

export interface Op {
  id: string;
  method: 'GET' | 'POST';
  /** With {param} placeholders, as in the OpenAPI document. */
  url: string;
  params: Record<string, string>;
  query: Record<string, unknown>;
  headers: Record<string, string>;
  body?: unknown;
  form?: boolean;
  /** Credentials sent with it (default: the API key). */
  auth?: Record<string, string>;
  /** Statuses the unmutated request answers (checked first, so mutations start from a valid request). */
  baseline: number[];
  /** Fields whose own rule may fire when this one changes (issueDate -> dueDate). */
  related?: Record<string, string[]>;
  /** 4xx that may name no field (a refused login says nothing about which credential was wrong). */
  unnamed?: number[];
  targets: Target[];
}

export const formatName = (path: readonly Key[]): string =>
  path.reduce<string>((out, k) => (typeof k === 'number' ? `${out}[${k}]` : out ? `${out}.${k}` : k), '');

/** Fields of a JSON schema (the OpenAPI request body): objects' members, arrays' first item. */
export function schemaTargets(schema: Record<string, unknown> | undefined, path: Key[] = []): Target[] {
  if (!schema) return [];
  const here: Target[] = [{ loc: 'body', path, name: formatName(path) || 'body', object: schema.type === 'object' }];
  if (schema.type === 'object' && schema.properties) {
    for (const [k, s] of Object.entries(schema.properties as Record<string, Record<string, unknown>>)) here.push(...schemaTargets(s, [...path, k]));
  }
  if (schema.type === 'array' && schema.items) here.push(...schemaTargets(schema.items as Record<string, unknown>, [...path, 0]));
  return here;
}

// A JSON token JSON.stringify cannot write (1e309, -0, 10,000 levels of nesting).
const RAW = Symbol('raw');
export interface Raw {
  [RAW]: string;
}
export const raw = (text: string): Raw => ({ [RAW]: text });
const isRaw = (v: unknown): v is Raw => typeof v === 'object' && v !== null && RAW in v;

/** A key added to an object: own and enumerable even for "__proto__". */
export interface ExtraKey {
  extraKey: string;
  value: unknown;
}

const DEPTH = 10_000;
const deep = (open: string, close: string) => raw(`${open.repeat(DEPTH)}1${close.repeat(DEPTH)}`);

/** Hostile values by category; every category is tried on every field. */
export const CATEGORIES: Record<string, fc.Arbitrary<unknown>> = {
  wrongType: fc.constantFrom<unknown>(null, true, false, [], {}, ['1', 2], 12345, 'text', { a: 1 }),
  numberBoundary: fc.constantFrom<unknown>(0, -1, 2 ** 31, 2 ** 31 - 1, -(2 ** 31) - 1, 2 ** 53, 2 ** 53 - 1, 1.5, 1e-7, raw('1e309'), raw('-1e309'), raw('-0')),
  numericText: fc.constantFrom('0', '-1', '2147483648', '2147483647', '9007199254740992', '1e309', '-0', 'abc', '', ' 1 ', '1,5', '0x10', '+1', 'NaN', 'Infinity', '1.', '.5', '00001'),
  unicodeDigits: fc.constantFrom('١٢٣', '１２３', '٠٫٥', '１．５', '۱۲', '१२', '２０２６-０１-０１', '٢٠٢٦-٠١-٠١', '1٫5'),
  dates: fc.constantFrom('0000-01-01', '2026-13-01', '2026-02-29', '9999-12-31', '9999-12-30', '10000-01-01', '1899-12-31', '1900-01-01', '2026-1-1', '2026-01-01T00:00:00Z'),
  nul: fc.tuple(fc.string({ maxLength: 8 }), fc.string({ maxLength: 8 })).map(([a, b]) => `${a}\u0000${b}`),
  loneSurrogate: fc.tuple(fc.string({ maxLength: 6 }), fc.constantFrom('\ud800', '\udbff', '\udc00', '\udfff'), fc.string({ maxLength: 6 })).map(([a, s, b]) => a + s + b),
  huge: fc.constantFrom('x', '9', 'é', '\u{1F600}').map((c) => c.repeat(Math.ceil(100_000 / c.length))),
  deep: fc.constantFrom(deep('[', ']'), deep('{"a":', '}')),
  anyText: fc.string({ unit: 'binary', maxLength: 60 }),
  extraKeys: fc.record({
    extraKey: fc.constantFrom('__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty', '__defineGetter__', 'extra'),
    value: fc.constantFrom<unknown>({ polluted: true }, { prototype: { polluted: true } }, 1, 'x', null),
  }),
  missing: fc.constant(undefined),
};

export const CATEGORY_NAMES = Object.keys(CATEGORIES);

// Percent-encoding that keeps a lone surrogate as its (invalid) UTF-8 bytes,
// as a hostile client can; encodeURIComponent would throw on it.
export function pctEncode(text: string): string {
  let out = '';
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    const pair = c >= 0xd800 && c <= 0xdbff && i + 1 < text.length && (text.charCodeAt(i + 1) & 0xfc00) === 0xdc00;
    if (pair) {
      out += encodeURIComponent(text.slice(i, i + 2));
      i++;
    } else if (c >= 0xd800 && c <= 0xdfff) {
      out += [0xe0 | (c >> 12), 0x80 | ((c >> 6) & 0x3f), 0x80 | (c & 0x3f)].map((b) => `%${b.toString(16).toUpperCase()}`).join('');
    } else {
      out += encodeURIComponent(text[i]!);
    }
  }
  return out;
}

/** A value as a query, form, path or header string; arrays of it repeat the field. */
function asTexts(value: unknown): string[] {
  if (value === undefined) return [];
  if (isRaw(value)) return [value[RAW]];
  if (Array.isArray(value)) return value.flatMap((v) => (typeof v === 'object' && v !== null ? [JSON.stringify(v)] : asTexts(v)));
  if (typeof value === 'object' && value !== null) return [JSON.stringify(value)];
  return [String(value)];
}

function pairsText(pairs: [string, unknown][]): string {
  return pairs.flatMap(([k, v]) => asTexts(v).map((t) => `${pctEncode(k)}=${pctEncode(t)}`)).join('&');
}

/** JSON text of a value holding Raw tokens and ExtraKeys. */
export function jsonText(value: unknown): string {
  const raws: string[] = [];
  const text = JSON.stringify(value, (_k, v: unknown) => {
    if (isRaw(v)) return `\uE000${raws.push(v[RAW]) - 1}\uE000`;
    return v;
  });
  return (text ?? 'null').replace(/"\uE000(\d+)\uE000"/g, (_m, i: string) => raws[Number(i)]!);
}

export interface Mutation {
  target: Target;
  category: string;
  value: unknown;
}

function setAt(root: unknown, path: Key[], m: Mutation): unknown {
  if (path.length === 0) {
    if (m.category === 'extraKeys' && typeof root === 'object' && root !== null && !Array.isArray(root)) {
      const { extraKey, value } = m.value as ExtraKey;
      const copy = { ...(root as object) };
      Object.defineProperty(copy, extraKey, { value, enumerable: true, configurable: true, writable: true });
      return copy;
    }
    return m.category === 'missing' ? undefined : m.value;
  }
  const [head, ...rest] = path;
  const container = (Array.isArray(root) ? [...root] : typeof root === 'object' && root !== null ? { ...root } : {}) as Record<Key, unknown>;
  const next = setAt(container[head!], rest, m);
  if (next === undefined && !Array.isArray(container)) delete container[head!];
  else container[head!] = next;
  return container;
}

export interface Built {
  method: 'GET' | 'POST';
  url: string;
  headers: Record<string, string>;
  payload?: string;
}

// Characters an HTTP client can put in a header value at all.
const headerSafe = (text: string) => text.replace(/[^\t\x20-\x7e\x80-\xff]/g, '');

/** The op's request with the mutations applied. */
export function build(op: Op, mutations: Mutation[], auth: Record<string, string>): Built {
  const part = { params: { ...op.params } as unknown, query: { ...op.query } as unknown, headers: { ...auth, ...op.headers } as unknown, body: op.body };
  for (const m of mutations) {
    const extra = m.category === 'extraKeys';
    if (m.target.loc === 'body') {
      part.body = setAt(part.body, m.target.path, m);
    } else if (extra && m.target.loc !== 'params') {
      const { extraKey, value } = m.value as ExtraKey;
      (part[m.target.loc] as Record<string, unknown>)[extraKey] = value;
    } else {
      part[m.target.loc] = setAt(part[m.target.loc], m.target.path, extra ? { ...m, category: 'numericText', value: (m.value as ExtraKey).extraKey } : m);
    }
  }
  const params = part.params as Record<string, unknown>;
  const path = op.url.replace(/\{(\w+)\}/g, (_m, name: string) => asTexts(params[name]).map(pctEncode).join(',') || '');
  const query = pairsText(Object.entries(part.query as Record<string, unknown>));
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(part.headers as Record<string, unknown>)) {
    const text = asTexts(v).map(headerSafe).join(', ');
    if (v !== undefined) headers[k] = text;
  }
  const built: Built = { method: op.method, url: query ? `${path}?${query}` : path, headers };
  if (op.method === 'POST') {
    if (op.form) {
      headers['content-type'] = 'application/x-www-form-urlencoded';
      built.payload = pairsText(Object.entries((part.body ?? {}) as Record<string, unknown>));
    } else {
      headers['content-type'] = 'application/json';
      built.payload = jsonText(part.body);
    }
  }
  return built;
}

/** Every form field of a flat form body, and the query members, as targets. */
export function flatTargets(loc: 'query' | 'body', names: readonly string[]): Target[] {
  return names.map((name) => ({ loc, path: [name], name }));
}
