import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { expect } from 'chai';
import { useTestDb } from '../helpers/db.js';
import { importXmlWorkbasket, type XmlSource } from '../../src/taric/import/import-xml.js';
import { ImportError } from '../../src/taric/errors.js';
import {
  MAX_XML_ATTRIBUTES,
  MAX_XML_DEPTH,
  MAX_XML_NAME_CHARS,
  MAX_XML_TEXT_CHARS,
  MIN_FIELD_TEXT_CHARS,
} from '../../src/taric/import/xml-limits.js';
import { countRows, footnoteTransaction, longFootnoteTransaction, storedRecords, xmlEnvelope } from './support/workbaskets.js';

// Limits of the XML import (src/taric/import/xml-limits.ts), enforced while
// the file streams. Hostile inputs come from generators that count what they
// yield, so "refused before reading it all" is checked by the chunks read,
// never by time; the speed and memory figures are scripts/bench/xml-limits.ts's.

const STOPPED = '(import stopped here: an XML file is never read past a limit)';
const CHUNK = 64 * 1024;

/** A lazily generated input: `head`, then `fill` for `fillChars` characters, then `tail`, in 64 KiB chunks. */
function hostile(head: string, fill: string, fillChars: number, tail: string): { source: XmlSource; chunksRead(): number } {
  let read = 0;
  const source = (async function* () {
    read++;
    yield head;
    const piece = fill.repeat(Math.ceil(CHUNK / fill.length));
    for (let done = 0; done < fillChars; done += piece.length) {
      read++;
      yield piece;
    }
    read++;
    yield tail;
  })();
  return { source, chunksRead: () => read };
}

/** XML text as a stream (a plain string would be taken for a file path). */
function stream(xml: string): XmlSource {
  return Readable.from([xml]);
}

/** The published envelope layout up to (and including) the opening tag of a footnote.type.description's description. */
function beforeDescription(): string {
  const xml = xmlEnvelope([footnoteTransaction(1)]);
  return xml.slice(0, xml.indexOf('<oub:description>') + '<oub:description>'.length);
}

