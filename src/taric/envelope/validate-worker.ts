import fs from 'node:fs';
import path from 'node:path';
import { parentPort } from 'node:worker_threads';
import type { XsdValidator } from 'libxml2-wasm';
import { elementInMessage, tidyMessage } from './issue-text.js';
import type { ChunkTask, FileTask, LoadTask, TaskResult, ValidationIssue } from './validation-types.js';

// Worker thread of src/taric/envelope/validate.ts: XSD validation with libxml2,
// compiled to WebAssembly (libxml2-wasm): no native build, so it runs on any
// Node that Herald supports (libxmljs 1.0.11, used before, does not compile
// against Node 24's V8).
//
// libxml2-wasm offers document validation only (its build exports no
// xmlSchemaValidateStream), so each chunk becomes a small document that is
// validated against the schema parsed once and freed at once: memory stays
// bounded by the chunk size. Whole files (validateEnvelopeFile: tests, small
// files) are parsed whole. The wasm heap grows to its peak and never shrinks,
// which is why libxml2-wasm is loaded here and nowhere else in the process;
// everything else imports nothing but types from this module.

const XML_ERR_ERROR = 2; // levels: 1 warning, 2 error, 3 fatal

interface RawError {
  level: number;
  line: number;
  column: number;
  message: string;
}

type Libxml2 = typeof import('libxml2-wasm');

// An ES module with top-level await (the wasm instance), so it is loaded with
// import(): under tsx this file runs as CommonJS (see validate.ts), where a
// static import would be a require() of it, which Node refuses.
let loading: Promise<Libxml2> | undefined;

function libxml2(): Promise<Libxml2> {
  loading ??= Promise.all([import('libxml2-wasm'), import('libxml2-wasm/lib/nodejs.mjs')]).then(([lib, node]) => {
    node.xmlRegisterFsInputProviders(); // how libxml2 reads a schema's xs:import files
    return lib;
  });
  return loading;
}

// XML_PARSE_BIG_LINES | XML_PARSE_NONET: lines past 65535 keep their number
// (libxml2 caps them otherwise), and nothing is fetched from the network.
const PARSE_OPTIONS = 4194304 | 2048;

const schemas = new Map<string, XsdValidator>();

function schemaValidator(lib: Libxml2, schemaPath: string): XsdValidator {
  const abs = path.resolve(schemaPath);
  let validator = schemas.get(abs);
  if (validator) return validator;
  // Parsed with its absolute path as URL so that the schema's xs:import
  // schemaLocations resolve next to it.
  let doc;
  try {
    doc = lib.XmlDocument.fromBuffer(fs.readFileSync(abs), { url: abs, option: PARSE_OPTIONS });
    validator = lib.XsdValidator.fromDoc(doc);
  } catch (err) {
    const details = err instanceof lib.XmlLibError ? err.details.filter((d) => d.level >= XML_ERR_ERROR).map((d) => d.message.trim()) : [];
    throw new Error(`cannot load XSD ${abs}: ${details.join('; ') || (err as Error).message}`);
  } finally {
    doc?.dispose();
  }
  schemas.set(abs, validator);
  return validator;
}

/** Parse `data` and validate it: the errors of whichever step failed. */
function validate(lib: Libxml2, validator: XsdValidator, data: Uint8Array): RawError[] {
  let doc;
  try {
    doc = lib.XmlDocument.fromBuffer(data, { option: PARSE_OPTIONS });
    validator.validate(doc);
    return [];
  } catch (err) {
    if (!(err instanceof lib.XmlLibError)) throw err;
    const errors = err.details.filter((d) => d.level >= XML_ERR_ERROR).map((d) => ({ level: d.level, line: d.line, column: d.col, message: d.message }));
    // A document libxml2 calls invalid is never reported valid, details or not.
    return errors.length > 0 ? errors : [{ level: XML_ERR_ERROR, line: 0, column: 0, message: err.message }];
  } finally {
    doc?.dispose();
  }
}

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
    const element = elementInMessage(e.message) ?? (text && e.line > 0 ? FIRST_TAG.exec(lineText(text, e.line))?.[1] : undefined);
    const issue: ValidationIssue = { line: mapLine(e.line), message: tidyMessage(e.message) };
    if (e.column > 0) issue.column = e.column;
    if (element) issue.element = element;
    return issue;
  });
}

function runChunk(lib: Libxml2, task: ChunkTask): TaskResult {
  const validator = schemaValidator(lib, task.schemaPath);
  const data = Buffer.from(task.memory, 0, task.length);
  const errors = validate(lib, validator, data);
  const mapLine = (l: number) => (l <= task.prefixLines ? l : task.firstLine + l - task.prefixLines - 1);
  return { id: task.id, issues: toIssues(errors, task.maxIssues, mapLine, data), count: errors.length, ms: 0 };
}

function runFile(lib: Libxml2, task: FileTask): TaskResult {
  const validator = schemaValidator(lib, task.schemaPath);
  let data: Buffer;
  try {
    data = fs.readFileSync(path.resolve(task.path));
  } catch {
    return { id: task.id, issues: [{ line: 0, message: `cannot read ${task.path}` }], count: 1, ms: 0 };
  }
  const errors = validate(lib, validator, data);
  return { id: task.id, issues: toIssues(errors, task.maxIssues, (l) => l, data), count: errors.length, ms: 0 };
}

parentPort!.on('message', async (task: ChunkTask | FileTask | LoadTask) => {
  let result: TaskResult;
  let started = performance.now();
  try {
    const lib = await libxml2();
    started = performance.now(); // the wasm start-up is not validation
    if (task.kind === 'load') {
      schemaValidator(lib, task.schemaPath);
      result = { id: task.id, issues: [], count: 0, ms: 0 };
    } else {
      result = task.kind === 'chunk' ? runChunk(lib, task) : runFile(lib, task);
    }
  } catch (err) {
    result = { id: task.id, issues: [], count: 0, ms: 0, error: (err as Error).message };
  }
  result.ms = performance.now() - started;
  parentPort!.postMessage(result);
});
