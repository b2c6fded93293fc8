import { expect } from 'chai';
import fc from 'fast-check';
import { ReportInputError } from '../../src/reports/errors.js';
import { canonicalJson, hashParams, paramsFromPairs } from '../../src/reports/params.js';
import { parseReportRequest } from '../../src/reports/report-types.js';

function inputError(fn: () => unknown): ReportInputError {
  try {
    fn();
  } catch (err) {
    expect(err).to.be.instanceOf(ReportInputError);
    return err as ReportInputError;
  }
  throw new Error('expected a ReportInputError');
}

// Shuffles an object's keys at every depth, keeping the values.
function shuffled(value: unknown, seed: number): unknown {
  if (Array.isArray(value)) return value.map((v, i) => shuffled(v, seed + i));
  if (value === null || typeof value !== 'object') return value;
  const keys = Object.keys(value);
  const order = keys.map((k, i) => ({ k, r: Math.sin(seed * 31 + i) })).sort((a, b) => a.r - b.r);
  return Object.fromEntries(order.map(({ k }) => [k, shuffled((value as Record<string, unknown>)[k], seed + 7)]));
}

describe('reports.params', () => {
  it('gives one canonical JSON and hash whatever the key order, at every depth', () => {
    fc.assert(
      fc.property(fc.jsonValue(), fc.integer(), (value, seed) => {
        const a = canonicalJson(value);
        expect(canonicalJson(shuffled(value, seed))).to.equal(a);
        expect(hashParams(shuffled(value, seed))).to.equal(hashParams(value));
        expect(JSON.parse(a)).to.deep.equal(JSON.parse(JSON.stringify(value)));
      }),
    );
    expect(canonicalJson({ b: 1, a: { d: [2, { f: 1, e: 0 }], c: null } })).to.equal('{"a":{"c":null,"d":[2,{"e":0,"f":1}]},"b":1}');
  });

  it('hashes different params differently and drops undefined members as JSON does', () => {
    expect(hashParams({ from: '2026-01-01', to: '2026-01-31' })).to.not.equal(hashParams({ from: '2026-01-01', to: '2026-02-01' }));
    expect(hashParams({ a: 1, b: undefined })).to.equal(hashParams({ a: 1 }));
    expect(hashParams({ a: 1 })).to.match(/^[0-9a-f]{64}$/);
  });

  it('normalises CLI strings and JSON numbers to the same stored params (so to one dedupe key)', () => {
    const fromCli = parseReportRequest('invoices', paramsFromPairs(['to=2026-01-31', 'supplierId=7', 'from=2026-01-01']));
    const fromJson = parseReportRequest('invoices', { from: '2026-01-01', to: '2026-01-31', supplierId: 7 });
    expect(fromCli.params).to.deep.equal({ from: '2026-01-01', to: '2026-01-31', supplierId: 7 });
    expect(hashParams(fromCli.params)).to.equal(hashParams(fromJson.params));
  });

  it('names the field of the first problem', () => {
    const cases: [unknown, unknown, string, RegExp][] = [
      ['nope', {}, 'type', /must be one of uploads, invoices/],
      [undefined, {}, 'type', /is required/],
      ['uploads', { to: '2026-01-01' }, 'params.from', /is required/],
      ['uploads', { from: '2026-02-30', to: '2026-03-01' }, 'params.from', /must be a date/],
      ['uploads', { from: '2026-02-01', to: '2026-01-01' }, 'params.to', /must not be before from/],
      ['uploads', { from: '2026-01-01', to: '2026-01-01', notification: 'maybe' }, 'params.notification', /sent or pending/],
      ['uploads', { from: '2026-01-01', to: '2026-01-01', colour: 'red' }, 'params.colour', /unknown parameter/],
      ['invoices', { from: '2026-01-01', to: '2026-01-01', supplierId: 'abc' }, 'params.supplierId', /positive id/],
      ['invoices', { from: '2026-01-01', to: '2026-01-01', supplierId: -2 }, 'params.supplierId', /positive id/],
      ['invoices', { from: '2026-01-01', to: '2026-01-01', legalStatus: 'a b' }, 'params.legalStatus', /letters, digits/],
      ['invoices', 'not an object', 'params', /object of parameters/],
    ];
    for (const [type, params, field, message] of cases) {
      const err = inputError(() => parseReportRequest(type, params));
      expect(err.field, JSON.stringify(params)).to.equal(field);
      expect(err.message).to.match(new RegExp(`^${field.replace('.', '\\.')}: `)).and.to.match(message);
    }
  });

  it('reads --param key=value pairs, refusing malformed and repeated ones', () => {
    expect(paramsFromPairs(['from=2026-01-01', 'note=a=b'])).to.deep.equal({ from: '2026-01-01', note: 'a=b' });
    expect(inputError(() => paramsFromPairs(['from'])).message).to.equal('--param: expected key=value, got "from"');
    expect(inputError(() => paramsFromPairs(['=x'])).field).to.equal('--param');
    expect(inputError(() => paramsFromPairs(['from=1', 'from=2'])).message).to.equal('params.from: given more than once');
  });
});
