import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { expect } from 'chai';
import { useTestDb } from '../helpers/db.js';
import { importXmlWorkbasket } from '../../src/taric/import/import-xml.js';
import { importJsonWorkbasket } from '../../src/taric/import/import-json.js';
import { formatWarning, ImportError, type ImportWarning } from '../../src/taric/errors.js';
import type { TaricRecord } from '../../src/taric/model.js';
import { countRows, footnoteTransaction, storedRecords, toJsonWorkbasket, xmlEnvelope } from './support/workbaskets.js';

// Normalisations (src/taric/import/import-xml-normalise.ts): what the schema
// refuses but the import can still read is stored with a warning naming it,
// and a strict import refuses it; the strict XML import validates the file
// against xsd/envelope-import.xsd first.

const measure: TaricRecord = {
  type: 'measure.component',
  updateType: 3,
  fields: { 'measure.sid': '3900001', 'duty.expression.id': '04', 'duty.amount': '20.000', 'monetary.unit.code': 'EUR', 'measurement.unit.code': 'DTN' },
};

describe('taric.importWarnings (normalisations are reported, --strict refuses them)', () => {
  const t = useTestDb(import.meta.url);
  const db = () => t.get().db;
  let dir: string;
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'herald-import-warnings-'));
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  let n = 0;
  function file(xml: string): string {
    const f = path.join(dir, `in-${++n}.xml`);
    fs.writeFileSync(f, xml);
    return f;
  }

  /** Imports leniently (stored, with the warnings returned) and strictly (refused, nothing stored). */
  async function both(xml: string, expected: TaricRecord[][]): Promise<{ warnings: string[]; raw: ImportWarning[]; strict: ImportError }> {
    const f = file(xml);
    const r = await importXmlWorkbasket(db(), f, { title: 'lenient' });
    expect(await storedRecords(db(), r.workbasketId)).to.deep.equal(expected);
    const before = await countRows(db());
    const strict = await importXmlWorkbasket(db(), f, { title: 'strict', strict: true }).then(
      () => null,
      (e: unknown) => e,
    );
    expect(strict, 'a strict import refuses it').to.be.instanceOf(ImportError);
    expect(await countRows(db())).to.deep.equal(before);
    return { warnings: r.warnings.map(formatWarning), raw: r.warnings, strict: strict as ImportError };
  }

  it('imports a clean envelope without warnings, strictly too, with a 5- or 6-digit envelope id', async () => {
    for (const id of ['18017', '260001']) {
      const xml = xmlEnvelope([footnoteTransaction(1), [measure]]).replace('id="260001"', `id="${id}"`);
      const lenient = await importXmlWorkbasket(db(), file(xml), { title: id });
      expect(lenient.warnings).to.deep.equal([]);
      const strict = await importXmlWorkbasket(db(), file(xml), { title: id, strict: true });
      expect(await storedRecords(db(), strict.workbasketId)).to.deep.equal([footnoteTransaction(1), [measure]]);
    }
  });

  it('warns about an envelope id the schema refuses, and a strict import names the schema and line', async () => {
    const xml = xmlEnvelope([footnoteTransaction(1)]).replace('id="260001"', 'id="1"');
    const { warnings, strict } = await both(xml, [footnoteTransaction(1)]);
    expect(warnings).to.deep.equal(['[line 2]: <env:envelope> id "1" does not match [0-9]{5,6}; ignored: Herald gives what it exports ids of its own']);
    expect(strict.message).to.equal(
      "workbasket not imported: 1 problem\n  [line 2]: not valid against Herald's import schema (xsd/envelope-import.xsd): " +
        "Element 'env:envelope', attribute 'id': [facet 'pattern'] The value '1' is not accepted by the pattern '[0-9]{5,6}'.",
    );
  });

  it('warns once, with a count, about elements outside their namespace', async () => {
    // app.message in the message namespace, as in trade-tariff-backend's footnote.xml.
    const xml = xmlEnvelope([footnoteTransaction(1), footnoteTransaction(2)]).replace(/<(\/?)env:app\.message/g, '<$1oub:app.message').replace(
      '<env:envelope ',
      '<env:envelope xmlns:oub="urn:publicid:-:DGTAXUD:TARIC:MESSAGE:1.0" ',
    );
    const { raw, strict } = await both(xml, [footnoteTransaction(1), footnoteTransaction(2)]);
    expect(raw).to.have.length(1);
    expect(raw[0]).to.deep.include({ transaction: 1, line: 4, count: 4 });
    expect(formatWarning(raw[0]!)).to.equal(
      'transaction 1 [line 4]: <oub:app.message> is in namespace urn:publicid:-:DGTAXUD:TARIC:MESSAGE:1.0, ' +
        'not urn:publicid:-:DGTAXUD:GENERAL:ENVELOPE:1.0; read by its name (4 times; the first is shown)',
    );
    expect(strict.message).to.contain("[line 4]: not valid against Herald's import schema (xsd/envelope-import.xsd): Element 'oub:app.message': This element is not expected.");
  });

  it('warns about fields and header elements out of schema order, at the line of the first one out of place', async () => {
    const fields = xmlEnvelope([[measure]])
      .replace(/( *<oub:duty\.expression\.id>04<\/oub:duty\.expression\.id>\n)( *<oub:duty\.amount>20\.000<\/oub:duty\.amount>\n)/, '$2$1');
    const line = fields.split('\n').findIndex((l) => l.includes('<oub:duty.amount>')) + 1;
    const { warnings } = await both(fields, [[measure]]);
    expect(warnings).to.deep.equal([
      `transaction 1, record 1 (measure.component) [line ${line}]: field duty.amount comes before duty.expression.id, against the schema's order; stored, and exported, in schema order`,
    ]);

    const header = xmlEnvelope([[measure]]).replace(/( *<oub:record\.code>.*\n)( *<oub:subrecord\.code>.*\n)/, '$2$1');
    const headerLine = header.split('\n').findIndex((l) => l.includes('<oub:subrecord.code>')) + 1;
    const h = await both(header, [[measure]]);
    expect(h.warnings).to.deep.equal([
      `transaction 1, record 1 (measure.component) [line ${headerLine}]: <subrecord.code> comes before <record.code>, against the schema's order; read as if in order`,
    ]);
  });

  it('warns about missing or malformed numbering, stray text and unknown attributes, which it drops', async () => {
    const xml = xmlEnvelope([footnoteTransaction(1)])
      .replace(/ *<oub:transaction\.id>1<\/oub:transaction\.id>\n/g, '')
      .replace('<oub:record.sequence.number>2</oub:record.sequence.number>', '<oub:record.sequence.number>two</oub:record.sequence.number>')
      .replace('<env:transaction id="1">', '<env:transaction id="1" colour="red">stray')
      .replace('<env:app.message id="2">', '<env:app.message>');
    const lines = xml.split('\n');
    const lineOf = (needle: string, nth = 0) => lines.map((l, i) => (l.includes(needle) ? i + 1 : 0)).filter(Boolean)[nth]!;
    const { warnings } = await both(xml, [footnoteTransaction(1)]);
    expect(warnings).to.have.members([
      'transaction 1 [line 3]: attribute colour on <env:transaction> is not in the schema; ignored',
      'transaction 1 [line 3]: text "stray" inside <transaction> is not in the schema; ignored',
      `transaction 1, record 1 (footnote.type) [line ${lineOf('<oub:record>')}]: field transaction.id: is missing; not needed: Herald numbers what it exports (2 times; the first is shown)`,
      `transaction 1 [line ${lineOf('<env:app.message>')}]: <env:app.message> has no id; ignored: Herald gives what it exports ids of its own`,
      `transaction 1, record 2 (footnote.type.description) [line ${lineOf('<oub:record>', 1)}]: field record.sequence.number: must be a whole number; not needed: Herald numbers what it exports`,
    ]);
  });

  it('reports update.type 99 once, and a repeated header element as a problem', async () => {
    const xml = xmlEnvelope([footnoteTransaction(1)]).replace('<oub:update.type>3</oub:update.type>', '<oub:update.type>99</oub:update.type>');
    const err = (await importXmlWorkbasket(db(), Readable.from([xml]), { title: '99' }).catch((e: unknown) => e)) as ImportError;
    expect(err.problems.map((p) => `${p.field}: ${p.message}`)).to.deep.equal(['update.type: must be 1 (update), 2 (delete) or 3 (insert)']);
    const twice = xmlEnvelope([footnoteTransaction(1)]).replace('<oub:update.type>3</oub:update.type>', '<oub:update.type>3</oub:update.type><oub:update.type>1</oub:update.type>');
    const e2 = (await importXmlWorkbasket(db(), Readable.from([twice]), { title: 'twice' }).catch((e: unknown) => e)) as ImportError;
    expect(e2.message).to.match(/transaction 1, record 1 \[line \d+\]: field update.type: appears more than once/);
  });

  it('needs a file path for a strict XML import', async () => {
    const err = await importXmlWorkbasket(db(), Readable.from([xmlEnvelope([footnoteTransaction(1)])]), { title: 's', strict: true }).catch((e: unknown) => e);
    expect((err as Error).message).to.equal('a strict XML import validates a file: pass its path');
  });

  it('warns when JSON gives a whole number for a field, and a strict JSON import refuses it', async () => {
    const doc = toJsonWorkbasket([footnoteTransaction(1)]) as unknown as { transactions: Array<{ records: Array<{ fields: Record<string, unknown> }> }> };
    doc.transactions[0]!.records[0]!.fields['application.code'] = 7;
    const r = await importJsonWorkbasket(db(), doc);
    expect(r.warnings.map(formatWarning)).to.deep.equal(['transaction 1, record 1 (footnote.type): field application.code: the number 7 was read as the text "7"']);
    expect(await storedRecords(db(), r.workbasketId)).to.deep.equal([footnoteTransaction(1)]);
    const strict = await importJsonWorkbasket(db(), doc, { strict: true }).catch((e: unknown) => e);
    expect((strict as Error).message).to.equal(
      'workbasket not imported: 1 problem\n  transaction 1, record 1 (footnote.type): field application.code: the number 7 was read as the text "7" (refused by --strict)',
    );
  });
});
