import crypto from 'node:crypto';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { useTestDb } from '../helpers/db.js';
import { exportReadyWorkbaskets } from '../../src/taric/envelope/export.js';
import { importJsonWorkbasket } from '../../src/taric/import/import-json.js';
import type { DumpedEnvelope } from '../../src/taric/envelope/dump.js';
import { countRows, footnoteTransaction, longFootnoteTransaction, readyWorkbasket, toJsonWorkbasket, transactionIdsInFile } from './support/workbaskets.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

describe('taric.dump (herald envelopes dump)', function () {
  // Each test spawns the CLI (node + tsx start-up: 2-3 s idle, 10 s and more
  // on a loaded 2-core machine).
  this.timeout(240_000);
  const t = useTestDb(import.meta.url);
  const db = () => t.get().db;
  let dir: string;

  beforeEach(() => {
    dir = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'herald-dump-')), 'out');
  });
  afterEach(async () => {
    fs.rmSync(path.dirname(dir), { recursive: true, force: true });
    await db().raw(`UPDATE workbaskets SET status = 'SENT' WHERE status = 'READY_FOR_EXPORT'`);
  });

  function herald(...args: string[]) {
    const r = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], {
      cwd: ROOT,
      env: { ...process.env, DATABASE_URL: t.get().url, EXPORTER_FIRST_TRANSACTION_ID: '300', HERALD_CRASH_AT: '' },
      encoding: 'utf8',
      timeout: 60_000,
    });
    return { status: r.status, stdout: r.stdout, stderr: r.stderr };
  }

  it('writes valid envelopes, prints one line each, exits 0 and stores nothing', async () => {
    await readyWorkbasket(db(), Array.from({ length: 6 }, (_, i) => longFootnoteTransaction(i, 2500)), 'dump a');
    await readyWorkbasket(db(), [footnoteTransaction(1)], 'dump b');
    await importJsonWorkbasket(db(), toJsonWorkbasket([footnoteTransaction(2)], 'still editing'));
    const before = await countRows(db());

    const r = herald('envelopes', 'dump', '--dir', dir, '--max-envelope-size', '9000');
    expect(r.status, r.stderr).to.equal(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines.length).to.be.at.least(3);
    const yy = String(new Date().getUTCFullYear() % 100).padStart(2, '0');
    const ids: number[] = [];
    lines.forEach((line, i) => {
      const m = /^(\S+)  transactions (\d+)  bytes (\d+)  valid$/.exec(line);
      expect(m, line).to.not.equal(null);
      const file = m![1]!;
      expect(file).to.equal(path.join(dir, `DIT${yy}${String(i + 1).padStart(4, '0')}.xml`));
      const text = fs.readFileSync(file, 'utf8');
      expect(Buffer.byteLength(text)).to.equal(Number(m![3])).and.to.be.at.most(9000);
      expect(transactionIdsInFile(text)).to.have.length(Number(m![2]));
      ids.push(...transactionIdsInFile(text));
    });
    expect(ids).to.deep.equal([300, 301, 302, 303, 304, 305, 306]);
    expect(await countRows(db())).to.deep.equal(before);
  });

  it('shows the ids and bytes the next export takes, and --json gives the details', async () => {
    const w = await readyWorkbasket(db(), [footnoteTransaction(10), footnoteTransaction(11)], 'preview');
    const first = herald('envelopes', 'dump', '--dir', dir, '--json');
    expect(first.status, first.stderr).to.equal(0);
    const again = herald('envelopes', 'dump', '--dir', dir, '--json');
    const dumped = (JSON.parse(first.stdout) as { envelopes: DumpedEnvelope[] }).envelopes;
    expect((JSON.parse(again.stdout) as { envelopes: DumpedEnvelope[] }).envelopes).to.deep.equal(dumped);
    expect(dumped).to.have.length(1);
    expect(dumped[0]).to.include({ transactions: 2, valid: true, firstTaricTransactionId: 300, lastTaricTransactionId: 301 });
    expect(dumped[0]!.workbasketIds).to.deep.equal([w]);
    expect(dumped[0]!.issues).to.deep.equal([]);

    const workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'herald-dump-export-'));
    try {
      const { envelopes } = await exportReadyWorkbaskets(db(), { now: new Date(), maxEnvelopeBytes: 40_000_000, firstTransactionId: 300, workDir });
      expect(envelopes.map((e) => [e.envelopeId, e.bytes, e.md5])).to.deep.equal(dumped.map((e) => [e.envelopeId, e.bytes, e.md5]));
      expect(crypto.createHash('md5').update(fs.readFileSync(dumped[0]!.file)).digest('hex')).to.equal(envelopes[0]!.md5);
    } finally {
      fs.rmSync(workDir, { recursive: true, force: true });
    }
    // After the export those transactions are no longer pending.
    const after = herald('envelopes', 'dump', '--dir', dir);
    expect(after.status, after.stderr).to.equal(0);
    expect(after.stdout).to.equal('nothing to export: no pending transactions\n');
  });

  it('renders named workbaskets in any status, and refuses unknown ones', async () => {
    const { workbasketId } = await importJsonWorkbasket(db(), toJsonWorkbasket([footnoteTransaction(20)], 'draft'));
    await readyWorkbasket(db(), [footnoteTransaction(21)], 'not named');
    const r = herald('envelopes', 'dump', '--dir', dir, '--workbasket', String(workbasketId), '--json');
    expect(r.status, r.stderr).to.equal(0);
    const env = (JSON.parse(r.stdout) as { envelopes: DumpedEnvelope[] }).envelopes;
    expect(env.map((e) => e.workbasketIds)).to.deep.equal([[workbasketId]]);
    const missing = herald('envelopes', 'dump', '--dir', dir, '--workbasket', '999999');
    expect(missing.status).to.equal(1);
    expect(missing.stderr).to.equal('herald: workbasket 999999 does not exist\n');
  });

  it('exits 1 when an envelope is invalid, naming the file, line and problem', async () => {
    const id = await readyWorkbasket(db(), [footnoteTransaction(30)], 'broken');
    await db().raw(`UPDATE workbaskets SET status = 'EDITING' WHERE id = ?`, [id]);
    await db().raw(
      `UPDATE records SET fields = jsonb_set(fields, '{application.code}', '"X"')
        WHERE record_type = 'footnote.type' AND transaction_id IN (SELECT id FROM transactions WHERE workbasket_id = ?)`,
      [id],
    );
    await db().raw(`UPDATE workbaskets SET status = 'READY_FOR_EXPORT' WHERE id = ?`, [id]);
    const before = await countRows(db());
    const r = herald('envelopes', 'dump', '--dir', dir);
    expect(r.status).to.equal(1);
    expect(r.stdout).to.match(/DIT\d{6}\.xml {2}transactions 1 {2}bytes \d+ {2}INVALID \(\d+ issues?\)\n$/);
    expect(r.stderr).to.match(/DIT\d{6}\.xml:\d+.*application\.code/);
    expect(fs.readdirSync(dir)).to.have.length(1);
    expect(await countRows(db())).to.deep.equal(before);
  });

  it('refuses a size limit below 4096 and reports a transaction too big for the limit', async () => {
    const small = herald('envelopes', 'dump', '--dir', dir, '--max-envelope-size', '4095');
    expect(small.status).to.not.equal(0);
    expect(small.stderr.split('\n')[0]).to.contain('--max-envelope-size: must be at least 4096 bytes, got 4095');
    const word = herald('envelopes', 'dump', '--dir', dir, '--max-envelope-size', '40MB');
    expect(word.stderr.split('\n')[0]).to.contain('--max-envelope-size: must be a positive whole number, got "40MB"');

    await readyWorkbasket(db(), [longFootnoteTransaction(40, 6000)], 'huge');
    const before = await countRows(db());
    const r = herald('envelopes', 'dump', '--dir', dir, '--max-envelope-size', '5000');
    expect(r.status).to.equal(1);
    expect(r.stderr).to.match(/needs \d+ bytes as an envelope of its own, more than the limit of 5000 bytes/);
    expect(await countRows(db())).to.deep.equal(before);
  });

  it('refuses, in one line and exit 1, a symbolic link where it would write, and leaves its target alone', async () => {
    await readyWorkbasket(db(), [footnoteTransaction(50)], 'linked');
    const probe = herald('envelopes', 'dump', '--dir', dir, '--json');
    const [first] = (JSON.parse(probe.stdout) as { envelopes: DumpedEnvelope[] }).envelopes;
    const target = path.join(path.dirname(dir), 'precious.txt');
    fs.writeFileSync(target, 'keep me\n');
    fs.rmSync(first!.file);
    fs.symlinkSync(target, first!.file);
    const r = herald('envelopes', 'dump', '--dir', dir);
    expect(r.status).to.equal(1);
    expect(r.stderr).to.equal(`herald: ${first!.file} exists and is a symbolic link, not a regular file: remove it or dump to another --dir (nothing was written)\n`);
    expect(fs.readFileSync(target, 'utf8')).to.equal('keep me\n');
    expect(fs.readlinkSync(first!.file)).to.equal(target);
  });
});
