import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { getRecordType, getSimpleType, isExportable, RECORD_TYPES, SIMPLE_TYPES } from '../../src/taric/registry/index.js';
import { ORACLE_DIR, oracleIt } from './support/envelopes.js';
import { child, children, parseXml } from './support/xml.js';

describe('taric.registry', () => {
  it('holds 102 record types, each found by its element name', () => {
    expect(RECORD_TYPES).to.have.length(102);
    for (const t of RECORD_TYPES) expect(getRecordType(t.element)).to.equal(t);
    expect(getRecordType('no.such.record')).to.equal(undefined);
    expect(getRecordType('constructor')).to.equal(undefined);
  });

  it('gives every record type except ceiling and quota.extended.information a unique record code pair', () => {
    const withoutCode = RECORD_TYPES.filter((t) => !isExportable(t)).map((t) => t.element);
    expect(withoutCode).to.deep.equal(['ceiling', 'quota.extended.information']);
    const pairs = RECORD_TYPES.filter(isExportable).map((t) => `${t.recordCode}/${t.subrecordCode}`);
    expect(new Set(pairs).size).to.equal(100);
    for (const p of pairs) expect(p).to.match(/^\d{3}\/\d{2}$/);
  });

  it('refers only to simple types it defines, and looks them up without inherited keys', () => {
    for (const t of RECORD_TYPES) for (const f of t.fields) expect(getSimpleType(f.type), `${t.element}.${f.name}`).to.not.equal(undefined);
    expect(getSimpleType('toString')).to.equal(undefined);
    expect(Object.keys(SIMPLE_TYPES)).to.have.length(83);
  });

  oracleIt('matches the published taric3.xsd: fields, order, optionality, types and every facet', () => {
    const schema = parseXml(fs.readFileSync(path.join(ORACLE_DIR, 'taric3.xsd'), 'utf8'));
    const official: Record<string, Record<string, unknown>> = {};
    for (const st of children(schema, 'simpleType')) {
      const r = child(st, 'restriction');
      const facets: Record<string, unknown> = { base: r.attrs.base!.replace('xs:', '') };
      for (const c of r.children) {
        if (c.local === 'annotation') continue;
        const v = c.attrs.value!;
        if (c.local === 'enumeration') ((facets.enumeration ??= []) as string[]).push(v);
        else facets[c.local] = ['length', 'minLength', 'maxLength', 'fractionDigits'].includes(c.local) ? Number(v) : v;
      }
      official[st.attrs.name!] = facets;
    }
    expect(SIMPLE_TYPES).to.deep.equal(official);

    const records = children(schema, 'element')
      .filter((el) => el.attrs.substitutionGroup === 'abstract.record')
      .map((el) => ({
        element: el.attrs.name,
        fields: children(child(child(el, 'complexType'), 'sequence'), 'element').map((f) => ({
          name: f.attrs.name,
          type: f.attrs.type,
          optional: f.attrs.minOccurs === '0',
        })),
      }));
    const byElement = (a: { element?: string }, b: { element?: string }) => (a.element! < b.element! ? -1 : 1);
    expect(RECORD_TYPES.map((t) => ({ element: t.element, fields: t.fields })).sort(byElement)).to.deep.equal(records.sort(byElement));
  });

  oracleIt('carries the record codes of record-codes.tsv', () => {
    const rows = fs.readFileSync(path.join(ORACLE_DIR, 'record-codes.tsv'), 'utf8').trim().split('\n').slice(1);
    const codes = new Map(rows.map((l) => l.split('\t')).map(([r, s, e]) => [e!, `${r}/${s}`]));
    expect(codes.size).to.equal(100);
    for (const t of RECORD_TYPES) {
      expect(t.recordCode === null ? undefined : `${t.recordCode}/${t.subrecordCode}`, t.element).to.equal(codes.get(t.element));
    }
  });
});
