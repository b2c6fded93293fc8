import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { useTestDb } from '../helpers/db.js';
import { importXmlWorkbasket } from '../../src/taric/import/import-xml.js';
import { dumpEnvelopes } from '../../src/taric/envelope/dump.js';
import { validateEnvelopeFile } from '../../src/taric/envelope/validate.js';
import { ImportError } from '../../src/taric/errors.js';
import type { ImportResult } from '../../src/taric/import/import-records.js';
import type { TaricRecord, UpdateType } from '../../src/taric/model.js';
import { OFFICIAL_ENVELOPE_XSD, REPO_ROOT } from './support/envelopes.js';
import { children, parseXml, type XmlElement } from './support/xml.js';
import { countRows, storedRecords } from './support/workbaskets.js';

// Conformance over real TARIC3 files published by others (the EU's daily
// updates, UK DIT envelopes, trade-tariff-backend and tamato fixtures): a test
// oracle kept beside the repository, never copied into it. The corpus is
// HERALD_TARIC_CORPUS, else ../shared/reference/taric-real beside the repo;
// when it is missing the run fails (set HERALD_TARIC_CORPUS=none to leave
// these tests out on purpose). Whether a file is schema-valid is decided by
// the published envelope.xsd (../shared/reference/taric), not by Herald.
//
// For every file:
// - valid against the published schema: imports without a warning, strictly
//   too, with every record and value exactly as the file has them (read back
//   independently with saxes); its dump is valid against both schemas and
//   imports again to the same records;
// - invalid but readable: imports with at least one warning, the same exact
//   values, and a strict import refuses it;
// - not importable: refused with the problems listed below, strictly too.

const CORPUS_SETTING = process.env.HERALD_TARIC_CORPUS;
const CORPUS = CORPUS_SETTING && CORPUS_SETTING !== 'none' ? path.resolve(CORPUS_SETTING) : path.resolve(REPO_ROOT, '..', 'shared', 'reference', 'taric-real');

/** Files Herald refuses, with how many problems and the ones a reader must see. */
const REFUSED: Record<string, { problems: number; include: string[] }> = {
  'tamato-additional_code_type_measure_type_CREATE.xml': {
    problems: 9,
    include: ['transaction 1, record 2 (measure.type.series.description) [line 25]: field language.id: must match [A-Z][A-Z]'],
  },
  'tamato-footnote_association_additional_code_CREATE.xml': {
    problems: 9,
    include: ['transaction 1, record 3 (additional.code) [line 41]: field additional.code: must be exactly 3 characters long'],
  },
  'tamato-fts_regulation_action_CREATE.xml': {
    problems: 3,
    include: ['transaction 3, record 1 (fts.regulation.action) [line 101]: field record.code: record.code/subrecord.code 305/00 do not match fts.regulation.action (300/05)'],
  },
  'tamato-geographical_membership_DELETE.xml': {
    problems: 1,
    include: ['transaction 1, record 1 (geographical.membership) [line 8]: unknown record type "geographical.membership"'],
  },
  'tamato-measure_condition_CREATE.xml': {
    problems: 23,
    include: ['transaction 7, record 1 (duty.expression) [line 192]: field duty.expression.id: must be exactly 2 characters long'],
  },
  'tamato-quota_closed_and_transferred_event_CREATE.xml': {
    problems: 6,
    include: ['transaction 5, record 1 (quota.definition) [line 134]: field critical.state: must be one of Y, N'],
  },
  'tamato-update_commodity_codes_DIT210004.xml': { problems: 1, include: ['[line 1]: not well-formed XML: unbound namespace prefix: "env".'] },
  'ttb-broken_insert_record.xml': { problems: 1, include: ['transaction 1, record 1 [line 6]: has no record element (such as <footnote.type>)'] },
  // One message for update.type 99, not a second one for `updateType`.
  'ttb-unknown_record.xml': {
    problems: 1,
    include: ['transaction 1, record 1 (explicit.abrogation.regulation) [line 6]: field update.type: must be 1 (update), 2 (delete) or 3 (insert)'],
  },
};

const HEADER = new Set(['transaction.id', 'record.code', 'subrecord.code', 'record.sequence.number', 'update.type']);

/** The file's records as written, read with the test's own saxes tree (not the importer). */
function recordsInFile(file: string): TaricRecord[][] {
  const root = parseXml(fs.readFileSync(file, 'utf8'));
  const only = (el: XmlElement, local: string): XmlElement[] => children(el, local);
  return only(root, 'transaction').map((tx) =>
    only(tx, 'app.message').flatMap((m) =>
      only(m, 'transmission').flatMap((t) =>
        only(t, 'record').map((r) => {
          const body = r.children.find((c) => !HEADER.has(c.local))!;
          return {
            type: body.local,
            updateType: Number(r.children.find((c) => c.local === 'update.type')!.text) as UpdateType,
            fields: Object.fromEntries(body.children.map((f) => [f.local, f.text])),
          };
        }),
      ),
    ),
  );
}

