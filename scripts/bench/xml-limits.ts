// `npm run bench:xml-limits [-- --json --keep]`: how fast, and in how much
// memory, `workbaskets import` refuses hostile XML files (issue 12): 40,000
// and 200,000 nested elements, a 200 MB text node inside a field, a 200 MB
// comment, a 200 MB attribute value and an element with 1,000,000 attributes.
// Target: each refused within 2 s with flat memory (peak RSS growth of a few
// MB, not the file's size). Before the limits: 40,000 levels took 36 s,
// 200,000 ran for more than 9 min, the 200 MB text node peaked at 571 MB.
//
// The files are written to a temp directory as streams (never held whole),
// then imported by path, as `herald workbaskets import FILE` does, into a
// scratch database on BENCH_DATABASE_URL's server (default local Postgres).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import knexFactory from 'knex';
import { migrateLatest } from '../../src/db/migrate.js';
import { importXmlWorkbasket } from '../../src/taric/import/import-xml.js';
import { admin, dbUrl, finish, loadGuard, measure } from './support.js';

const MB = 1024 * 1024;
const json = process.argv.includes('--json');
const keep = process.argv.includes('--keep');

const ENV = 'urn:publicid:-:DGTAXUD:GENERAL:ENVELOPE:1.0';
const MSG = 'urn:publicid:-:DGTAXUD:TARIC:MESSAGE:1.0';
const OPEN_RECORD =
  `<?xml version="1.0" encoding="UTF-8"?>\n<env:envelope xmlns="${MSG}" xmlns:env="${ENV}" id="260001">\n` +
  `<env:transaction id="1">\n<env:app.message id="1">\n<oub:transmission xmlns:oub="${MSG}">\n<oub:record>\n` +
  '<oub:transaction.id>1</oub:transaction.id>\n<oub:record.code>100</oub:record.code>\n<oub:subrecord.code>05</oub:subrecord.code>\n' +
  '<oub:record.sequence.number>1</oub:record.sequence.number>\n<oub:update.type>3</oub:update.type>\n<oub:footnote.type.description>\n' +
  '<oub:footnote.type.id>AB</oub:footnote.type.id>\n<oub:language.id>EN</oub:language.id>\n';
const CLOSE_RECORD = '</oub:footnote.type.description>\n</oub:record>\n</oub:transmission>\n</env:app.message>\n</env:transaction>\n</env:envelope>\n';

/** `head`, then `piece` `count` times, then `tail`, in ~1 MB writes. */
function* repeated(head: string, piece: string, count: number, tail: string): Generator<string> {
  yield head;
  const per = Math.max(1, Math.floor(MB / piece.length));
  for (let done = 0; done < count; done += per) yield piece.repeat(Math.min(per, count - done));
  yield tail;
}

const X_200MB = 200 * MB;
const CASES: Array<{ name: string; lines(): Iterable<string> }> = [
  { name: 'nested-40000', lines: () => [...repeated('', '<a>', 40_000, ''), ...repeated('', '</a>', 40_000, '')] },
  { name: 'nested-200000', lines: () => [...repeated('', '<a>', 200_000, ''), ...repeated('', '</a>', 200_000, '')] },
  { name: 'text-200MB', lines: () => repeated(`${OPEN_RECORD}<oub:description>`, 'x', X_200MB, `</oub:description>\n${CLOSE_RECORD}`) },
  { name: 'comment-200MB', lines: () => repeated('<!--', 'x', X_200MB, '-->\n<env:envelope/>\n') },
  { name: 'attribute-value-200MB', lines: () => repeated(`<env:envelope xmlns:env="${ENV}" id="`, '1', X_200MB, '"/>\n') },
  {
    name: 'attributes-1000000',
    lines: () =>
      (function* () {
        yield `<env:envelope xmlns:env="${ENV}"`;
        for (let i = 0; i < 1_000_000; i += 10_000) yield Array.from({ length: 10_000 }, (_, k) => ` a${i + k}=""`).join('');
        yield '/>\n';
      })(),
  },
];

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'herald-bench-xml-limits-'));
const DB_NAME = `herald_bench_xml_${process.pid}`;
await admin(`CREATE DATABASE ${DB_NAME}`);
const db = knexFactory({ client: 'pg', connection: dbUrl(DB_NAME), pool: { min: 0, max: 2 } });
const rows: Array<{ file: string; mb: number; seconds: number; rssBeforeMB: number; rssPeakMB: number; rssGrowthMB: number; refusal: string }> = [];
const watch = loadGuard();
try {
  await migrateLatest(db);
  for (const c of CASES) {
    const file = path.join(work, `${c.name}.xml`);
    await pipeline(c.lines(), fs.createWriteStream(file));
    const m = await measure(() => importXmlWorkbasket(db, file, { title: c.name }).then(() => 'IMPORTED (not refused)', (err: Error) => err.message));
    rows.push({
      file: c.name,
      mb: +(fs.statSync(file).size / MB).toFixed(1),
      seconds: +m.seconds.toFixed(3),
      rssBeforeMB: Math.round(m.rssBefore / MB),
      rssPeakMB: Math.round(m.rssPeak / MB),
      rssGrowthMB: +((m.rssPeak - m.rssBefore) / MB).toFixed(1),
      refusal: m.value.split('\n').slice(1).join(' ').trim() || m.value,
    });
    if (!keep) fs.rmSync(file);
  }
} finally {
  await db.destroy();
  await admin(`DROP DATABASE IF EXISTS ${DB_NAME} WITH (FORCE)`);
  if (!keep) fs.rmSync(work, { recursive: true, force: true });
}

const worst = { seconds: Math.max(...rows.map((r) => r.seconds)), growthMB: Math.max(...rows.map((r) => r.rssGrowthMB)) };
if (!json) {
  process.stdout.write(`bench:xml-limits  ${os.cpus().length} cores${keep ? `, files kept in ${work}` : ''}\n`);
  for (const r of rows) {
    process.stdout.write(
      `${r.file.padEnd(22)} ${String(r.mb).padStart(6)} MB  ${r.seconds.toFixed(3).padStart(7)} s  RSS ${r.rssBeforeMB} -> ${r.rssPeakMB} MB (+${r.rssGrowthMB})  ${r.refusal}\n`,
    );
  }
}
finish(watch.stop(), { rows, worst }, {
  'every hostile file refused within 2 s': { met: worst.seconds <= 2, value: `slowest ${worst.seconds} s` },
  'memory flat (RSS growth <= 16 MB)': { met: worst.growthMB <= 16, value: `largest +${worst.growthMB} MB` },
}, { jsonOnly: json });
