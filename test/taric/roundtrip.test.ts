import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { useTestDb } from '../helpers/db.js';
import { importXmlWorkbasket } from '../../src/taric/import/import-xml.js';
import { importJsonText } from '../../src/taric/import/import-json.js';
import { dumpEnvelopes } from '../../src/taric/envelope/dump.js';
import { validateEnvelopeFile } from '../../src/taric/envelope/validate.js';
import { countRows, storedRecords } from './support/workbaskets.js';

// Every published sample envelope (and every JSON fixture) goes
// import -> dump -> import and must come back with the same records and field
// values; each dumped file must pass Herald's schema (xsd/) and, where the
// shared reference folder sits beside the repo, the official one.

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const REFERENCE = path.resolve(ROOT, '../shared/reference/taric');
const OFFICIAL_XSD = path.join(REFERENCE, 'envelope.xsd');
const officialAvailable = fs.existsSync(OFFICIAL_XSD);

function sampleEnvelopes(): string[] {
  const dirs = [path.join(ROOT, 'fixtures/workbaskets/envelopes'), REFERENCE].filter((d) => fs.existsSync(d));
  const seen = new Set<string>();
  const files: string[] = [];
  for (const dir of dirs) {
    for (const f of fs.readdirSync(dir).filter((n) => n.endsWith('.xml')).sort()) {
      const file = path.join(dir, f);
      const digest = crypto.createHash('sha1').update(fs.readFileSync(file)).digest('hex');
      if (!seen.has(digest)) files.push(file);
      seen.add(digest);
    }
  }
  return files;
}

const jsonFixtures = fs
  .readdirSync(path.join(ROOT, 'fixtures/workbaskets'))
  .filter((f) => f.endsWith('.json'))
  .map((f) => path.join(ROOT, 'fixtures/workbaskets', f));

describe('taric round trip (import -> dump -> import)', () => {
  const t = useTestDb(import.meta.url);
  const db = () => t.get().db;
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'herald-roundtrip-'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  async function dumpOne(workbasketId: number, label: string): Promise<string> {
    const before = await countRows(db());
    const { envelopes } = await dumpEnvelopes(db(), {
      now: new Date('2026-09-01T00:00:00Z'),
      maxEnvelopeBytes: 40_000_000,
      firstTransactionId: 1,
      dir,
      workbasketIds: [workbasketId],
    });
    expect(envelopes, label).to.have.length(1);
    expect(envelopes[0]!.valid, `${label}: ${JSON.stringify(envelopes[0]!.issues)}`).to.equal(true);
    expect(await countRows(db()), 'dump stores nothing').to.deep.equal(before);
    return envelopes[0]!.file;
  }

  async function roundTrip(workbasketId: number, label: string): Promise<void> {
    const original = await storedRecords(db(), workbasketId);
    const file = await dumpOne(workbasketId, label);
    const herald = await validateEnvelopeFile(file, 'herald');
    expect(herald.issues, `${label} against xsd/`).to.deep.equal([]);
    const again = await importXmlWorkbasket(db(), file, { title: `${label} again` });
    expect(await storedRecords(db(), again.workbasketId), label).to.deep.equal(original);
  }

  async function importAny(file: string): Promise<number> {
    if (file.endsWith('.json')) return (await importJsonText(db(), fs.readFileSync(file, 'utf8'))).workbasketId;
    return (await importXmlWorkbasket(db(), file, { title: path.basename(file) })).workbasketId;
  }

  const samples = sampleEnvelopes();
  it(`finds the sample envelopes (${samples.length})`, () => {
    expect(samples.length).to.be.at.least(2);
  });

  for (const file of [...samples, ...jsonFixtures]) {
    const name = path.relative(ROOT, file);
    it(`round-trips ${name} with the same records and values, valid against xsd/`, async () => {
      await roundTrip(await importAny(file), path.basename(file));
    });
    // Only this part needs the shared reference folder beside the repo.
    (officialAvailable ? it : it.skip)(`dumps ${name} valid against the official envelope.xsd`, async () => {
      const dumped = await dumpOne(await importAny(file), path.basename(file));
      const official = await validateEnvelopeFile(dumped, OFFICIAL_XSD);
      expect(official.issues).to.deep.equal([]);
      expect(official.valid).to.equal(true);
    });
  }
});
