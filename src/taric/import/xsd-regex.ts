// XSD regular expressions (XML Schema 1.0, appendix F) are not JavaScript
// ones: they are implicitly anchored to the whole value, `^` and `$` are plain
// characters, `\d` means any Unicode decimal digit (\p{Nd}), `.` excludes only
// \n and \r. Rewriting the text with a few replace() calls gets those wrong in
// corner cases, so the pattern is parsed into a small tree and the tree is
// printed as a `u`-flag JavaScript regex. The same tree also produces sample
// values (test/taric/support/sample-records.ts). Constructs the registry does not use
// and that have no exact JavaScript counterpart (\i, \c, block escapes such as
// \p{IsBasicLatin}, class subtraction) are refused loudly rather than guessed.

export type RegexNode =
  | { kind: 'alt'; branches: RegexNode[] }
  | { kind: 'seq'; items: RegexNode[] }
  | { kind: 'repeat'; node: RegexNode; min: number; max: number | null }
  | { kind: 'char'; cp: number }
  | { kind: 'any' }
  | { kind: 'escape'; name: string } // d D s S w W, or p{..} / P{..}
  | { kind: 'class'; negated: boolean; items: ClassItem[] };

export type ClassItem = { from: number; to: number } | { escape: string };

export class XsdRegexError extends Error {
  constructor(pattern: string, reason: string) {
    super(`unsupported XSD pattern "${pattern}": ${reason}`);
    this.name = 'XsdRegexError';
  }
}

const SINGLE_ESCAPES: Record<string, number> = { n: 0x0a, r: 0x0d, t: 0x09 };
const META = '\\|.-^?*+{}()[]';
const MULTI_ESCAPES = 'dDsSwW';

export function parseXsdRegex(pattern: string): RegexNode {
  const cps = Array.from(pattern, (c) => c.codePointAt(0)!);
  let pos = 0;
  const fail = (reason: string): never => {
    throw new XsdRegexError(pattern, `${reason} at position ${pos}`);
  };
  const peek = (): string | undefined => (pos < cps.length ? String.fromCodePoint(cps[pos]!) : undefined);

  function parseAlt(): RegexNode {
    const branches = [parseSeq()];
    while (peek() === '|') {
      pos++;
      branches.push(parseSeq());
    }
    return branches.length === 1 ? branches[0]! : { kind: 'alt', branches };
  }

  function parseSeq(): RegexNode {
    const items: RegexNode[] = [];
    while (pos < cps.length && peek() !== '|' && peek() !== ')') items.push(parsePiece());
    return { kind: 'seq', items };
  }

  function parsePiece(): RegexNode {
    const atom = parseAtom();
    const q = peek();
    if (q === '?') return (pos++, { kind: 'repeat', node: atom, min: 0, max: 1 });
    if (q === '*') return (pos++, { kind: 'repeat', node: atom, min: 0, max: null });
    if (q === '+') return (pos++, { kind: 'repeat', node: atom, min: 1, max: null });
    if (q !== '{') return atom;
    pos++;
    const m = /^(\d+)(,(\d*))?\}/.exec(String.fromCodePoint(...cps.slice(pos, pos + 24)));
    if (!m) fail('bad quantifier');
    pos += m![0].length;
    const min = Number(m![1]);
    const max = m![2] === undefined ? min : m![3] === '' ? null : Number(m![3]);
    if (max !== null && max < min) fail('quantifier max below min');
    return { kind: 'repeat', node: atom, min, max };
  }

  function parseAtom(): RegexNode {
    const c = peek()!;
    if (c === '(') {
      pos++;
      const inner = parseAlt();
      if (peek() !== ')') fail('missing )');
      pos++;
      return inner;
    }
    if (c === '[') return parseClass();
    if (c === '.') return (pos++, { kind: 'any' });
    if (c === '\\') return parseEscape(false) as RegexNode;
    if ('?*+{}()|]'.includes(c)) fail(`unescaped "${c}"`);
    return { kind: 'char', cp: cps[pos++]! };
  }

  // After a backslash: a single character escape, a multi-character one
  // (\d ...), or a category \p{..}.
  function parseEscape(inClass: boolean): RegexNode | ClassItem {
    pos++;
    const c = peek();
    if (c === undefined) return fail('trailing backslash');
    pos++;
    if (c in SINGLE_ESCAPES) return inClass ? { from: SINGLE_ESCAPES[c]!, to: SINGLE_ESCAPES[c]! } : { kind: 'char', cp: SINGLE_ESCAPES[c]! };
    if (META.includes(c)) {
      const cp = c.codePointAt(0)!;
      return inClass ? { from: cp, to: cp } : { kind: 'char', cp };
    }
    if (MULTI_ESCAPES.includes(c)) return inClass ? { escape: c } : { kind: 'escape', name: c };
    if (c === 'p' || c === 'P') {
      const m = /^\{([A-Za-z]+)\}/.exec(String.fromCodePoint(...cps.slice(pos, pos + 40)));
      // General categories (L, Lu, Nd ...) mean the same in both languages;
      // block names (IsBasicLatin) have no JavaScript equivalent.
      if (!m || !/^[A-Z][a-z]?$/.test(m[1]!)) return fail('only \\p{GeneralCategory} is supported');
      pos += m[0].length;
      const name = `${c}{${m[1]}}`;
      return inClass ? { escape: name } : { kind: 'escape', name };
    }
    return fail(`escape \\${c}`);
  }

  function parseClass(): RegexNode {
    pos++;
    const negated = peek() === '^';
    if (negated) pos++;
    const items: ClassItem[] = [];
    let first = true;
    while (peek() !== ']') {
      if (peek() === undefined) fail('missing ]');
      if (peek() === '-' && !first && cps[pos + 1] === 0x5b) fail('class subtraction');
      if (peek() === '[') fail('nested class');
      const start = readClassChar(first);
      first = false;
      if ('escape' in start) {
        items.push(start);
        continue;
      }
      if (peek() === '-' && cps[pos + 1] !== 0x5d) {
        pos++;
        const end = readClassChar(false);
        if ('escape' in end) return fail('range ends in a multi-character escape');
        if (end.from < start.from) fail('range out of order');
        items.push({ from: start.from, to: end.from });
      } else {
        items.push(start);
      }
    }
    pos++;
    if (items.length === 0) fail('empty class');
    return { kind: 'class', negated, items };
  }

  function readClassChar(first: boolean): ClassItem {
    const c = peek()!;
    if (c === '\\') return parseEscape(true) as ClassItem;
    if (c === '[' || (c === '-' && !first && cps[pos + 1] !== 0x5d)) fail(`unescaped "${c}" in class`);
    const cp = cps[pos++]!;
    return { from: cp, to: cp };
  }

  const tree = parseAlt();
  if (pos !== cps.length) fail('unbalanced )');
  return tree;
}

