import type { SaxesParser } from 'saxes';
import type { ImportProblem } from '../errors.js';
import { SIMPLE_TYPES, type SimpleType } from '../registry/index.js';

// Limits on an XML file being imported, enforced while it streams, so that a
// hostile file is refused after at most one chunk past a limit instead of
// after it has been read (40,000 nested elements took 36 s through saxes's
// namespace look-ups, which walk the open elements; a 200 MB text node was
// buffered whole, 571 MB of RSS, before the 1,000-character check saw it).
// Real TARIC3 files sit far inside every limit: the 46 published files in
// the conformance corpus nest 7 deep, carry at most 3 attributes on an
// element and 1,081 characters in a text.

/**
 * Elements open at once. TARIC3 needs 7: envelope > transaction >
 * app.message > transmission > record > record element > field.
 */
export const MAX_XML_DEPTH = 32;

/** Attributes (namespace declarations included) on one element; real envelopes carry at most 3. */
export const MAX_XML_ATTRIBUTES = 16;

/** Element, attribute, entity and processing-instruction names; the longest TARIC3 name has 40 characters. */
export const MAX_XML_NAME_CHARS = 256;

function longestValue(type: SimpleType): number {
  return type.maxLength ?? type.length ?? 0;
}

/**
 * Characters of text outside a field (whitespace between elements, comments,
 * attribute values, skipped headers): the longest value any TARIC3 field may
 * hold (LongDescription, 20,000).
 */
export const MAX_XML_TEXT_CHARS = Math.max(...Object.values(SIMPLE_TYPES).map((t) => longestValue(t as SimpleType)));

/**
 * Inside a field, the field's own length limit, but never less than this:
 * a code or date a few characters too long is reported by the record checks
 * with every other problem in the file, while text past 1,000 characters in
 * such a field cannot be TARIC3 and stops the import.
 */
export const MIN_FIELD_TEXT_CHARS = 1000;

/** Characters the text of a field of this simple type may reach while streaming. */
export function fieldTextLimit(typeName: string | undefined): number {
  const type = typeName ? (SIMPLE_TYPES as Record<string, SimpleType | undefined>)[typeName] : undefined;
  return Math.max(MIN_FIELD_TEXT_CHARS, type ? longestValue(type) : 0);
}

/** The limit for the text being read now, and what to call it when it is passed. */
export interface TextLimit {
  chars: number;
  /** What is too long outside a field; empty inside one (the problem then names the field). */
  subject: string;
  /** Where the problem is (position, line, field), as the walker knows it. */
  at: Omit<ImportProblem, 'message'>;
}

/** A limit was passed: the import stops at once (nothing after it is read). */
export class XmlLimitError extends Error {
  constructor(readonly problem: ImportProblem) {
    super(problem.message);
    this.name = 'XmlLimitError';
  }
}

export const STOPPED = 'import stopped here: an XML file is never read past a limit';

/** True when `s` has more than `max` characters (code points, as XSD counts). */
export function longerThan(s: string, max: number): boolean {
  if (s.length <= max) return false;
  if (s.length > 2 * max) return true; // each code point is at most two UTF-16 units
  let n = 0;
  for (const _ of s) if (++n > max) return true;
  return false;
}

// saxes keeps the text, name or entity it is reading in these fields until
// the construct ends; they are private, so they are read through this view.
// saxes is pinned (package.json); the hostile-file tests in
// test/taric/xml-limits.test.ts fail if a new version renames them.
interface SaxesBuffers {
  text: string;
  name: string;
  entity: string;
  piTarget: string;
}

/**
 * Called after each write of at most one chunk: refuses a text or a name
 * saxes is still accumulating once it is past its limit, so no construct is
 * ever buffered much past it.
 */
export function checkSaxesBuffers(parser: SaxesParser, text: TextLimit, line: number): void {
  const b = parser as unknown as SaxesBuffers;
  if (longerThan(b.text, text.chars)) {
    throw new XmlLimitError({ ...text.at, message: `${text.subject ? `${text.subject} ` : ''}longer than ${text.chars} characters (${STOPPED})` });
  }
  const name = [b.name, b.entity, b.piTarget].find((s) => s.length > MAX_XML_NAME_CHARS);
  if (name !== undefined) {
    throw new XmlLimitError({ line, message: `a name longer than ${MAX_XML_NAME_CHARS} characters (${STOPPED})` });
  }
}
