import { SaxesParser } from 'saxes';

// A tiny element tree for reading XML back in tests. saxes (pure JS), not
// libxml2-wasm: that lives in the validation worker only (see
// src/taric/envelope/validate.ts).

export interface XmlElement {
  /** Qualified name as written, e.g. "oub:record". */
  name: string;
  local: string;
  uri: string;
  attrs: Record<string, string>;
  children: XmlElement[];
  /** Text directly inside this element (entities decoded). */
  text: string;
  line: number;
}

export function parseXml(xml: string): XmlElement {
  const parser = new SaxesParser({ xmlns: true, position: true });
  const stack: XmlElement[] = [];
  let root: XmlElement | undefined;
  parser.on('opentag', (tag) => {
    const attrs: Record<string, string> = {};
    for (const [k, a] of Object.entries(tag.attributes)) attrs[k] = typeof a === 'string' ? a : a.value;
    const el: XmlElement = { name: tag.name, local: tag.local ?? tag.name, uri: tag.uri ?? '', attrs, children: [], text: '', line: parser.line };
    stack.at(-1)?.children.push(el);
    stack.push(el);
    root ??= el;
  });
  parser.on('text', (t) => {
    const top = stack.at(-1);
    if (top) top.text += t;
  });
  parser.on('closetag', () => {
    stack.pop();
  });
  parser.on('error', (err) => {
    throw err;
  });
  parser.write(xml).close();
  if (!root) throw new Error('no root element');
  return root;
}

export function child(el: XmlElement, local: string): XmlElement {
  const c = el.children.find((x) => x.local === local);
  if (!c) throw new Error(`${el.name} has no ${local}`);
  return c;
}

export function children(el: XmlElement, local: string): XmlElement[] {
  return el.children.filter((x) => x.local === local);
}
