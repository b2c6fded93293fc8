import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { buildEnvelopes, type BuiltEnvelope } from '../../src/taric/envelope/envelope-writer.js';
import type { SourceTransaction } from '../../src/taric/model.js';
import { sampleTransactions } from './support/sample-records.js';
import { closeSharedValidatorPool, MAX_ISSUES_PER_ENVELOPE, sharedValidator, validateEnvelopeFile } from '../../src/taric/envelope/validate.js';
import { envelopeIds, memorySinks, OFFICIAL_ENVELOPE_XSD, oracleIt, REPO_ROOT, type MemorySinks } from './support/envelopes.js';

// Validation happens while the envelope is written, by xmllint reading the
// stream or by libxml2-wasm on chunks in a worker thread; either way issues
// must point at lines of the envelope FILE and name the element. Bad values
// are planted by bypassing checkRecord (the serializer renders whatever it is
// given).

const ENGINES = ['xmllint', 'wasm'] as const;
type Engine = (typeof ENGINES)[number];

function workbasket(count: number, seed = 5): SourceTransaction[] {
  return [...sampleTransactions({ count, seed, records: [1, 4] })];
}

function plant(txs: SourceTransaction[], at: number, type: string, field: string, value: string | undefined): void {
  const tx = txs[at]!;
  tx.records.unshift({ ...tx.records[0]!, type, fields: { ...sampleFields(type) } });
  if (value === undefined) delete tx.records[0]!.fields[field];
  else tx.records[0]!.fields[field] = value;
}

function sampleFields(type: string): Record<string, string> {
  if (type !== 'footnote.type') throw new Error('only footnote.type is planted');
  return { 'footnote.type.id': 'TN', 'validity.start.date': '2024-01-01', 'application.code': '1' };
}

interface BuildOptions {
  engine?: Engine;
  max?: number;
  segmentBytes?: number;
  schema?: string;
}

async function buildWith(txs: SourceTransaction[], opts: BuildOptions = {}): Promise<{ envelopes: BuiltEnvelope[]; sinks: MemorySinks }> {
  const sinks = memorySinks();
  const envelopes = await buildEnvelopes({
    transactions: txs,
    firstTaricTransactionId: 1,
    nextEnvelopeId: envelopeIds().next,
    maxEnvelopeBytes: opts.max ?? 1_000_000,
    openSink: sinks.openSink,
    xsdValidator: opts.engine ?? 'wasm',
    ...(opts.segmentBytes ? { segmentBytes: opts.segmentBytes } : {}),
    ...(opts.schema ? { schema: opts.schema } : {}),
  });
  return { envelopes, sinks };
}

/** 1-based line numbers in `file` whose text contains `needle`. */
function linesWith(file: Buffer, needle: string): number[] {
  return file
    .toString('utf8')
    .split('\n')
    .flatMap((l, i) => (l.includes(needle) ? [i + 1] : []));
}


/**
 * Where each validator puts "Missing child element(s)": libxml2-wasm checks
 * a parsed document and names the line that opens the parent; xmllint's
 * streaming validator notices at the parent's closing tag.
 */
function missingChildLine(engine: Engine, file: Buffer, issue: { line: number; element?: string }): number {
  if (engine === 'wasm') return issue.line;
  const closing = linesWith(file, `</oub:${issue.element}>`).find((l) => l > issue.line);
  if (closing === undefined) throw new Error(`no closing tag of ${issue.element} after line ${issue.line}`);
  return closing;
}