const hex = (cp: number) => `\\u{${cp.toString(16)}}`;
const XML_SPACE = '\\t\\n\\r ';

function escapeToJs(name: string, inClass: boolean, pattern: string): string {
  switch (name) {
    case 'd': return '\\p{Nd}';
    case 'D': return '\\P{Nd}';
    case 's': return inClass ? XML_SPACE : `[${XML_SPACE}]`;
    // XSD \w is "not punctuation, separator or other": not JavaScript's \w.
    case 'w': if (!inClass) return '[^\\p{P}\\p{Z}\\p{C}]'; break;
    case 'S': if (!inClass) return `[^${XML_SPACE}]`; break;
    case 'W': if (!inClass) return '[\\p{P}\\p{Z}\\p{C}]'; break;
    default: return `\\${name}`; // p{..} / P{..}
  }
  throw new XsdRegexError(pattern, `\\${name} inside a character class`);
}

function toJs(node: RegexNode, pattern: string): string {
  switch (node.kind) {
    case 'alt': return node.branches.map((b) => toJs(b, pattern)).join('|');
    case 'seq': return node.items.map((i) => toJs(i, pattern)).join('');
    case 'char': return hex(node.cp);
    case 'any': return '[^\\n\\r]';
    case 'escape': return escapeToJs(node.name, false, pattern);
    case 'repeat': {
      const q = node.max === null ? `{${node.min},}` : node.min === node.max ? `{${node.min}}` : `{${node.min},${node.max}}`;
      return `(?:${toJs(node.node, pattern)})${q}`;
    }
    case 'class': {
      const body = node.items
        .map((i) => ('escape' in i ? escapeToJs(i.escape, true, pattern) : i.from === i.to ? hex(i.from) : `${hex(i.from)}-${hex(i.to)}`))
        .join('');
      return `[${node.negated ? '^' : ''}${body}]`;
    }
  }
}

/** The XSD pattern as an anchored JavaScript RegExp (u flag). */
export function compileXsdPattern(pattern: string): RegExp {
  return new RegExp(`^(?:${toJs(parseXsdRegex(pattern), pattern)})$`, 'u');
}
