import fs from 'node:fs';
import path from 'node:path';
import type { Knex } from 'knex';
import { SaxesParser } from 'saxes';
import { MAX_REPORTED_PROBLEMS, ProblemList, WarningList, WorkbasketWriter, type ImportResult } from './import-records.js';
import { ImportError } from '../errors.js';
import { validateEnvelopeFile } from '../envelope/validate.js';
import { HERALD_IMPORT_XSD } from '../envelope/xsd.js';
import { EnvelopeWalker } from './import-xml-walker.js';
import { checkSaxesBuffers, MAX_XML_ATTRIBUTES, MAX_XML_DEPTH, STOPPED, XmlLimitError } from './xml-limits.js';

// Imports a TARIC3 envelope as the EU and HMRC publish them. Streaming (saxes,
// 64 KB chunks, records flushed to Postgres in batches between chunks), so a
// 40 MB envelope needs memory for one batch, not for the document.
//
// Elements are matched by local name: publishers bind the envelope and
// message namespaces to different prefixes (env:, oub:, ns2:, the default
// namespace), and no TARIC3 element name is used by both namespaces. The
// envelope's own transaction and sequence numbers are not kept: Herald
// allocates new ones when it exports.

export interface XmlImportOptions {
  title: string;
  reason?: string;
  /**
   * Refuse the file unless it is valid against Herald's import schema
   * (xsd/envelope-import.xsd, checked before anything is read into the
   * database) and needs no normalisation. Needs `source` to be a file path.
   */
  strict?: boolean;
  /** Bytes read so far, after each chunk. */
  onProgress?: (bytesRead: number) => void;
}

export type XmlSource = string | AsyncIterable<string | Buffer>;

/**
 * Parses and checks the envelope while storing it inside one database
 * transaction; any problem (malformed XML, unknown type or field, bad value,
 * mismatched record code) rolls everything back and is reported with its
 * transaction/record position, line and field. `source` is a file path or a
 * stream of text.
 */
export async function importXmlWorkbasket(db: Knex, source: XmlSource, opts: XmlImportOptions): Promise<ImportResult> {
  if (opts.strict) {
    if (typeof source !== 'string') throw new TypeError('a strict XML import validates a file: pass its path');
    await refuseSchemaInvalid(source);
  }
  return db.transaction(async (trx) => {
    const writer = await WorkbasketWriter.open(trx, { title: opts.title, reason: opts.reason ?? '' });
    const problems = new ProblemList();
    const warnings = new WarningList();
    const walker = new EnvelopeWalker(problems, warnings, (t, r, record) => {
      // After the first problem nothing more is stored (it will all be rolled
      // back), but parsing goes on to report every problem in one run.
      if (problems.empty) writer.add(t, r, record);
    });
    const parse = new EnvelopeParser(walker, problems);
    // Bytes are decoded here (not by the stream) so that invalid UTF-8 is an
    // error instead of silently becoming U+FFFD in a stored description.
    const decoder = new TextDecoder('utf-8', { fatal: true });
    const chunks = typeof source === 'string' ? fs.createReadStream(source, { highWaterMark: CHUNK_BYTES }) : source;
    let ok = true;
    let bytesRead = 0;
    for await (const chunk of chunks) {
      bytesRead += typeof chunk === 'string' ? Buffer.byteLength(chunk) : chunk.length;
      opts.onProgress?.(bytesRead);
      const text = decodeChunk(decoder, chunk, problems);
      ok = text !== null && parse.write(text);
      if (!ok) break;
      if (writer.full && problems.empty) await writer.flush();
    }
    if (ok) {
      const rest = decodeChunk(decoder, null, problems);
      if (rest !== null && parse.write(rest)) parse.close();
    }
    problems.throwIfAny();
    warnings.throwIfStrict(opts.strict);
    return writer.finish(warnings);
  });
}