for (const engine of ENGINES) {
  const build = (txs: SourceTransaction[], opts: BuildOptions = {}) => buildWith(txs, { engine, ...opts });

  describe(`taric.validate while writing (${engine})`, () => {
  let dir: string;
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'herald-validate-'));
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('reports the file line and the element of a bad value in a later chunk', async () => {
    const txs = workbasket(60);
    plant(txs, 45, 'footnote.type', 'footnote.type.id', 'toolong');
    const { envelopes, sinks } = await build(txs, { segmentBytes: 2000 });
    expect(envelopes).to.have.length(1);
    const file = sinks.files.get(envelopes[0]!.envelopeId)!;
    const [line] = linesWith(file, '<oub:footnote.type.id>toolong</oub:footnote.type.id>');
    expect(line).to.be.greaterThan(200);
    expect(envelopes[0]!.valid).to.equal(false);
    expect(envelopes[0]!.issueCount).to.equal(1);
    expect(envelopes[0]!.issues).to.deep.equal([
      {
        line,
        element: 'footnote.type.id',
        message: "Element 'oub:footnote.type.id': [facet 'pattern'] The value 'toolong' is not accepted by the pattern '[A-Z]{2}|[A-Z]{3}'.",
      },
    ]);
  });

  it(`reports a missing required field on the line ${engine === 'wasm' ? 'that opens' : 'that closes'} its record, naming the record`, async () => {
    const txs = workbasket(20);
    plant(txs, 12, 'footnote.type', 'application.code', undefined);
    const { envelopes, sinks } = await build(txs, { segmentBytes: 1000 });
    const file = sinks.files.get(envelopes[0]!.envelopeId)!;
    const issue = envelopes[0]!.issues[0]!;
    expect(envelopes[0]!.issues).to.have.length(1);
    expect(issue.element).to.equal('footnote.type');
    expect(issue.message).to.equal("Element 'oub:footnote.type': Missing child element(s). Expected is one of ( oub:validity.end.date, oub:application.code ).");
    const lines = linesWith(file, engine === 'wasm' ? '<oub:footnote.type>' : '</oub:footnote.type>');
    expect(lines).to.include(issue.line);
  });

  it('finds the same issues in segments as in the whole file, whatever the segment size', async () => {
    const txs = workbasket(80, 9);
    for (const at of [0, 17, 18, 41, 79]) plant(txs, at, 'footnote.type', 'validity.start.date', `2023-02-${29 + (at % 2)}`);
    plant(txs, 60, 'footnote.type', 'application.code', undefined);
    const whole = await build(txs, { segmentBytes: 1 << 24 });
    const text = whole.sinks.files.get(whole.envelopes[0]!.envelopeId)!;
    const file = path.join(dir, 'chunks.xml');
    fs.writeFileSync(file, text);
    // The whole file parsed as one document (libxml2-wasm), lines moved where this validator puts them.
    const fromFile = await validateEnvelopeFile(file, 'herald');
    expect(fromFile.issueCount).to.equal(6);
    const expected = fromFile.issues.map((i) => (i.message.includes('Missing child') ? { ...i, line: missingChildLine(engine, text, i) } : i));
    for (const segmentBytes of [300, 4096, 65_536]) {
      const chunked = await build(txs, { segmentBytes });
      expect(chunked.envelopes[0]!.issues, `segmentBytes ${segmentBytes}`).to.deep.equal(expected);
    }
    expect(whole.envelopes[0]!.issues).to.deep.equal(expected);
  });

  it('keeps issue lines per envelope when a run writes several envelopes', async () => {
    const txs = workbasket(60);
    plant(txs, 5, 'footnote.type', 'footnote.type.id', 'x1');
    plant(txs, 55, 'footnote.type', 'footnote.type.id', 'x2');
    const { envelopes, sinks } = await build(txs, { max: 12_000, segmentBytes: 3000 });
    expect(envelopes.length).to.be.greaterThan(2);
    const bad = envelopes.filter((e) => !e.valid);
    expect(bad).to.have.length(2);
    for (const [e, value] of [
      [bad[0]!, 'x1'],
      [bad[1]!, 'x2'],
    ] as const) {
      expect(e.issues.map((i) => i.line)).to.deep.equal(linesWith(sinks.files.get(e.envelopeId)!, `>${value}<`));
    }
    expect(envelopes.filter((e) => e.valid).every((e) => e.issues.length === 0)).to.equal(true);
  });

  it(`keeps the first ${MAX_ISSUES_PER_ENVELOPE} issues of an envelope and counts them all`, async () => {
    const txs = workbasket(250, 3);
    for (let i = 0; i < 250; i++) plant(txs, i, 'footnote.type', 'footnote.type.id', 'bad');
    const { envelopes } = await build(txs, { segmentBytes: 8000 });
    expect(envelopes[0]!.issueCount).to.equal(250);
    expect(envelopes[0]!.issues).to.have.length(MAX_ISSUES_PER_ENVELOPE);
    const lines = envelopes[0]!.issues.map((i) => i.line);
    expect(lines).to.deep.equal([...lines].sort((a, b) => a - b));
  });

  oracleIt('validates against the published schema when asked, and it finds the planted value too', async () => {
    const txs = workbasket(30);
    const clean = await build(txs, { schema: OFFICIAL_ENVELOPE_XSD });
    expect(clean.envelopes[0]!.valid).to.equal(true);
    plant(txs, 3, 'footnote.type', 'footnote.type.id', 'toolong');
    const { envelopes, sinks } = await build(txs, { schema: OFFICIAL_ENVELOPE_XSD, segmentBytes: 2000 });
    const file = path.join(dir, 'official.xml');
    fs.writeFileSync(file, sinks.files.get(envelopes[0]!.envelopeId)!);
    const [line] = linesWith(sinks.files.get(envelopes[0]!.envelopeId)!, 'toolong');
    expect(envelopes[0]!.issues.map((i) => [i.line, i.element])).to.deep.equal([[line, 'footnote.type.id']]);
    expect((await validateEnvelopeFile(file, OFFICIAL_ENVELOPE_XSD)).issues).to.deep.equal(envelopes[0]!.issues);
  });
  });
}

