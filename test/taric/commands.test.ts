import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { Command } from 'commander';
import { registerTaricCommands } from '../../src/taric/commands.js';
import { importJsonText } from '../../src/taric/import/import-json.js';
import { runHerald } from '../helpers/cli.js';
import { useTestDb } from '../helpers/db.js';
import { getWorkbasket, listWorkbaskets, type WorkbasketSummary } from '../../src/taric/store.js';
import { countRows, footnoteWorkbasket } from './support/workbaskets.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

describe('taric.commands (herald workbaskets)', function () {
  // Each test spawns the CLI (node + tsx start-up: 2-3 s idle, 10 s and more
  // on a loaded 2-core machine).
  this.timeout(240_000);
  const t = useTestDb(import.meta.url);
  const db = () => t.get().db;
  let tmp: string;
  before(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'herald-commands-'));
  });
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));

  function herald(...args: string[]) {
    const r = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], {
      cwd: ROOT,
      env: { ...process.env, DATABASE_URL: t.get().url },
      encoding: 'utf8',
      timeout: 60_000,
    });
    return { status: r.status, stdout: r.stdout, stderr: r.stderr };
  }

  it('imports a JSON fixture and an XML envelope, printing the new id (or JSON)', async () => {
    const json = herald('workbaskets', 'import', 'fixtures/workbaskets/measure.json', '--json');
    expect(json.status, json.stderr).to.equal(0);
    const [result] = JSON.parse(json.stdout) as Array<{ file: string; ok: boolean; workbasketId: number; transactions: number; records: number }>;
    expect(result).to.include({ file: 'fixtures/workbaskets/measure.json', ok: true, transactions: 2, records: 6 });
    expect((await getWorkbasket(db(), result!.workbasketId))?.title).to.match(/live horses/);

    const xml = herald('workbaskets', 'import', 'fixtures/workbaskets/envelopes/goods-nomenclature.xml', '--title', 'Goods from the EU');
    expect(xml.status, xml.stderr).to.equal(0);
    const m = /^imported workbasket (\d+): 1 transactions, 1 records\n$/.exec(xml.stdout);
    expect(m, xml.stdout).to.not.equal(null);
    expect((await getWorkbasket(db(), Number(m![1])))?.title).to.equal('Goods from the EU');
  });

  it('prints each normalisation as a warning, and --strict refuses the file', async () => {
    const file = path.join(tmp, 'id-one.xml');
    fs.writeFileSync(file, fs.readFileSync(path.join(ROOT, 'fixtures/workbaskets/envelopes/goods-nomenclature.xml'), 'utf8').replace(/ id="\d+"/, ' id="1"'));
    const warning = '<env:envelope> id "1" does not match [0-9]{5,6}; ignored: Herald gives what it exports ids of its own';
    const text = herald('workbaskets', 'import', file);
    expect(text.status, text.stderr).to.equal(0);
    expect(text.stdout).to.match(/^imported workbasket \d+: 1 transactions, 1 records\n$/);
    expect(text.stderr).to.match(new RegExp(`^warning: \\[line \\d+\\]: ${warning.replace(/[[\]{}().*+?^$|\\]/g, '\\$&')}\n$`));
    const json = herald('workbaskets', 'import', file, '--json');
    const { warnings } = (JSON.parse(json.stdout) as Array<{ warnings: Array<{ message: string; count: number }> }>)[0]!;
    expect(warnings.map((w) => [w.message, w.count])).to.deep.equal([[warning, 1]]);

    const before = await countRows(db());
    const strict = herald('workbaskets', 'import', file, '--strict');
    expect(strict.status).to.equal(1);
    expect(strict.stderr).to.contain("herald: workbasket not imported: 1 problem\n  [line 3]: not valid against Herald's import schema (xsd/envelope-import.xsd)");
    expect(await countRows(db())).to.deep.equal(before);
  });

  it('rejects a bad file with every problem and its position, storing nothing', async () => {
    const doc = footnoteWorkbasket(3);
    doc.transactions[1]!.records[0]!.fields['footnote.type.id'] = 'toolong';
    doc.transactions[2]!.records[1]!.type = 'footnote.flavour';
    const file = path.join(tmp, 'bad.json');
    fs.writeFileSync(file, JSON.stringify(doc));
    const before = await countRows(db());
    const r = herald('workbaskets', 'import', file);
    expect(r.status).to.equal(1);
    expect(r.stderr).to.contain('herald: workbasket not imported: 2 problems');
    expect(r.stderr).to.contain('transaction 2, record 1 (footnote.type): field footnote.type.id: must match');
    expect(r.stderr).to.contain('transaction 3, record 2 (footnote.flavour): unknown record type "footnote.flavour"');
    expect(await countRows(db())).to.deep.equal(before);

    const missing = herald('workbaskets', 'import', path.join(tmp, 'nope.json'));
    expect(missing.status).to.equal(1);
    expect(missing.stderr).to.equal(`herald: ${path.join(tmp, 'nope.json')}: no such file\n`);
    fs.writeFileSync(path.join(tmp, 'notes.txt'), 'hello');
    const other = herald('workbaskets', 'import', path.join(tmp, 'notes.txt'));
    expect(other.status).to.equal(1);
    expect(other.stderr).to.contain('neither a JSON workbasket');
  });

  it('marks a workbasket ready once, and says why when it cannot', async () => {
    const imported = await importJsonText(db(), fs.readFileSync(path.join(ROOT, 'fixtures/workbaskets/certificate.json'), 'utf8'));
    const id = String(imported.workbasketId);
    const ok = herald('workbaskets', 'ready', id, '--json');
    expect(ok.status, ok.stderr).to.equal(0);
    expect(JSON.parse(ok.stdout)).to.have.length(1);
    expect(JSON.parse(ok.stdout)[0]).to.include({ id: imported.workbasketId, status: 'READY_FOR_EXPORT' });
    const again = herald('workbaskets', 'ready', id);
    expect(again.status).to.equal(1);
    expect(again.stderr).to.equal(`herald: workbasket ${id} is READY_FOR_EXPORT, not EDITING: unchanged\n`);
    const missing = herald('workbaskets', 'ready', '424242');
    expect(missing.stderr).to.equal('herald: workbasket 424242 does not exist\n');
    const bad = herald('workbaskets', 'ready', 'x1');
    expect(bad.status).to.not.equal(0);
    expect(bad.stderr.split('\n')[0]).to.contain('workbasket id: must be a positive whole number, got "x1"');
  });

  it('lists workbaskets, filtered by status, as text or JSON', async () => {
    const all = await listWorkbaskets(db());
    expect(all.length).to.be.at.least(3);
    const ready = JSON.parse(herald('workbaskets', 'list', '--status', 'ready_for_export', '--json').stdout) as WorkbasketSummary[];
    expect(ready.length).to.be.at.least(1);
    expect(ready.every((w) => w.status === 'READY_FOR_EXPORT')).to.equal(true);
    const text = herald('workbaskets', 'list');
    expect(text.stdout.trim().split('\n')).to.have.length(all.length);
    expect(text.stdout).to.match(/READY_FOR_EXPORT\s+2 tx\s+5 records\s+Certificate type Q/);
    const bad = herald('workbaskets', 'list', '--status', 'DONE');
    expect(bad.stderr.split('\n')[0]).to.contain('--status: must be one of EDITING, READY_FOR_EXPORT, SENT, PUBLISHED, ERRORED, got "DONE"');
  });

  it('documents every command and its --json option in --help', () => {
    // In-process: commander renders the same text `--help` prints.
    const program = new Command('herald');
    registerTaricCommands(program);
    for (const [group, name] of [['workbaskets', 'import'], ['workbaskets', 'ready'], ['workbaskets', 'list'], ['envelopes', 'dump']] as const) {
      const cmd = program.commands.find((c) => c.name() === group)?.commands.find((c) => c.name() === name);
      const help = cmd!.helpInformation();
      expect(help).to.contain(`Usage: herald ${group} ${name}`).and.to.contain('--json');
      expect(cmd!.description().length, `${group} ${name} description`).to.be.greaterThan(20);
    }
  });

  describe('batch forms', () => {
    const env = () => ({ DATABASE_URL: t.get().url });

    it('imports several files, each on its own: a bad one is reported and stored nothing, the others are imported', async () => {
      const good1 = path.join(tmp, 'batch-1.json');
      const good2 = path.join(tmp, 'batch-2.json');
      const bad = path.join(tmp, 'batch-bad.json');
      const missing = path.join(tmp, 'batch-missing.json');
      fs.writeFileSync(good1, JSON.stringify(footnoteWorkbasket(2, 500, 'batch one')));
      fs.writeFileSync(good2, JSON.stringify(footnoteWorkbasket(1, 510, 'batch two')));
      const broken = footnoteWorkbasket(2, 520, 'batch bad');
      broken.transactions[1]!.records[0]!.fields['footnote.type.id'] = 'toolong';
      fs.writeFileSync(bad, JSON.stringify(broken));
      const before = (await listWorkbaskets(db())).length;

      const r = await runHerald(['workbaskets', 'import', good1, bad, missing, good2], { env: env() });
      expect(r.code).to.equal(1);
      const lines = r.stdout.trim().split('\n');
      expect(lines).to.have.length(2);
      expect(lines[0]).to.match(new RegExp(`^${good1}: imported workbasket \\d+: 2 transactions, \\d+ records$`));
      expect(lines[1]).to.match(new RegExp(`^${good2}: imported workbasket \\d+: 1 transactions, \\d+ records$`));
      expect(r.stderr).to.contain(`herald: ${bad}: workbasket not imported: 1 problem`);
      expect(r.stderr).to.contain(`herald: ${missing}: no such file\n`);
      const titles = (await listWorkbaskets(db())).map((w) => w.title);
      expect(titles.length).to.equal(before + 2);
      expect(titles).to.include.members(['batch one', 'batch two']).and.not.to.include('batch bad');

      const json = await runHerald(['workbaskets', 'import', bad, good1, '--json'], { env: env() });
      expect(json.code).to.equal(1);
      const out = JSON.parse(json.stdout) as Array<{ file: string; ok: boolean; error?: string; workbasketId?: number }>;
      expect(out.map((o) => [o.file, o.ok])).to.deep.equal([[bad, false], [good1, true]]);
      expect(out[0]!.error).to.match(/^workbasket not imported: 1 problem/);
      expect(out[1]!.workbasketId).to.be.a('number');
    });

    it('makes every EDITING workbasket ready with --all, several by id, and says which could not be moved', async () => {
      const a = await importJsonText(db(), JSON.stringify(footnoteWorkbasket(1, 600, 'ready a')));
      const b = await importJsonText(db(), JSON.stringify(footnoteWorkbasket(1, 610, 'ready b')));
      const editing = (await listWorkbaskets(db(), { status: 'EDITING' })).map((w) => w.id);
      expect(editing).to.include.members([a.workbasketId, b.workbasketId]);

      const all = await runHerald(['workbaskets', 'ready', '--all', '--json'], { env: env() });
      expect(all.code, all.stderr).to.equal(0);
      const moved = JSON.parse(all.stdout) as Array<{ id: number; status: string }>;
      expect(moved.map((w) => w.id).sort((x, y) => x - y)).to.deep.equal([...editing].sort((x, y) => x - y));
      expect(moved.every((w) => w.status === 'READY_FOR_EXPORT')).to.equal(true);
      expect(await listWorkbaskets(db(), { status: 'EDITING' })).to.deep.equal([]);

      const none = await runHerald(['workbaskets', 'ready', '--all'], { env: env() });
      expect([none.code, none.stdout]).to.deep.equal([0, 'no EDITING workbaskets\n']);

      const c = await importJsonText(db(), JSON.stringify(footnoteWorkbasket(1, 620, 'ready c')));
      const some = await runHerald(['workbaskets', 'ready', String(c.workbasketId), String(a.workbasketId)], { env: env() });
      expect(some.code).to.equal(1);
      expect(some.stdout).to.equal(`workbasket ${c.workbasketId} is READY_FOR_EXPORT\n`);
      expect(some.stderr).to.equal(`herald: workbasket ${a.workbasketId} is READY_FOR_EXPORT, not EDITING: unchanged\n`);

      const both = await runHerald(['workbaskets', 'ready', '--all', String(c.workbasketId)], { env: env() });
      expect([both.code, both.stderr]).to.deep.equal([1, 'herald: give workbasket IDs or --all (not both)\n']);
    });
  });
});
