import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import fc from 'fast-check';
import type { SourceTransaction, TaricRecord } from '../../src/taric/model.js';
import { getRecordType } from '../../src/taric/registry/index.js';
import { EXPORTABLE_TYPES, sampleRecord } from './support/sample-records.js';
import { ENVELOPE_FOOTER, envelopeHeader, renderTransaction, UnexportableRecordError } from '../../src/taric/envelope/serialize.js';
import { validateEnvelopeFile } from '../../src/taric/envelope/validate.js';
import { escapeAttribute, escapeText, findForbiddenXmlChar, ForbiddenXmlCharError } from '../../src/taric/envelope/xml-escape.js';
import { OFFICIAL_ENVELOPE_XSD, oracleIt, readEnvelope } from './support/envelopes.js';

const tx = (records: TaricRecord[], transactionId = 7, workbasketId = 3): SourceTransaction => ({ transactionId, workbasketId, records });
const envelopeText = (t: SourceTransaction, taricId = 41, first = 1) => envelopeHeader('230001') + renderTransaction(t, taricId, first).text + ENVELOPE_FOOTER;
const description = (text: string): TaricRecord => ({
  type: 'footnote.description',
  updateType: 3,
  fields: { 'footnote.description.period.sid': '1', 'language.id': 'EN', 'footnote.type.id': 'TN', 'footnote.id': '001', description: text },
});