describe('taric.validate of files (libxml2-wasm worker)', () => {
  let dir: string;
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'herald-validate-'));
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const build = (txs: SourceTransaction[], opts: BuildOptions = {}) => buildWith(txs, { engine: 'wasm', ...opts });

  it('reports a file that is not well-formed, or missing, as invalid', async () => {
    const broken = path.join(dir, 'broken.xml');
    const envelope = '<env:envelope xmlns:env="urn:publicid:-:DGTAXUD:GENERAL:ENVELOPE:1.0" id="230001">';
    fs.writeFileSync(broken, `<?xml version="1.0"?>\n${envelope}\n<oops>\n</env:envelope>\n`);
    const r = await validateEnvelopeFile(broken);
    expect(r.valid).to.equal(false);
    expect(r.issues.map((i) => [i.line, i.message])).to.deep.include([4, 'Opening and ending tag mismatch: oops line 3 and env:envelope']);
    const missing = await validateEnvelopeFile(path.join(dir, 'nope.xml'));
    expect(missing).to.deep.equal({ valid: false, issueCount: 1, issues: [{ line: 0, message: `cannot read ${path.join(dir, 'nope.xml')}` }] });
  });

  it('rejects with a clear message when the schema cannot be loaded', async () => {
    let err: unknown;
    await validateEnvelopeFile(path.join(dir, 'broken.xml'), path.join(dir, 'no-such.xsd')).catch((e) => (err = e));
    expect((err as Error).message).to.match(/^cannot load XSD .*no-such\.xsd/);
  });

  it('keeps libxml2-wasm out of every module but the validation worker (its wasm heap keeps its peak)', () => {
    const offenders: string[] = [];
    const valueImportsOfWorker: string[] = [];
    const loads = ['from ', 'require(', 'import('].map((how) => `${how}'libxml2${'-wasm'}`); // spelt so this file does not match
    const workerImport = /from '[\w./-]*validate-worker\.js'/;
    const walk = (dir: string) => {
      for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
        const full = path.join(dir, entry.name);
        if (entry.isDirectory()) {
          walk(full);
          continue;
        }
        if (!/\.(ts|js|mjs|cjs)$/.test(entry.name)) continue;
        const text = fs.readFileSync(full, 'utf8');
        if (loads.some((l) => text.includes(l))) offenders.push(path.relative(REPO_ROOT, full));
        for (const line of text.split('\n')) {
          if (workerImport.test(line) && !line.startsWith('import type ')) valueImportsOfWorker.push(`${entry.name}: ${line}`);
        }
      }
    };
    for (const top of ['src', 'test', 'scripts', 'bin']) walk(path.join(REPO_ROOT, top));
    expect(offenders).to.deep.equal(['src/taric/envelope/validate-worker.ts']);
    // Only types may be imported from the worker module: a value import would load it (and libxml2-wasm) there.
    expect(valueImportsOfWorker).to.deep.equal([]);
  });

  it('rejects work in flight when the worker stops, and starts a new worker on the next use', async () => {
    await sharedValidator().prepare();
    const file = path.join(dir, 'big.xml');
    const { sinks, envelopes } = await build(workbasket(3000, 11), { segmentBytes: 1 << 24 });
    fs.writeFileSync(file, sinks.files.get(envelopes[0]!.envelopeId)!);
    const inFlight = validateEnvelopeFile(file);
    await closeSharedValidatorPool();
    let err: unknown;
    await inFlight.catch((e) => (err = e));
    expect((err as Error).message).to.match(/^XSD validation worker exited/);
    expect((await validateEnvelopeFile(file)).valid).to.equal(true);
  });
});