/** The strict import's first step: every issue libxml2 finds against Herald's import schema, as import problems. */
async function refuseSchemaInvalid(file: string): Promise<void> {
  const result = await validateEnvelopeFile(file, HERALD_IMPORT_XSD, MAX_REPORTED_PROBLEMS);
  if (result.valid) return;
  // libxml2 reports each failed facet of one value on its own ("length",
  // then "enumeration" for update.type 99): one problem per element and line.
  const merged = new Map<string, { line: number; messages: string[] }>();
  for (const i of result.issues) {
    const key = `${i.line}:${i.element ?? ''}`;
    const entry = merged.get(key);
    if (entry) entry.messages.push(i.message.replace(/^Element '[^']*': /, ''));
    else merged.set(key, { line: i.line, messages: [i.message] });
  }
  const problems = [...merged.values()].map((m) => ({
    ...(m.line > 0 ? { line: m.line } : {}),
    message: `not valid against Herald's import schema (xsd/${path.basename(HERALD_IMPORT_XSD)}): ${m.messages.join(' ')}`,
  }));
  throw new ImportError(problems, result.issueCount - result.issues.length);
}

const CHUNK_BYTES = 64 * 1024;

/**
 * saxes driven for the walker, with the limits of xml-limits.ts checked as
 * the text arrives: depth and attributes by saxes's own events (a throw from
 * a handler leaves write() at once), buffered text and names after every
 * write of at most CHUNK_BYTES characters. The first limit passed, like the
 * first syntax error, ends the walk.
 */
class EnvelopeParser {
  private readonly parser = new SaxesParser({ xmlns: true, position: true });
  broken = false;
  private attributes = 0;

  constructor(
    private readonly walker: EnvelopeWalker,
    private readonly problems: ProblemList,
  ) {
    const parser = this.parser;
    parser.on('opentagstart', () => {
      this.attributes = 0;
      if (walker.depth >= MAX_XML_DEPTH) {
        throw new XmlLimitError({ ...walker.position(parser.line), message: `elements nested more than ${MAX_XML_DEPTH} deep (TARIC3 needs 7; ${STOPPED})` });
      }
    });
    parser.on('attribute', () => {
      if (++this.attributes > MAX_XML_ATTRIBUTES) {
        throw new XmlLimitError({ ...walker.position(parser.line), message: `an element with more than ${MAX_XML_ATTRIBUTES} attributes (${STOPPED})` });
      }
    });
    parser.on('opentag', (tag) => {
      if (!this.broken) walker.open(tag, parser.line);
    });
    parser.on('closetag', (tag) => {
      if (!this.broken) walker.close(tag);
    });
    parser.on('text', (text) => {
      if (!this.broken) walker.text(text);
    });
    parser.on('cdata', (text) => {
      if (!this.broken) walker.text(text);
    });
    // Only saxes' own well-formedness errors arrive here (an error thrown by a
    // handler above propagates out of write() instead). The first one ends
    // the walk: what follows a syntax error cannot be placed reliably.
    parser.on('error', (err) => {
      if (!this.broken) problems.add({ line: parser.line, message: `not well-formed XML: ${err.message.replace(/^(undefined:)?\d+:\d+:\s*/, '')}` });
      this.broken = true;
    });
  }

  /** Parses the next text; false once the walk has ended (a syntax error or a limit). */
  write(text: string): boolean {
    return this.guarded(() => {
      for (let at = 0; at < text.length && !this.broken; at += CHUNK_BYTES) {
        this.parser.write(text.slice(at, at + CHUNK_BYTES));
        checkSaxesBuffers(this.parser, this.walker.textLimit(), this.parser.line);
      }
    });
  }

  /** The end of the input: unclosed elements are a syntax error; then the walker's own last checks. */
  close(): void {
    if (this.guarded(() => this.parser.close())) this.walker.finish();
  }

  private guarded(fn: () => void): boolean {
    try {
      fn();
    } catch (err) {
      if (!(err instanceof XmlLimitError)) throw err;
      this.problems.add(err.problem);
      this.broken = true;
    }
    return !this.broken;
  }
}

function decodeChunk(decoder: TextDecoder, chunk: string | Buffer | null, problems: ProblemList): string | null {
  if (typeof chunk === 'string') return chunk;
  try {
    return chunk === null ? decoder.decode() : decoder.decode(chunk, { stream: true });
  } catch (err) {
    if ((err as { code?: unknown }).code !== 'ERR_ENCODING_INVALID_ENCODED_DATA') throw err;
    problems.add({ message: 'the file is not valid UTF-8' });
    return null;
  }
}