describe('taric.serialize', () => {
  let dir: string;
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'herald-serialize-'));
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  function writeTemp(name: string, text: string): string {
    const file = path.join(dir, name);
    fs.writeFileSync(file, text);
    return file;
  }

  describe('every record type', () => {
    // Each type twice: with every optional field, and with none.
    const records = EXPORTABLE_TYPES.flatMap((t, i) => [sampleRecord(t, i + 1, { optional: 'all' }), sampleRecord(t, i + 500, { optional: 'none' })]);
    const text = envelopeText(tx(records));

    it('renders a record of each of the 100 exportable types into an envelope valid against xsd/', async () => {
      expect(new Set(records.map((r) => r.type)).size).to.equal(100);
      const result = await validateEnvelopeFile(writeTemp('all-types.xml', text), 'herald');
      expect(result.issues).to.deep.equal([]);
      expect(result.valid).to.equal(true);
    });

    oracleIt('renders the same envelope valid against the published schema', async () => {
      const result = await validateEnvelopeFile(writeTemp('all-types-official.xml', text), OFFICIAL_ENVELOPE_XSD);
      expect(result.issues).to.deep.equal([]);
      expect(result.valid).to.equal(true);
    });

    it('writes codes, sequence numbers and fields in registry order, and reads back the same values', () => {
      const read = readEnvelope(text);
      expect(read.id).to.equal('230001');
      expect(read.transactions).to.have.length(1);
      expect(read.transactions[0]!.id).to.equal('41');
      read.transactions[0]!.records.forEach((r, i) => {
        const type = getRecordType(records[i]!.type)!;
        expect(r.type).to.equal(type.element);
        expect([r.recordCode, r.subrecordCode]).to.deep.equal([type.recordCode, type.subrecordCode]);
        expect([r.messageId, r.sequence, r.transactionId]).to.deep.equal([String(i + 1), String(i + 1), '41']);
        expect(r.updateType).to.equal(String(records[i]!.updateType));
        const present = type.fields.map((f) => f.name).filter((n) => n in records[i]!.fields);
        expect(Object.keys(r.fields)).to.deep.equal(present);
        expect(r.fields).to.deep.equal(records[i]!.fields);
      });
    });
  });

  describe('layout', () => {
    it('numbers app.message ids and record sequence numbers from the given first sequence', () => {
      const t = tx([sampleRecord('footnote.type', 1), sampleRecord('footnote', 2), sampleRecord('measure', 3)]);
      const read = readEnvelope(envelopeText(t, 99, 1000));
      expect(read.transactions[0]!.records.map((r) => [r.messageId, r.sequence])).to.deep.equal([
        ['1000', '1000'],
        ['1001', '1001'],
        ['1002', '1002'],
      ]);
    });

    it('puts every element on a line of its own and counts lines and bytes exactly', () => {
      const t = tx([sampleRecord('measure', 5, { optional: 'all' }), description('line one\nline two\r\nend')]);
      const r = renderTransaction(t, 5, 1);
      expect(r.bytes).to.equal(Buffer.byteLength(r.text));
      expect(r.text.split('\n').length - 1).to.equal(r.lines);
      expect(r.records).to.equal(2);
      for (const line of r.text.split('\n').slice(0, -1)) expect(line).to.match(/^<[^<]*(<\/[^>]+>)?(<\/[^>]+>)*(<[^>]+>)*$/);
      expect(r.text).to.contain('<oub:description>line one&#10;line two&#13;&#10;end</oub:description>\n');
    });

    it('renders the envelope header with its id and both namespaces', () => {
      expect(envelopeHeader('230001')).to.equal(
        '<?xml version="1.0" encoding="UTF-8"?>\n' +
          '<env:envelope xmlns="urn:publicid:-:DGTAXUD:TARIC:MESSAGE:1.0" xmlns:env="urn:publicid:-:DGTAXUD:GENERAL:ENVELOPE:1.0" id="230001">\n',
      );
    });
  });

  describe('escaping', () => {
    it('escapes & < > in text, leaves quotes, and encodes LF and CR as references', () => {
      expect(escapeText(`a & b < c > d "e" 'f' ]]> g`)).to.equal(`a &amp; b &lt; c &gt; d "e" 'f' ]]&gt; g`);
      expect(escapeText('tab\tnl\ncr\r')).to.equal('tab\tnl&#10;cr&#13;');
      expect(escapeText('plain é € 𝄞')).to.equal('plain é € 𝄞');
    });

    it('escapes & < > " and whitespace in attributes', () => {
      expect(escapeAttribute(`a&b<c>d"e'f\tg\nh\ri`)).to.equal(`a&amp;b&lt;c&gt;d&quot;e'f&#9;g&#10;h&#13;i`);
    });

    it('counts multi-byte characters in bytes', () => {
      const base = renderTransaction(tx([description('')]), 1, 1).bytes;
      const text = 'é€𝄞';
      expect(renderTransaction(tx([description(text)]), 1, 1).bytes - base).to.equal(2 + 3 + 4);
      expect(renderTransaction(tx([description('&')]), 1, 1).bytes - base).to.equal('&amp;'.length);
    });

    it('finds every character XML 1.0 forbids, and only those', () => {
      for (let cp = 0; cp < 0x20; cp++) {
        const forbidden = cp !== 0x9 && cp !== 0xa && cp !== 0xd;
        expect(findForbiddenXmlChar(`ok${String.fromCharCode(cp)}`) !== null, `U+${cp.toString(16)}`).to.equal(forbidden);
      }
      for (const c of ['\uFFFE', '\uFFFF', '\uD800', '\uDFFF', 'x\uDC00']) expect(findForbiddenXmlChar(c), JSON.stringify(c)).to.not.equal(null);
      for (const c of ['\u007F', '\u0085', '\uD7FF', '\uE000', '\uFFFD', '𝄞', '\u{10FFFF}']) expect(findForbiddenXmlChar(c), JSON.stringify(c)).to.equal(null);
    });

    const TRICKY = ['&', '<', '>', '"', "'", '\r', '\n', '\t', ']]>', '\u0000', '\uD800'];
    const anyCodePoint = fc.integer({ min: 0, max: 0x10ffff }).map((cp) => String.fromCodePoint(cp));

    it('round-trips any Unicode text exactly, or refuses it when XML 1.0 cannot carry it', () => {
      fc.assert(
        fc.property(fc.string({ unit: fc.oneof(fc.constantFrom(...TRICKY), anyCodePoint) }), (s) => {
          const t = tx([description(s)]);
          if (findForbiddenXmlChar(s)) {
            expect(() => renderTransaction(t, 1, 1)).to.throw(UnexportableRecordError);
            return;
          }
          const read = readEnvelope(envelopeText(t));
          expect(read.transactions[0]!.records[0]!.fields.description).to.equal(s);
        }),
        { numRuns: 300 },
      );
    });
  });

  describe('refusals', () => {
    it('refuses a character XML 1.0 forbids, naming workbasket, transaction, record and field', () => {
      const t = tx([sampleRecord('footnote.type', 1), description('bell\u0007')], 12, 4);
      let err: unknown;
      try {
        renderTransaction(t, 1, 1);
      } catch (e) {
        err = e;
      }
      expect(err).to.be.instanceOf(UnexportableRecordError);
      const u = err as UnexportableRecordError;
      expect([u.workbasketId, u.transactionId, u.recordPosition, u.recordType, u.field]).to.deep.equal([4, 12, 2, 'footnote.description', 'description']);
      expect(u.message).to.equal(
        'cannot export workbasket 4, transaction 12, record 2 (footnote.description), field description: contains U+0007 at character 5, which XML 1.0 cannot carry',
      );
      expect(u.cause).to.be.instanceOf(ForbiddenXmlCharError);
    });

    it('refuses record types without a record code, naming the type', () => {
      expect(() => renderTransaction(tx([sampleRecord('ceiling', 1)]), 1, 1)).to.throw(
        UnexportableRecordError,
        'record 1 (ceiling): record type ceiling has no record code known to Herald, so it cannot be exported',
      );
      expect(() => renderTransaction(tx([sampleRecord('quota.extended.information', 1)]), 1, 1)).to.throw(UnexportableRecordError, 'quota.extended.information');
    });

    it('refuses unknown record types and fields instead of dropping them', () => {
      expect(() => renderTransaction(tx([{ type: 'no.such', updateType: 3, fields: {} }]), 1, 1)).to.throw(UnexportableRecordError, 'unknown record type "no.such"');
      const record = sampleRecord('footnote.type', 1);
      record.fields.colour = 'red';
      expect(() => renderTransaction(tx([record]), 1, 1)).to.throw(UnexportableRecordError, 'field colour: is not a field of footnote.type');
    });

    it('refuses a field value that is not a string', () => {
      const record = sampleRecord('footnote.type', 1);
      (record.fields as Record<string, unknown>)['footnote.type.id'] = 12;
      expect(() => renderTransaction(tx([record]), 1, 1)).to.throw(UnexportableRecordError, 'value must be a string, got number');
    });
  });
});
