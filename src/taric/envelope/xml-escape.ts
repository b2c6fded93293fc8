// Escaping for the envelope writer. Decisions (tested in
// test/taric/serialize.test.ts):
// - Text: & < > become entities ('>' too, so "]]>" can never appear).
//   \n and \r become &#10; / &#13;: a literal \r would be turned into \n by
//   every parser (end-of-line normalisation), and keeping every element on
//   its own line lets a validation error's line number name the element.
//   Quotes stay literal in text: they need no escaping there.
// - Attributes (always double-quoted): & < > " and \t \n \r (which attribute
//   value normalisation would turn into spaces) become references.
// - Characters XML 1.0 cannot carry at all (C0 controls other than tab, LF,
//   CR; U+FFFE, U+FFFF; unpaired surrogates) are REFUSED, not escaped: no
//   escape exists for them in XML 1.0 (&#1; is itself ill-formed), and
//   dropping or replacing them would silently change a legal text.

/** Anything the fast path must not copy through unchanged. */
const TEXT_ATTENTION = /[&<>\n\r\u0000-\u0008\u000B\u000C\u000E-\u001F\uD800-\uDFFF\uFFFE\uFFFF]/;
const TEXT_REPLACE = /[&<>\n\r]/g;
const ATTR_ATTENTION = /[&<>"\t\n\r\u0000-\u0008\u000B\u000C\u000E-\u001F\uD800-\uDFFF\uFFFE\uFFFF]/;
const ATTR_REPLACE = /[&<>"\t\n\r]/g;
const FORBIDDEN = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

const ENTITIES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  '\t': '&#9;',
  '\n': '&#10;',
  '\r': '&#13;',
};
const replaceEntity = (c: string) => ENTITIES[c]!;

export class ForbiddenXmlCharError extends Error {
  constructor(
    readonly codePoint: number,
    readonly index: number,
  ) {
    super(`contains ${formatCodePoint(codePoint)} at character ${index + 1}, which XML 1.0 cannot carry`);
    this.name = 'ForbiddenXmlCharError';
  }
}

export function formatCodePoint(cp: number): string {
  return `U+${cp.toString(16).toUpperCase().padStart(4, '0')}`;
}

/** The first character XML 1.0 forbids, or null when the text is clean. */
export function findForbiddenXmlChar(text: string): { codePoint: number; index: number } | null {
  const m = FORBIDDEN.exec(text);
  return m ? { codePoint: m[0].charCodeAt(0), index: m.index } : null;
}

function assertAllowed(text: string): void {
  const bad = findForbiddenXmlChar(text);
  if (bad) throw new ForbiddenXmlCharError(bad.codePoint, bad.index);
}

/** Element content; throws ForbiddenXmlCharError for characters XML 1.0 forbids. */
export function escapeText(text: string): string {
  if (!TEXT_ATTENTION.test(text)) return text;
  assertAllowed(text);
  return text.replace(TEXT_REPLACE, replaceEntity);
}

/** A double-quoted attribute value; throws ForbiddenXmlCharError likewise. */
export function escapeAttribute(text: string): string {
  if (!ATTR_ATTENTION.test(text)) return text;
  assertAllowed(text);
  return text.replace(ATTR_REPLACE, replaceEntity);
}
