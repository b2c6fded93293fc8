import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import fc from 'fast-check';
import { getSimpleType, SIMPLE_TYPES } from '../../src/taric/registry/index.js';
import { EXPORTABLE_TYPES, sampleRecord, sampleValue } from './support/sample-records.js';
import { validateEnvelopeFile } from '../../src/taric/envelope/validate.js';
import { checkFieldValue, checkRecord, compareDecimals } from '../../src/taric/import/values.js';
import { escapeText } from '../../src/taric/envelope/xml-escape.js';
import { renderSimpleType } from '../../src/taric/envelope/xsd.js';
import { compileXsdPattern, XsdRegexError } from '../../src/taric/import/xsd-regex.js';

const ok = (type: string, ...values: string[]) => {
  for (const v of values) expect(checkFieldValue(type, v), `${type} ${JSON.stringify(v)}`).to.equal(null);
};
const bad = (type: string, value: string, reason: string | RegExp) => {
  const got = checkFieldValue(type, value);
  if (typeof reason === 'string') expect(got, `${type} ${JSON.stringify(value)}`).to.equal(reason);
  else expect(got, `${type} ${JSON.stringify(value)}`).to.match(reason);
};

describe('taric.values', () => {
  describe('checkFieldValue', () => {
    it('checks length in characters (code points), not UTF-16 units or bytes', () => {
      ok('AdditionalCode', 'A1B');
      bad('AdditionalCode', 'A1', 'must be exactly 3 characters long');
      ok('MeasureTypeCombination', 'é', '𝄞');
      bad('MeasureTypeCombination', 'ab', 'must be exactly 1 character long');
    });

    it('checks maxLength in characters', () => {
      ok('ShortDescription', 'x'.repeat(1000), '𝄞'.repeat(1000), '');
      bad('ShortDescription', 'x'.repeat(1001), 'longer than 1000 characters');
      bad('GeographicalAreaId', 'ABCDE', 'longer than 4 characters');
    });

    it('anchors patterns to the whole value, alternation included', () => {
      ok('FootnoteTypeId', 'AB', 'ABC');
      bad('FootnoteTypeId', 'A', 'must match [A-Z]{2}|[A-Z]{3}');
      bad('FootnoteTypeId', 'ABCD', 'must match [A-Z]{2}|[A-Z]{3}');
      bad('FootnoteTypeId', 'ab', 'must match [A-Z]{2}|[A-Z]{3}');
      ok('GeographicalAreaId', '1011', 'GB');
      bad('GeographicalAreaId', 'GBR', 'must match [A-Z0-9]{2}|[A-Z0-9]{4}');
      ok('ActionCode', '01', '012');
      bad('ActionCode', '0123', 'must match \\d\\d\\d?');
    });

    it('reads \\d as any Unicode decimal digit, as XSD does', () => {
      ok('MeursingHeadingNumber', '٣', '12');
      bad('MeursingHeadingNumber', '1a', 'must match \\d{1,3}');
    });

    it('checks string enumerations exactly and numeric ones by value', () => {
      ok('UpdateType', '1', '2', '3');
      bad('UpdateType', '4', 'must be one of 1, 2, 3');
      bad('UpdateType', ' 1', 'must be exactly 1 character long');
      ok('CodeTypeId', 'ACT', 'RLTP');
      bad('CodeTypeId', 'act', 'must be one of ACT, COND, DE, GA, MOU, MQC, MT, NG, RLTP');
      ok('DutyAmountApplicabilityCode', '0', '2', '02', '+1');
      bad('DutyAmountApplicabilityCode', '3', 'must be one of 0, 1, 2');
    });

    it('checks whole numbers against their bounds and the xs:int range', () => {
      ok('SID', '1', '99999999', '007');
      bad('SID', '0', 'must be at least 1');
      bad('SID', '100000000', 'must be at most 99999999');
      bad('SID', '2147483648', 'is outside the xs:int range');
      bad('SID', '1.0', 'must be a whole number');
      bad('SID', '', 'must be a whole number');
      bad('SID', ' 1', 'must not start or end with whitespace');
      ok('QuotaCriticalTreshold', '0', '100');
      bad('QuotaCriticalTreshold', '-1', 'must be at least 0');
    });

    it('checks decimals exactly: bounds, exclusive bounds and decimal places (trailing zeros do not count)', () => {
      ok('DutyAmount', '9999999.999', '0', '-5', '.5', '5.', '1.2340');
      bad('DutyAmount', '9999999.9991', /^must be at most|has more than 3 decimal places$/);
      bad('DutyAmount', '10000000', 'must be at most 9999999.999');
      bad('DutyAmount', '1.2345', 'has more than 3 decimal places');
      bad('DutyAmount', '1e3', 'must be a decimal number');
      bad('DutyAmount', '', 'must be a decimal number');
      ok('ExchangeRate', '0.00000001', '99999999.99999999');
      bad('ExchangeRate', '0', 'must be greater than 0');
      bad('ExchangeRate', '-0.0', 'must be greater than 0');
      bad('ExchangeRate', '100000000', 'must be at most 99999999.99999999');
      bad('ExchangeRate', '0.000000001', 'has more than 8 decimal places');
    });

    it('accepts only real calendar dates', () => {
      ok('Date', '2024-02-29', '2000-02-29', '0001-01-01', '9999-12-31');
      bad('Date', '2023-02-29', 'day 29 does not exist in 2023-02');
      bad('Date', '1900-02-29', 'day 29 does not exist in 1900-02');
      bad('Date', '2024-04-31', 'day 31 does not exist in 2024-04');
      bad('Date', '2024-13-01', 'month 13 does not exist');
      bad('Date', '0000-01-01', 'year 0000 does not exist');
      bad('Date', '2024-1-01', 'must be a date YYYY-MM-DD');
      bad('Date', '2024-01-01Z', 'must match \\d{4}-\\d{2}-\\d{2}');
      bad('Date', '٢٠٢٤-01-01', 'must be a date YYYY-MM-DD');
    });

    it('accepts date-times per the Timestamp pattern with a real time of day', () => {
      ok('Timestamp', '2024-01-31T23:59:59', '2024-02-29T00:00:00');
      bad('Timestamp', '2024-01-31T24:00:00', 'has a time of day that does not exist');
      bad('Timestamp', '2024-01-31T12:60:00', 'has a time of day that does not exist');
      bad('Timestamp', '2023-02-29T12:00:00', 'day 29 does not exist in 2023-02');
      bad('Timestamp', '2024-01-31 23:59:59', 'must be a date and time YYYY-MM-DDThh:mm:ss');
      bad('Timestamp', '2024-01-31T23:59:59.5', 'must match \\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}');
    });

    it('refuses characters XML 1.0 cannot carry, and allows tab, LF and CR', () => {
      ok('ShortDescription', 'a\tb\nc\r\nd', 'é € 𝄞 "quoted" <tag> & more');
      bad('ShortDescription', 'bell\u0007', 'contains U+0007, which XML 1.0 cannot carry');
      bad('ShortDescription', 'nul\u0000', 'contains U+0000, which XML 1.0 cannot carry');
      bad('ShortDescription', 'x\uFFFE', 'contains U+FFFE, which XML 1.0 cannot carry');
      bad('ShortDescription', 'half \uD83D pair', 'contains U+D83D, which XML 1.0 cannot carry');
      bad('ShortDescription', 'half \uDD1E pair', 'contains U+DD1E, which XML 1.0 cannot carry');
    });

    it('names an unknown simple type', () => {
      expect(checkFieldValue('NoSuchType', 'x')).to.equal('unknown simple type NoSuchType');
    });
  });

  describe('compareDecimals', () => {
    // Reference: scale both to 10 fraction digits as BigInt.
    const scaled = (s: string) => {
      const neg = s.startsWith('-');
      const [i = '', f = ''] = s.replace(/^[+-]/, '').split('.');
      const v = BigInt(`${i || '0'}${f.padEnd(10, '0')}`);
      return neg ? -v : v;
    };
    const decimal = fc
      .tuple(fc.constantFrom('', '+', '-'), fc.stringMatching(/^[0-9]{0,12}$/), fc.stringMatching(/^[0-9]{0,10}$/), fc.boolean())
      .filter(([, i, f]) => i !== '' || f !== '')
      .map(([sign, i, f, dot]) => (f === '' && !dot ? `${sign}${i}` : `${sign}${i}.${f}`))
      .filter((s) => /^[+-]?(\d+(\.\d*)?|\.\d+)$/.test(s));

    it('orders decimal literals exactly like BigInt arithmetic does', () => {
      fc.assert(
        fc.property(decimal, decimal, (a, b) => {
          const want = scaled(a) < scaled(b) ? -1 : scaled(a) > scaled(b) ? 1 : 0;
          expect(compareDecimals(a, b), `${a} vs ${b}`).to.equal(want);
        }),
        { numRuns: 2000 },
      );
    });
  });

  describe('XSD pattern translation', () => {
    it('treats ^ and $ as plain characters and . as anything but a line break', () => {
      expect(compileXsdPattern('a^b$').test('a^b$')).to.equal(true);
      expect(compileXsdPattern('a.c').test('a\nc')).to.equal(false);
      expect(compileXsdPattern('a.c').test('a𝄞c')).to.equal(true);
      expect(compileXsdPattern('[\\-a]+').test('-a-')).to.equal(true);
      expect(compileXsdPattern('[^0-9]').test('x')).to.equal(true);
      expect(compileXsdPattern('\\s\\S').test(' x')).to.equal(true);
    });

    it('refuses constructs without an exact JavaScript meaning instead of guessing', () => {
      for (const p of ['\\i\\c*', '[a-z-[aeiou]]', '\\p{IsBasicLatin}', '(a', 'a{2,1}', '[\\w]']) {
        expect(() => compileXsdPattern(p), p).to.throw(XsdRegexError);
      }
    });
  });

  describe('agreement with libxml2 (the validator export uses)', () => {
    // One schema holding every simple type, one document holding many
    // candidate values per type, one value per line: libxml2's verdict per
    // line against checkFieldValue's.
    const names = Object.keys(SIMPLE_TYPES);
    let dir: string;
    before(() => {
      dir = fs.mkdtempSync(path.join(os.tmpdir(), 'herald-values-'));
      fs.writeFileSync(path.join(dir, 'values.xsd'), schema);
    });
    after(() => fs.rmSync(dir, { recursive: true, force: true }));

    /** Lines of `lines` (1-based, with the declaration and root) libxml2 rejects. */
    async function libxmlRejects(name: string, lines: string[]): Promise<Set<number>> {
      const file = path.join(dir, name);
      fs.writeFileSync(file, ['<?xml version="1.0" encoding="UTF-8"?>', '<values>', ...lines, '</values>'].join('\n'));
      const result = await validateEnvelopeFile(file, path.join(dir, 'values.xsd'), 1_000_000);
      expect(result.issueCount).to.equal(result.issues.length);
      return new Set(result.issues.map((i) => i.line));
    }

    const schema = [
      '<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" elementFormDefault="qualified">',
      ...names.map((n) => renderSimpleType(n, getSimpleType(n)!)),
      '<xs:element name="values"><xs:complexType><xs:choice minOccurs="0" maxOccurs="unbounded">',
      ...names.map((n) => `<xs:element name="${n}" type="${n}"/>`),
      '</xs:choice></xs:complexType></xs:element>',
      '</xs:schema>',
    ].join('\n');

    const alphabet = ['0', '1', '9', 'A', 'Z', 'a', '.', '-', '+', ':', 'T', ' ', '٣', 'é', '𝄞', '\t', '\n', '&', '<'];
    const mutate = (v: string, rnd: () => number) => {
      const chars = [...v];
      const at = Math.floor(rnd() * (chars.length + 1));
      const c = alphabet[Math.floor(rnd() * alphabet.length)]!;
      const op = Math.floor(rnd() * 3);
      if (op === 0) chars.splice(at, 0, c);
      else if (op === 1) chars.splice(at, 1);
      else chars.splice(at, 1, c);
      return chars.join('');
    };

    // libxml2 (libxml2-wasm's build, and xmllint 2.9.14) mis-compiles
    // counted repeats inside an alternation: [A-Z]{2}|[A-Z]{3} accepts "ABCD",
    // [0-9]{5}|[0-9]{3} accepts "1234567". Herald's check follows the XSD
    // spec there, so it is stricter than the export-time validation for
    // these patterns; that is why import must run checkFieldValue.
    const counted = (t: string) => /\|/.test(getSimpleType(t)!.pattern ?? '') && /\{/.test(getSimpleType(t)!.pattern ?? '');

    it('shows the libxml2 alternation bug Herald guards against', async () => {
      const rejected = await libxmlRejects('bug.xml', [
        '<FootnoteTypeId>ABCD</FootnoteTypeId>',
        '<FootnoteId>1234567</FootnoteId>',
        '<FootnoteTypeId>ABCDE</FootnoteTypeId>',
      ]);
      expect([...rejected]).to.deep.equal([5]);
      bad('FootnoteTypeId', 'ABCD', 'must match [A-Z]{2}|[A-Z]{3}');
      bad('FootnoteId', '1234567', 'must match [0-9]{5}|[0-9]{3}');
    });

    it('accepts and refuses the same values for every simple type (Herald stricter only where documented)', async () => {
      const rnd = fc.sample(fc.integer({ min: 0, max: 2 ** 31 - 1 }), { numRuns: 1, seed: 4242 })[0]!;
      let state = rnd;
      const next = () => ((state = (state * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
      const cases: Array<{ type: string; value: string }> = [];
      for (const type of names) {
        const base = [
          sampleValue(type, 1),
          sampleValue(type, 2, { textLength: 5 }),
          ...['', '0', '-0', '-1', '+07', '.5', '5.', '1.5', '1.2340', '1.000000000', '0.000000001', '999.9990', '99999999.999999990'],
          ...['2147483648', '2024-02-29', '1900-02-29', '2023-02-29T10:00:00', '2024-01-01T23:59:60'],
        ];
        for (const v of base) {
          cases.push({ type, value: v });
          let m = v;
          for (let i = 0; i < 25; i++) cases.push({ type, value: (m = mutate(i % 5 === 0 ? v : m, next)) });
        }
      }
      const rejectedLines = await libxmlRejects('cases.xml', cases.map((c) => `<${c.type}>${escapeText(c.value)}</${c.type}>`));
      const disagreements: string[] = [];
      cases.forEach((c, i) => {
        const libxmlOk = !rejectedLines.has(i + 3);
        const mine = checkFieldValue(c.type, c.value);
        const stricterOnWhitespace = getSimpleType(c.type)!.base !== 'string' && /^[ \t\n\r]|[ \t\n\r]$/.test(c.value);
        const libxmlBug = counted(c.type) && mine?.startsWith('must match ');
        if (mine === null && !libxmlOk) disagreements.push(`${c.type} ${JSON.stringify(c.value)}: Herald accepts, libxml2 refuses`);
        if (mine !== null && libxmlOk && !stricterOnWhitespace && !libxmlBug) {
          disagreements.push(`${c.type} ${JSON.stringify(c.value)}: Herald refuses (${mine}), libxml2 accepts`);
        }
      });
      expect(cases.length).to.be.greaterThan(15_000);
      expect(disagreements).to.deep.equal([]);
    });
  });

  describe('checkRecord', () => {
    it('passes a sample record of every type that has a record code', () => {
      for (const t of EXPORTABLE_TYPES) {
        expect(checkRecord(sampleRecord(t, 3, { optional: 'all' })), t.element).to.deep.equal([]);
        expect(checkRecord(sampleRecord(t, 4, { optional: 'none' })), t.element).to.deep.equal([]);
      }
    });

    it('reports unknown types, unknown and missing fields, bad values and bad update types together', () => {
      expect(checkRecord({ type: 'no.such', updateType: 3, fields: {} })).to.deep.equal([{ field: 'type', message: 'unknown record type "no.such"' }]);
      const issues = checkRecord({
        type: 'footnote.type',
        updateType: 4 as never,
        fields: { 'footnote.type.id': 'toolong', 'validity.end.date': '2024-02-30', colour: 'red' },
      });
      expect(issues).to.deep.equal([
        { field: 'update.type', message: 'must be 1 (update), 2 (delete) or 3 (insert)' },
        { field: 'colour', message: 'is not a field of footnote.type' },
        { field: 'footnote.type.id', message: 'must match [A-Z]{2}|[A-Z]{3}' },
        { field: 'validity.start.date', message: 'is required' },
        { field: 'validity.end.date', message: 'day 30 does not exist in 2024-02' },
        { field: 'application.code', message: 'is required' },
      ]);
    });

    it('refuses the record types that have no record code', () => {
      const issues = checkRecord(sampleRecord('ceiling', 1));
      expect(issues).to.deep.equal([{ field: 'type', message: 'record type ceiling has no record code known to Herald, so it cannot be exported' }]);
    });
  });
});