describe('taric.conformance (real TARIC3 files)', function () {
  this.timeout(300_000);
  if (CORPUS_SETTING === 'none') {
    process.stderr.write('taric.conformance: left out (HERALD_TARIC_CORPUS=none)\n');
    return;
  }
  const files = fs.existsSync(CORPUS) ? fs.readdirSync(CORPUS).filter((f) => f.endsWith('.xml')).sort() : [];
  if (files.length === 0 || !fs.existsSync(OFFICIAL_ENVELOPE_XSD)) {
    it('finds the corpus and the published schema', () => {
      expect.fail(
        `no TARIC corpus at ${CORPUS} (${files.length} .xml files) or no published schema at ${OFFICIAL_ENVELOPE_XSD}: ` +
          'set HERALD_TARIC_CORPUS to the corpus directory, or to none to leave the conformance tests out',
      );
    });
    return;
  }

  const t = useTestDb(import.meta.url);
  const db = () => t.get().db;
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'herald-conformance-'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it(`lists every file Herald refuses among the ${files.length} of the corpus`, () => {
    expect(files).to.include.members(Object.keys(REFUSED));
  });

  async function strictRefuses(file: string): Promise<void> {
    const before = await countRows(db());
    const strict = await importXmlWorkbasket(db(), file, { title: 'strict', strict: true }).catch((e: unknown) => e);
    expect(strict, 'a strict import refuses it').to.be.instanceOf(ImportError);
    expect(await countRows(db())).to.deep.equal(before);
  }

  /** Import -> dump -> import: the dump is valid against both schemas and reads back to the same records. */
  async function roundTrip(result: ImportResult, name: string): Promise<void> {
    const original = await storedRecords(db(), result.workbasketId);
    const { envelopes } = await dumpEnvelopes(db(), {
      now: new Date('2026-09-01T00:00:00Z'),
      maxEnvelopeBytes: 40_000_000,
      firstTransactionId: 1,
      dir,
      workbasketIds: [result.workbasketId],
    });
    expect(envelopes).to.have.length(1);
    expect(envelopes[0]!.issues, `${name} dumped, against xsd/`).to.deep.equal([]);
    const official = await validateEnvelopeFile(envelopes[0]!.file, OFFICIAL_ENVELOPE_XSD, 5);
    expect(official.issues, `${name} dumped, against the published schema`).to.deep.equal([]);
    const again = await importXmlWorkbasket(db(), envelopes[0]!.file, { title: `${name} again`, strict: true });
    expect(again.warnings).to.deep.equal([]);
    expect(await storedRecords(db(), again.workbasketId)).to.deep.equal(original);
  }

  for (const name of files) {
    it(`${name}: imports as the published schema says (valid: exact round trip; invalid: warnings, refused by --strict)`, async () => {
      const file = path.join(CORPUS, name);
      const official = await validateEnvelopeFile(file, OFFICIAL_ENVELOPE_XSD, 5);
      const lenient = await importXmlWorkbasket(db(), file, { title: name }).catch((e: unknown) => e);
      const refused = REFUSED[name];
      if (refused) {
        expect(official.valid, 'a file Herald refuses is invalid against the published schema too').to.equal(false);
        expect(lenient).to.be.instanceOf(ImportError);
        const err = lenient as ImportError;
        expect(err.problems.length + err.omitted).to.equal(refused.problems);
        for (const line of refused.include) expect(err.message).to.contain(`\n  ${line}`);
        await strictRefuses(file);
        return;
      }
      if (lenient instanceof Error) throw lenient;
      const result = lenient as ImportResult;
      expect(await storedRecords(db(), result.workbasketId), 'every record and value as the file has it').to.deep.equal(recordsInFile(file));
      if (official.valid) {
        expect(result.warnings, 'a schema-valid file needs no normalisation').to.deep.equal([]);
        const strict = await importXmlWorkbasket(db(), file, { title: `${name} strict`, strict: true });
        expect(strict.records).to.equal(result.records);
      } else {
        expect(result.warnings.length, `${name} is invalid (${official.issues[0]?.message}) but imported without a warning`).to.be.greaterThan(0);
        await strictRefuses(file);
      }
      await roundTrip(result, name);
    });
  }
});
