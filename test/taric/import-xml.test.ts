import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { useTestDb } from '../helpers/db.js';
import { importXmlWorkbasket } from '../../src/taric/import/import-xml.js';
import { ImportError } from '../../src/taric/errors.js';
import { getWorkbasket } from '../../src/taric/store.js';
import type { TaricRecord } from '../../src/taric/model.js';
import { countRows, footnoteTransaction, longFootnoteTransaction, storedRecords, xmlEnvelope, type XmlStyle } from './support/workbaskets.js';

// Copies of the published samples (shared/reference/taric) kept in the repo.
const SAMPLES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../fixtures/workbaskets/envelopes');

const measure: TaricRecord = {
  type: 'measure.component',
  updateType: 3,
  fields: { 'measure.sid': '3900001', 'duty.expression.id': '04', 'duty.amount': '20.000', 'monetary.unit.code': 'EUR', 'measurement.unit.code': 'DTN' },
};

function fromText(text: string, chunkSize = 97): Readable {
  // Small odd-sized chunks so element names and multi-byte characters are
  // split across writes, as they are in a real 64 KB stream.
  const buf = Buffer.from(text, 'utf8');
  const chunks: Buffer[] = [];
  for (let i = 0; i < buf.length; i += chunkSize) chunks.push(buf.subarray(i, i + chunkSize));
  return Readable.from(chunks);
}

