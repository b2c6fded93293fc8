// How a libxml2 message becomes an issue's text and element, for both
// validators (the wasm worker thread and the xmllint process): they must name
// problems the same way. Pure string work, so the worker thread can load it.

const NAMESPACES: Array<[string, string]> = [
  ['{urn:publicid:-:DGTAXUD:TARIC:MESSAGE:1.0}', 'oub:'],
  ['{urn:publicid:-:DGTAXUD:GENERAL:ENVELOPE:1.0}', 'env:'],
];

/** The message trimmed, with the two TARIC namespaces shortened to oub:/env:. */
export function tidyMessage(message: string): string {
  let m = message.trim();
  for (const [uri, prefix] of NAMESPACES) m = m.split(uri).join(prefix);
  return m;
}

// libxml2 prefixes schema errors with the node it means, in the fixed form
// "Element '{ns}name'" (xmlSchemaFormatNodeForError); that names the element
// more precisely than the line can when a file puts several on one line.
const ELEMENT_IN_MESSAGE = /^Element '(?:\{[^}]*\})?([^']+)'/;

export function elementInMessage(message: string): string | undefined {
  return ELEMENT_IN_MESSAGE.exec(message)?.[1];
}
