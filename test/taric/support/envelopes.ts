import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { EnvelopeSink } from '../../../src/taric/envelope/envelope-writer.js';
import { child, children, parseXml } from './xml.js';

// Shared by the rendering tests: the published TARIC3 schema as a test oracle
// (kept beside the repo, never copied into it), sinks that keep what they
// were given, and a reader that takes a written envelope apart again.

export const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
export const ORACLE_DIR = path.resolve(REPO_ROOT, '../shared/reference/taric');
export const OFFICIAL_ENVELOPE_XSD = path.join(ORACLE_DIR, 'envelope.xsd');
export const hasOracle = fs.existsSync(OFFICIAL_ENVELOPE_XSD);

/** Mocha: run `fn` only when the oracle folder exists (it is absent in some checkouts). */
export function oracleIt(title: string, fn: () => Promise<void> | void): void {
  (hasOracle ? it : it.skip)(`${title} [oracle]`, fn);
}

export interface MemorySinks {
  openSink(envelopeId: string): EnvelopeSink;
  /** Envelope id -> the bytes the sink received, in order of opening. */
  files: Map<string, Buffer>;
  ended: Set<string>;
  aborted: Map<string, Error>;
}

export function memorySinks(): MemorySinks {
  const parts = new Map<string, Buffer[]>();
  const sinks: MemorySinks = {
    files: new Map(),
    ended: new Set(),
    aborted: new Map(),
    openSink(envelopeId) {
      if (parts.has(envelopeId)) throw new Error(`sink for ${envelopeId} opened twice`);
      const chunks: Buffer[] = [];
      parts.set(envelopeId, chunks);
      sinks.files.set(envelopeId, Buffer.alloc(0));
      return {
        // Copies nothing: keeping the very buffers proves the writer never
        // reuses one it has handed over.
        write(chunk) {
          chunks.push(chunk);
        },
        async end() {
          sinks.files.set(envelopeId, Buffer.concat(chunks));
          sinks.ended.add(envelopeId);
        },
        abort(reason) {
          sinks.aborted.set(envelopeId, reason);
        },
      };
    },
  };
  return sinks;
}

export function md5(buf: Buffer): string {
  return crypto.createHash('md5').update(buf).digest('hex');
}

/** Envelope ids 230001, 230002, ... and a log of the calls. */
export function envelopeIds(first = 1): { next(): string; issued: string[] } {
  let n = first;
  const issued: string[] = [];
  return {
    issued,
    next() {
      const id = `23${String(n++).padStart(4, '0')}`;
      issued.push(id);
      return id;
    },
  };
}

export interface ReadRecord {
  messageId: string;
  transactionId: string;
  recordCode: string;
  subrecordCode: string;
  sequence: string;
  updateType: string;
  type: string;
  fields: Record<string, string>;
}

export interface ReadEnvelope {
  id: string;
  transactions: Array<{ id: string; records: ReadRecord[] }>;
}

/** Parse a written envelope back into plain values (the parser decodes the escaping). */
export function readEnvelope(xml: Buffer | string): ReadEnvelope {
  const root = parseXml(typeof xml === 'string' ? xml : xml.toString('utf8'));
  return {
    id: root.attrs.id!,
    transactions: children(root, 'transaction').map((t) => ({
      id: t.attrs.id!,
      records: children(t, 'app.message').map((m) => {
        const record = child(child(m, 'transmission'), 'record');
        const body = record.children.at(-1)!;
        return {
          messageId: m.attrs.id!,
          transactionId: child(record, 'transaction.id').text,
          recordCode: child(record, 'record.code').text,
          subrecordCode: child(record, 'subrecord.code').text,
          sequence: child(record, 'record.sequence.number').text,
          updateType: child(record, 'update.type').text,
          type: body.local,
          fields: Object.fromEntries(body.children.map((f) => [f.local, f.text])),
        };
      }),
    })),
  };
}
