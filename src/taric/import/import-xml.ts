import fs from 'node:fs';
import type { Knex } from 'knex';
import { SaxesParser } from 'saxes';
import { ProblemList, WorkbasketWriter, type ImportResult } from './import-records.js';
import { EnvelopeWalker } from './import-xml-walker.js';

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
  return db.transaction(async (trx) => {
    const writer = await WorkbasketWriter.open(trx, { title: opts.title, reason: opts.reason ?? '' });
    const problems = new ProblemList();
    const walker = new EnvelopeWalker(problems, (t, r, record) => {
      // After the first problem nothing more is stored (it will all be rolled
      // back), but parsing goes on to report every problem in one run.
      if (problems.empty) writer.add(t, r, record);
    });
    const parser = new SaxesParser({ xmlns: true, position: true });
    let broken = false;
    parser.on('opentag', (tag) => {
      if (!broken) walker.open(tag, parser.line);
    });
    parser.on('closetag', (tag) => {
      if (!broken) walker.close(tag);
    });
    parser.on('text', (text) => {
      if (!broken) walker.text(text);
    });
    parser.on('cdata', (text) => {
      if (!broken) walker.text(text);
    });
    // Only saxes' own well-formedness errors arrive here (an error thrown by a
    // handler above propagates out of write() instead). The first one ends
    // the walk: what follows a syntax error cannot be placed reliably.
    parser.on('error', (err) => {
      if (!broken) problems.add({ line: parser.line, message: `not well-formed XML: ${err.message.replace(/^(undefined:)?\d+:\d+:\s*/, '')}` });
      broken = true;
    });

    // Bytes are decoded here (not by the stream) so that invalid UTF-8 is an
    // error instead of silently becoming U+FFFD in a stored description.
    const decoder = new TextDecoder('utf-8', { fatal: true });
    const chunks = typeof source === 'string' ? fs.createReadStream(source, { highWaterMark: 64 * 1024 }) : source;
    for await (const chunk of chunks) {
      const text = decodeChunk(decoder, chunk, problems);
      if (text === null) {
        broken = true;
        break;
      }
      parser.write(text);
      if (broken) break;
      if (writer.full && problems.empty) await writer.flush();
    }
    if (!broken) {
      if (decodeChunk(decoder, null, problems) === null) broken = true;
      else parser.close();
    }
    if (!broken) walker.finish();
    problems.throwIfAny();
    return writer.finish();
  });
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