describe('taric.importXml', () => {
  const t = useTestDb(import.meta.url);
  const db = () => t.get().db;

  async function rejected(xml: string): Promise<ImportError> {
    const before = await countRows(db());
    const err = await importXmlWorkbasket(db(), fromText(xml), { title: 'bad' }).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err, 'import should have failed').to.be.instanceOf(ImportError);
    expect(await countRows(db())).to.deep.equal(before);
    return err as ImportError;
  }

  it('imports envelopes laid out as published ones are', async () => {
    const a = await importXmlWorkbasket(db(), path.join(SAMPLES, 'footnote-type.xml'), { title: 'sample', reason: 'r' });
    expect(a).to.include({ transactions: 1, records: 2 });
    expect(await getWorkbasket(db(), a.workbasketId)).to.include({ title: 'sample', reason: 'r', status: 'EDITING' });
    expect(await storedRecords(db(), a.workbasketId)).to.deep.equal([
      [
        { type: 'footnote.type', updateType: 3, fields: { 'footnote.type.id': 'HR', 'validity.start.date': '2026-03-01', 'application.code': '2' } },
        { type: 'footnote.type.description', updateType: 3, fields: { 'footnote.type.id': 'HR', 'language.id': 'EN', description: 'Herald sample: footnotes on & about returns' } },
      ],
    ]);
    const b = await importXmlWorkbasket(db(), path.join(SAMPLES, 'goods-nomenclature.xml'), { title: 'goods' });
    expect(await storedRecords(db(), b.workbasketId)).to.deep.equal([
      [
        {
          type: 'goods.nomenclature',
          updateType: 3,
          fields: {
            'goods.nomenclature.sid': '240117',
            'goods.nomenclature.item.id': '8714911010',
            'producline.suffix': '80',
            'validity.start.date': '2026-04-01',
            'statistical.indicator': '0',
          },
        },
      ],
    ]);
  });

  it('reads the same records whatever the namespace prefixes, entities, CDATA or chunking', async () => {
    const txs = [footnoteTransaction(1), [measure], footnoteTransaction(2)];
    const styles: XmlStyle[] = [{}, { env: 'ns1', msg: 'ns2' }, { env: 'env', msg: '' }, { env: '', msg: 'oub' }];
    for (const style of styles) {
      const r = await importXmlWorkbasket(db(), fromText(xmlEnvelope(txs, style), 61), { title: JSON.stringify(style) });
      expect(r).to.include({ transactions: 3, records: 5 });
      expect(await storedRecords(db(), r.workbasketId), JSON.stringify(style)).to.deep.equal(txs);
    }
    const withCdata = xmlEnvelope([footnoteTransaction(3)])
      .replace('Footnote type 3 &amp; &lt;notes&gt;', '<![CDATA[Footnote type 3 & <notes>]]>')
      .replace('<?xml version="1.0" encoding="UTF-8"?>', '\uFEFF<?xml version="1.0" encoding="UTF-8"?>\n<!-- published 2026-01-01 -->');
    const r = await importXmlWorkbasket(db(), fromText(withCdata, 7), { title: 'cdata' });
    expect(await storedRecords(db(), r.workbasketId)).to.deep.equal([footnoteTransaction(3)]);
  });

  it('keeps non-ASCII text exact when a character is split between chunks', async () => {
    const rec = footnoteTransaction(4);
    rec[1]!.fields.description = 'Müller — “Œuvre” ≤ 5 € 日本 🐎';
    const r = await importXmlWorkbasket(db(), fromText(xmlEnvelope([rec]), 5), { title: 'utf8' });
    expect((await storedRecords(db(), r.workbasketId))[0]![1]!.fields.description).to.equal('Müller — “Œuvre” ≤ 5 € 日本 🐎');
  });

  it('skips envelope headers and keeps transactions in document order across insert batches', async () => {
    const txs = Array.from({ length: 700 }, (_, i) => footnoteTransaction(i));
    const xml = xmlEnvelope(txs).replace('id="260001">', 'id="260001">\n  <env:header name="source" value="test"/>');
    const r = await importXmlWorkbasket(db(), fromText(xml, 65536), { title: 'many' });
    expect(r).to.include({ transactions: 700, records: 1400 });
    expect(await storedRecords(db(), r.workbasketId)).to.deep.equal(txs);
  });

  it('rejects a record whose record.code/subrecord.code do not match its element', async () => {
    const xml = xmlEnvelope([footnoteTransaction(1), footnoteTransaction(2)], { codes: (tx, rec) => (tx === 2 && rec === 2 ? ['100', '00'] : undefined) });
    const err = await rejected(xml);
    expect(err.message).to.match(
      /transaction 2, record 2 \(footnote.type.description\) \[line \d+\]: field record.code: record.code\/subrecord.code 100\/00 do not match footnote.type.description \(100\/05\)/,
    );
  });

  it('rejects unknown types, unknown fields, missing fields and bad values, all in one report with lines', async () => {
    const txs: TaricRecord[][] = [
      footnoteTransaction(1),
      [{ type: 'footnote.colour', updateType: 3, fields: { colour: 'red' } }],
      [{ ...footnoteTransaction(3)[0]!, fields: { ...footnoteTransaction(3)[0]!.fields, 'footnote.type.colour': 'red' } }],
      [{ ...footnoteTransaction(4)[0]!, fields: { 'footnote.type.id': 'DD', 'application.code': '7' } }],
      [{ ...measure, fields: { ...measure.fields, 'duty.amount': '20.0001' } }],
    ];
    const err = await rejected(xmlEnvelope(txs, { codes: (tx) => (tx === 2 ? ['999', '00'] : undefined) }));
    const text = err.message;
    expect(text).to.match(/transaction 2, record 1 \(footnote.colour\) \[line \d+\]: unknown record type "footnote.colour"/);
    expect(text).to.match(/transaction 3, record 1 \(footnote.type\) \[line \d+\]: field footnote.type.colour: is not a field of footnote.type/);
    expect(text).to.match(/transaction 4, record 1 \(footnote.type\) \[line \d+\]: field validity.start.date: is required/);
    expect(text).to.match(/transaction 5, record 1 \(measure.component\) \[line \d+\]: field duty.amount: has more than 3 decimal places/);
    expect(err.problems).to.have.length(4);
  });

  it('refuses ceiling and quota.extended.information records', async () => {
    const xml = xmlEnvelope([
      [{ type: 'ceiling', updateType: 3, fields: { 'surveillance.number': '123456', 'validity.start.date': '2026-01-01', 'ceiling.reached.date': '2026-02-01' } }],
    ]);
    const err = await rejected(xml);
    expect(err.message).to.match(/transaction 1, record 1 \(ceiling\) \[line \d+\]: record type ceiling has no known TARIC record code/);
  });

  it('rejects a bad update.type, a nested element in a field, a repeated field and an empty transaction', async () => {
    let xml = xmlEnvelope([footnoteTransaction(1), footnoteTransaction(2), footnoteTransaction(3)]);
    xml = xml.replace('<oub:update.type>3</oub:update.type>', '<oub:update.type>4</oub:update.type>');
    xml = xml.replace('<oub:description>Footnote type 2', '<oub:description><oub:b>bold</oub:b>Footnote type 2');
    xml = xml.replace('<oub:language.id>EN</oub:language.id>\n            <oub:description>Footnote type 3', '<oub:language.id>EN</oub:language.id><oub:language.id>FR</oub:language.id>\n            <oub:description>Footnote type 3');
    xml = xml.replace('</env:envelope>', '  <env:transaction id="9"></env:transaction>\n</env:envelope>');
    const err = await rejected(xml);
    expect(err.message).to.match(/transaction 1, record 1 \(footnote.type\) \[line \d+\]: field update.type: must be 1 \(update\), 2 \(delete\) or 3 \(insert\)\n/);
    expect(err.problems.filter((p) => p.transaction === 1), 'one message per problem').to.have.length(1);
    expect(err.message).to.match(/transaction 2, record 2 \(footnote.type.description\) \[line \d+\]: field description: must hold text, not the element <oub:b>/);
    expect(err.message).to.match(/transaction 3, record 2 \(footnote.type.description\) \[line \d+\]: field language.id: appears more than once/);
    expect(err.message).to.contain('transaction 4: has no records');
  });

  it('rejects XML that is not well formed, with the line, and stores nothing even after batches were written', async () => {
    // 1,200 records are flushed to the database before the broken tag.
    const good = xmlEnvelope(Array.from({ length: 600 }, (_, i) => footnoteTransaction(i)));
    const broken = good.replace('</env:envelope>', '<env:transaction id="x"><env:app.message></env:transaction>\n</env:envelope>');
    const err = await rejected(broken);
    const line = broken.split('\n').length - 2;
    expect(err.message).to.match(new RegExp(`\\[line ${line}\\]: not well-formed XML: .*`));
  });

  it('rejects a file that is not UTF-8, and a document that is not an envelope', async () => {
    const latin1 = Buffer.from(xmlEnvelope([footnoteTransaction(1)]).replace('Footnote type 1', 'Footnote caf\u00e9'), 'latin1');
    const before = await countRows(db());
    const err = await importXmlWorkbasket(db(), Readable.from([latin1]), { title: 'latin1' }).catch((e: unknown) => e);
    expect((err as Error).message).to.contain('not valid UTF-8');
    expect(await countRows(db())).to.deep.equal(before);

    expect((await rejected('<?xml version="1.0"?>\n<invoice><total>1</total></invoice>\n')).message).to.contain(
      '[line 2]: the root element must be an envelope, not <invoice>',
    );
    expect((await rejected('<env:envelope xmlns:env="urn:x" id="1"></env:envelope>')).message).to.contain('the envelope has no transactions');
  });

  it('reads a file path in bounded chunks', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'herald-import-xml-'));
    try {
      const file = path.join(dir, 'env.xml');
      const txs = Array.from({ length: 50 }, (_, i) => longFootnoteTransaction(i, 5000));
      fs.writeFileSync(file, xmlEnvelope(txs));
      const r = await importXmlWorkbasket(db(), file, { title: 'file' });
      expect(await storedRecords(db(), r.workbasketId)).to.deep.equal(txs);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
