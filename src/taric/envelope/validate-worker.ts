import path from 'node:path';
import { parentPort } from 'node:worker_threads';
// A namespace import, not the default one: this module is also loaded as
// CommonJS (tsx's require hook, see validate.ts), where the default import of
// an __esModule-flagged CommonJS file is undefined.
import * as xml from 'libxmljs/dist/lib/bindings/functions.js';
import type { xmlSchemaPtr, xmlSchemaValidCtxtPtr } from 'libxmljs/dist/lib/bindings/types.js';
import type { ChunkTask, FileTask, LoadTask, TaskResult, ValidationIssue } from './validation-types.js';

// Worker thread of validate.ts: XSD validation with libxml2.
//
// It calls libxmljs's low-level libxml2 bindings rather than its document API
// because, measured on a 40 MB envelope here: parseXml + validate takes
// 3.4 s and ~0.45 GB (a DOM, and the schema is re-parsed on every call),
// while xmlSchemaValidateStream (SAX, no DOM) over 1 MB chunks takes 0.42 s
// with the schema parsed once. This must be the only module that loads
// libxmljs, and it runs in one worker only (see validate.ts); everything
// else imports nothing but types from it.

const UTF8 = 1; // XML_CHAR_ENCODING_UTF8
const XML_ERR_ERROR = 2; // levels: 1 warning, 2 error, 3 fatal

interface RawError {
  level: number;
  line: number;
  column: number;
  message: string;
}

const schemas = new Map<string, xmlSchemaValidCtxtPtr>();

function validContext(schemaPath: string): xmlSchemaValidCtxtPtr {
  const abs = path.resolve(schemaPath);
  let ctxt = schemas.get(abs);
  if (ctxt) return ctxt;
  // The parser context is created from the absolute path so that the
  // schema's xs:import schemaLocations resolve next to it (DESIGN.md).
  const errors: RawError[] = [];
  const schema = xml.withStructuredErrors<xmlSchemaPtr | null>((errs: RawError[]) => {
    const parser = xml.xmlSchemaNewParserCtxt(abs);
    const parsed = xml.xmlSchemaParse(parser);
    xml.xmlSchemaFreeParserCtxt(parser);
    errors.push(...errs);
    return parsed;
  });
  if (!schema) {
    const detail = errors.filter((e) => e.level >= XML_ERR_ERROR).map((e) => e.message.trim());
    throw new Error(`cannot load XSD ${abs}: ${detail.join('; ') || 'parse failed'}`);
  }
  ctxt = xml.xmlSchemaNewValidCtxt(schema);
  schemas.set(abs, ctxt);
  return ctxt;
}

const NAMESPACES: Array<[string, string]> = [
  ['{urn:publicid:-:DGTAXUD:TARIC:MESSAGE:1.0}', 'oub:'],
  ['{urn:publicid:-:DGTAXUD:GENERAL:ENVELOPE:1.0}', 'env:'],
];

function tidyMessage(message: string): string {
  let m = message.trim();
  for (const [uri, prefix] of NAMESPACES) m = m.split(uri).join(prefix);
  return m;
}

// libxml2 prefixes schema errors with the node it means, in the fixed form
// "Element '{ns}name'" (xmlSchemaFormatNodeForError); that names the element
// more precisely than the line can when a file puts several on one line.
const ELEMENT_IN_MESSAGE = /^Element '(?:\{[^}]*\})?([^']+)'/;
const FIRST_TAG = /^\s*<\/?(?:[\w.-]+:)?([\w.-]+)/;

function lineText(data: Buffer, line: number): string {
  let start = 0;
  for (let l = 1; l < line; l++) {
    const nl = data.indexOf(10, start);
    if (nl < 0) return '';
    start = nl + 1;
  }
  const end = data.indexOf(10, start);
  return data.toString('utf8', start, end < 0 ? data.length : end);
}

function toIssues(errors: RawError[], maxIssues: number, mapLine: (l: number) => number, text?: Buffer): TaskResult['issues'] {
  return errors.slice(0, maxIssues).map((e) => {
    const element = ELEMENT_IN_MESSAGE.exec(e.message)?.[1] ?? (text && e.line > 0 ? FIRST_TAG.exec(lineText(text, e.line))?.[1] : undefined);
    const issue: ValidationIssue = { line: mapLine(e.line), message: tidyMessage(e.message) };
    if (e.column > 0) issue.column = e.column;
    if (element) issue.element = element;
    return issue;
  });
}

function runChunk(task: ChunkTask): TaskResult {
  const ctxt = validContext(task.schemaPath);
  const data = Buffer.from(task.memory, 0, task.length);
  const errors: RawError[] = xml.withStructuredErrors((errs: RawError[]) => {
    // CreateMem copies: libxml2 frees the input buffer itself, and a
    // "static" buffer over V8 memory crashed (SIGSEGV) when tried.
    const input = xml.xmlParserInputBufferCreateMem(data, data.length, UTF8);
    xml.xmlSchemaValidateStream(ctxt, input, UTF8, null, null);
    return errs.filter((e) => e.level >= XML_ERR_ERROR);
  });
  const mapLine = (l: number) => (l <= task.prefixLines ? l : task.firstLine + l - task.prefixLines - 1);
  return { id: task.id, issues: toIssues(errors, task.maxIssues, mapLine, data), count: errors.length, ms: 0 };
}

function runFile(task: FileTask): TaskResult {
  const ctxt = validContext(task.schemaPath);
  const errors: RawError[] = xml.withStructuredErrors((errs: RawError[]) => {
    const rc = xml.xmlSchemaValidateFile(ctxt, path.resolve(task.path), 0);
    const real = errs.filter((e) => e.level >= XML_ERR_ERROR);
    // A file that cannot be read fails with -1 and no structured error.
    if (rc !== 0 && real.length === 0) {
      real.push({ level: XML_ERR_ERROR, line: 0, column: 0, message: rc < 0 ? `cannot read ${task.path}` : `libxml2 failed with code ${rc}` });
    }
    return real;
  });
  return { id: task.id, issues: toIssues(errors, task.maxIssues, (l) => l), count: errors.length, ms: 0 };
}

parentPort!.on('message', (task: ChunkTask | FileTask | LoadTask) => {
  const started = performance.now();
  let result: TaskResult;
  try {
    if (task.kind === 'load') {
      validContext(task.schemaPath);
      result = { id: task.id, issues: [], count: 0, ms: 0 };
    } else {
      result = task.kind === 'chunk' ? runChunk(task) : runFile(task);
    }
  } catch (err) {
    result = { id: task.id, issues: [], count: 0, ms: 0, error: (err as Error).message };
  }
  result.ms = performance.now() - started;
  parentPort!.postMessage(result);
});
