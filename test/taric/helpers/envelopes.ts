import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import libxml, { type XMLElement } from 'libxmljs';
import type { EnvelopeSink } from '../../../src/taric/envelope-writer.js';

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

const NS = { env: 'urn:publicid:-:DGTAXUD:GENERAL:ENVELOPE:1.0', oub: 'urn:publicid:-:DGTAXUD:TARIC:MESSAGE:1.0' };

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

/** Parse a written envelope back into plain values (libxml2 decodes the escaping). */
export function readEnvelope(xml: Buffer | string): ReadEnvelope {
  const doc = libxml.parseXml(typeof xml === 'string' ? xml : xml.toString('utf8'));
  const root = doc.root()!;
  const text = (el: XMLElement, name: string) => (el.get(`oub:${name}`, NS) as XMLElement).text();
  return {
    id: root.getAttribute('id')!.value(),
    transactions: (root.find('env:transaction', NS) as XMLElement[]).map((t) => ({
      id: t.getAttribute('id')!.value(),
      records: (t.find('env:app.message', NS) as XMLElement[]).map((m) => {
        const record = m.get('oub:transmission/oub:record', NS) as XMLElement;
        const body = record.childNodes().filter((n: { type(): string }) => n.type() === 'element').at(-1) as XMLElement;
        const fields: Record<string, string> = {};
        for (const f of body.childNodes()) if (f.type() === 'element') fields[f.name()] = (f as XMLElement).text();
        return {
          messageId: m.getAttribute('id')!.value(),
          transactionId: text(record, 'transaction.id'),
          recordCode: text(record, 'record.code'),
          subrecordCode: text(record, 'subrecord.code'),
          sequence: text(record, 'record.sequence.number'),
          updateType: text(record, 'update.type'),
          type: body.name(),
          fields,
        };
      }),
    })),
  };
}