describe('taric.xmlLimits (hostile XML is refused while it streams)', () => {
  const t = useTestDb(import.meta.url);
  const db = () => t.get().db;
  let dir: string;
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'herald-xml-limits-'));
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  async function refused(source: XmlSource): Promise<ImportError> {
    const before = await countRows(db());
    const err = await importXmlWorkbasket(db(), source, { title: 'hostile' }).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err, 'import should have been refused').to.be.instanceOf(ImportError);
    expect(await countRows(db()), 'nothing stored').to.deep.equal(before);
    return err as ImportError;
  }

  async function nestedFile(levels: number): Promise<string> {
    const file = path.join(dir, `nested-${levels}.xml`);
    const lines = function* () {
      for (let i = 0; i < levels; i += 10_000) yield '<a>'.repeat(Math.min(10_000, levels - i));
      for (let i = 0; i < levels; i += 10_000) yield '</a>'.repeat(Math.min(10_000, levels - i));
    };
    await pipeline(lines(), fs.createWriteStream(file));
    return file;
  }

  it(`refuses files nested 40,000 and 200,000 deep at level ${MAX_XML_DEPTH + 1}, naming the limit and the line`, async () => {
    for (const levels of [40_000, 200_000]) {
      const file = await nestedFile(levels);
      expect(fs.statSync(file).size).to.equal(levels * 7);
      const err = await refused(file);
      expect(err.message).to.contain(`[line 1]: elements nested more than ${MAX_XML_DEPTH} deep (TARIC3 needs 7; import stopped here`);
    }
  });

  it('refuses deep nesting inside a record with its transaction, record and line, after reading one chunk', async () => {
    const input = hostile(beforeDescription(), '<b>', 10_000_000, '');
    const err = await refused(input.source);
    const line = beforeDescription().split('\n').length;
    expect(err.message).to.contain(`transaction 1, record 2 [line ${line}]: elements nested more than ${MAX_XML_DEPTH} deep`);
    expect(input.chunksRead()).to.equal(2);
  });

  it('refuses a 200 MB text in a field at the field limit, after reading one chunk of it', async () => {
    const input = hostile(beforeDescription(), 'x', 200 * 1024 * 1024, '</oub:description>');
    const err = await refused(input.source);
    const line = beforeDescription().split('\n').length;
    expect(err.message).to.contain(
      `transaction 1, record 2 (footnote.type.description) [line ${line}]: field description: longer than 1000 characters ${STOPPED}`,
    );
    expect(err.problems).to.have.length(1);
    expect(input.chunksRead()).to.equal(2);
  });

  it('refuses a 200 MB comment, attribute value or whitespace run at the general text limit', async () => {
    const inputs = [
      hostile('<?xml version="1.0"?>\n<!--', 'x', 200 * 1024 * 1024, '-->'),
      hostile('<env:envelope xmlns:env="urn:x" id="', '1', 200 * 1024 * 1024, '"/>'),
      hostile('<env:envelope xmlns:env="urn:x">', ' ', 200 * 1024 * 1024, '</env:envelope>'),
    ];
    for (const input of inputs) {
      const err = await refused(input.source);
      expect(err.message).to.match(new RegExp(`\\[line [12]\\]: a text, comment or attribute value longer than ${MAX_XML_TEXT_CHARS} characters`));
      expect(input.chunksRead()).to.be.at.most(2);
    }
  });

  it(`refuses an element with more than ${MAX_XML_ATTRIBUTES} attributes and a name longer than ${MAX_XML_NAME_CHARS} characters`, async () => {
    // The namespace declaration counts: 1 + 15 attributes is the most allowed.
    const envelope = (n: number) => `<env:envelope xmlns:env="urn:x"${Array.from({ length: n }, (_, i) => ` a${i}="1"`).join('')}/>`;
    const atLimit = await refused(stream(envelope(MAX_XML_ATTRIBUTES - 1)));
    expect(atLimit.message).to.contain('the envelope has no transactions').and.not.to.contain('attributes');
    let read = 0;
    const million = (async function* () {
      yield '<env:envelope xmlns:env="urn:x"';
      for (let i = 0; i < 1_000_000; i += 5000) {
        read++;
        yield Array.from({ length: 5000 }, (_, k) => ` a${i + k}="1"`).join('');
      }
      yield '/>';
    })();
    const err = await refused(million);
    expect(err.message).to.contain(`[line 1]: an element with more than ${MAX_XML_ATTRIBUTES} attributes ${STOPPED}`);
    expect(read).to.equal(1);

    const longName = hostile('<env:envelope xmlns:env="urn:x"><', 'n', 10_000_000, '/></env:envelope>');
    const nameErr = await refused(longName.source);
    expect(nameErr.message).to.contain(`[line 1]: a name longer than ${MAX_XML_NAME_CHARS} characters ${STOPPED}`);
    expect(longName.chunksRead()).to.equal(2);
  });

  it('counts characters as XSD does: decoded entities, CDATA pieces together, code points not UTF-16 units', async () => {
    const within = footnoteTransaction(1);
    within[1]!.fields.description = '&'.repeat(MIN_FIELD_TEXT_CHARS); // 5,000 characters as written
    const astral = footnoteTransaction(2);
    astral[1]!.fields.description = '𝄞'.repeat(MIN_FIELD_TEXT_CHARS); // 2,000 UTF-16 units
    const r = await importXmlWorkbasket(db(), stream(xmlEnvelope([within, astral])), { title: 'at the limit' });
    expect(await storedRecords(db(), r.workbasketId)).to.deep.equal([within, astral]);

    const over = footnoteTransaction(3);
    over[1]!.fields.description = '𝄞'.repeat(MIN_FIELD_TEXT_CHARS + 1);
    expect((await refused(stream(xmlEnvelope([over])))).message).to.contain(`field description: longer than 1000 characters ${STOPPED}`);

    const split = xmlEnvelope([footnoteTransaction(4)]).replace(/<oub:description>[^<]*/, `<oub:description>${'y'.repeat(600)}<![CDATA[${'z'.repeat(600)}]]>`);
    expect((await refused(stream(split))).message).to.contain(`field description: longer than 1000 characters ${STOPPED}`);
  });

  it('lets a LongDescription reach 20,000 characters, and reports a short code that is too long with every other problem', async () => {
    const long = longFootnoteTransaction(1, MAX_XML_TEXT_CHARS - 'Footnote 1: '.length);
    const r = await importXmlWorkbasket(db(), stream(xmlEnvelope([long])), { title: 'long' });
    expect(await storedRecords(db(), r.workbasketId)).to.deep.equal([long]);

    const bad = [footnoteTransaction(5), footnoteTransaction(6)];
    bad[0]![0]!.fields['footnote.type.id'] = 'ABCDEFG';
    bad[1]![0]!.fields['application.code'] = '77';
    const err = await refused(stream(xmlEnvelope(bad)));
    expect(err.problems.map((p) => p.field)).to.include.members(['footnote.type.id', 'application.code']);
    expect(err.message).not.to.contain('import stopped');
  });
});
