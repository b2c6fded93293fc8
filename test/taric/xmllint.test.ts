import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { buildEnvelopes, type BuildEnvelopesOptions } from '../../src/taric/envelope/envelope-writer.js';
import { resolveXsdEngine } from '../../src/taric/envelope/envelope-check.js';
import { HERALD_ENVELOPE_XSD } from '../../src/taric/envelope/xsd.js';
import { XMLLINT_MISSING, XmllintStream } from '../../src/taric/envelope/xmllint.js';
import { sampleTransactions } from './support/sample-records.js';
import { envelopeIds, memorySinks } from './support/envelopes.js';

// The xmllint validator's own edges: what happens when xmllint is missing,
// when the schema does not compile, when the input is not XML, and that a
// failed run leaves no xmllint process or FIFO behind. What it finds in envelopes is
// in validate.test.ts, side by side with libxml2-wasm.

function options(overrides: Partial<BuildEnvelopesOptions> = {}): BuildEnvelopesOptions {
  const sinks = memorySinks();
  return {
    transactions: [...sampleTransactions({ count: 40, seed: 2, records: [1, 3] })],
    firstTaricTransactionId: 1,
    nextEnvelopeId: envelopeIds().next,
    maxEnvelopeBytes: 1_000_000,
    openSink: sinks.openSink,
    segmentBytes: 2000,
    ...overrides,
  };
}

/** pids of this process's xmllint children. */
function xmllintChildren(): string[] {
  let out: string;
  try {
    out = execFileSync('ps', ['-o', 'pid=,comm=', '--ppid', String(process.pid)], { encoding: 'utf8' });
  } catch {
    return []; // ps exits 1 when there are no children at all
  }
  return out
    .split('\n')
    .filter((l) => l.includes('xmllint'))
    .map((l) => l.trim().split(/\s+/)[0]!);
}

async function until(check: () => boolean, ms = 5000): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (check()) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return check();
}

describe('taric.validate: the xmllint validator', () => {
  let dir: string;
  let tmp: string;
  let savedTmp: string | undefined;
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'herald-xmllint-test-'));
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));
  // Each xmllint gets a FIFO in a directory of its own under the temp
  // directory: a private one here, so that each test can see it emptied.
  beforeEach(() => {
    savedTmp = process.env.TMPDIR;
    tmp = fs.mkdtempSync(path.join(dir, 'tmp-'));
    process.env.TMPDIR = tmp;
  });
  afterEach(() => {
    if (savedTmp === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = savedTmp;
  });
  const fifosLeft = () => fs.readdirSync(tmp);

  it('is what auto picks where xmllint runs; without it, xmllint fails in one line naming the package, and auto takes libxml2-wasm', async () => {
    expect(resolveXsdEngine('auto')).to.equal('xmllint');
    expect(resolveXsdEngine('wasm')).to.equal('wasm');
    const saved = process.env.PATH;
    process.env.PATH = dir; // an empty directory: no xmllint
    try {
      expect(resolveXsdEngine('auto')).to.equal('wasm');
      expect(() => resolveXsdEngine('xmllint')).to.throw(XMLLINT_MISSING);
      let err: unknown;
      await buildEnvelopes(options({ xsdValidator: 'xmllint' })).catch((e) => (err = e));
      expect((err as Error).message).to.equal(XMLLINT_MISSING);
      expect(XMLLINT_MISSING).to.match(/apt-get install libxml2-utils/).and.match(/EXPORTER_XSD_VALIDATOR=wasm/);
      const [envelope] = await buildEnvelopes(options({ xsdValidator: 'auto' }));
      expect(envelope!.valid).to.equal(true);
    } finally {
      process.env.PATH = saved;
    }
  });

  it('rejects the run, with xmllint’s reason, when the schema does not compile (not an invalid envelope)', async () => {
    const xsd = path.join(dir, 'broken.xsd');
    fs.writeFileSync(xsd, '<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema"><xs:element name="a" type="nope"/></xs:schema>\n');
    let err: unknown;
    await buildEnvelopes(options({ xsdValidator: 'xmllint', schema: xsd })).catch((e) => (err = e));
    expect((err as Error).message).to.match(/^xmllint failed \(exit 5\): .*nope/);
    expect(fifosLeft()).to.deep.equal([]);
  });

  it('reports input that is not well-formed as invalid, with an issue saying so', async () => {
    const stream = new XmllintStream(HERALD_ENVELOPE_XSD, 10);
    await stream.write(Buffer.from('<?xml version="1.0"?>\n<env:envelope xmlns:env="urn:publicid:-:DGTAXUD:GENERAL:ENVELOPE:1.0" id="230001">\n<oops>\n</env:envelope>\n'));
    const r = await stream.result();
    expect(r.issues).to.deep.include({ line: 0, message: 'not well-formed XML: xmllint could not parse it to the end' });
    // Only the tag mismatch: the schema has nothing against a file cut short where this one ends.
    const cut = new XmllintStream(HERALD_ENVELOPE_XSD, 10);
    await cut.write(Buffer.from('<?xml version="1.0"?>\n<env:envelope xmlns:env="urn:publicid:-:DGTAXUD:GENERAL:ENVELOPE:1.0" id="230001">\n</env:envelopx>\n'));
    expect(await cut.result()).to.deep.include({ count: 1, issues: [{ line: 0, message: 'not well-formed XML: xmllint could not parse it to the end' }] });
  });

  it('leaves no xmllint process and no FIFO behind when a run fails half way', async () => {
    let writes = 0;
    const failing = options({
      xsdValidator: 'xmllint',
      transactions: [...sampleTransactions({ count: 200, seed: 4, records: [1, 3] })],
      openSink: () => ({
        write() {
          if (++writes === 5) throw new Error('disk full');
        },
        async end() {},
      }),
    });
    let err: unknown;
    await buildEnvelopes(failing).catch((e) => (err = e));
    expect((err as Error).message).to.equal('disk full');
    expect(await until(() => xmllintChildren().length === 0)).to.equal(true);
    expect(await until(() => fifosLeft().length === 0)).to.equal(true);
  });

  it('runs one xmllint per envelope, each gone once its verdict is in', async () => {
    const built = await buildEnvelopes(options({ xsdValidator: 'xmllint', maxEnvelopeBytes: 8000 }));
    expect(built.length).to.be.greaterThan(2);
    expect(built.every((e) => e.valid && e.validationMs > 0)).to.equal(true);
    expect(await until(() => xmllintChildren().length === 0)).to.equal(true);
    expect(fifosLeft()).to.deep.equal([]);
  });
});
