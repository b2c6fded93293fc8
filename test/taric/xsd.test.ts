import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { validateEnvelopeFile } from '../../src/taric/envelope/validate.js';
import { ENVELOPE_NS, generateXsdFiles, MESSAGE_NS, XSD_DIR } from '../../src/taric/envelope/xsd.js';
import { ORACLE_DIR, oracleIt } from './support/envelopes.js';

describe('taric.xsd', () => {
  it('has the committed xsd/ exactly as the generator writes it now (run `npm run xsd` when this fails)', () => {
    const files = generateXsdFiles();
    expect(fs.readdirSync(XSD_DIR).sort()).to.deep.equal(Object.keys(files).sort());
    for (const [name, text] of Object.entries(files)) {
      expect(fs.readFileSync(path.join(XSD_DIR, name), 'utf8'), name).to.equal(text);
    }
  });

  it('generates the same bytes every time', () => {
    expect(generateXsdFiles()).to.deep.equal(generateXsdFiles());
  });

  it('declares the TARIC3 namespaces and every record type of the registry', () => {
    const { 'taric3.xsd': taric, 'envelope.xsd': envelope } = generateXsdFiles();
    expect(envelope).to.contain(`targetNamespace="${ENVELOPE_NS}"`).and.to.contain('schemaLocation="taric3.xsd"');
    expect(taric).to.contain(`targetNamespace="${MESSAGE_NS}"`).and.to.contain('schemaLocation="envelope.xsd"');
    expect(taric.match(/substitutionGroup="abstract.record"/g)).to.have.length(102);
    expect(taric.match(/<xs:simpleType /g)).to.have.length(83);
  });

  oracleIt('accepts the published sample envelopes', async () => {
    for (const sample of ['goods.xml', 'envelope_no_declaration.xml']) {
      const result = await validateEnvelopeFile(path.join(ORACLE_DIR, sample), 'herald');
      expect(result.issues, sample).to.deep.equal([]);
      expect(result.valid, sample).to.equal(true);
    }
  });
});
