import crypto from 'node:crypto';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { useTestDb } from '../helpers/db.js';
import { exportReadyWorkbaskets, renderStoredEnvelope, type ExportOptions } from '../../src/taric/envelope/export.js';
import { OversizeTransactionError, type EnvelopeSink } from '../../src/taric/envelope/envelope-writer.js';
import { EnvelopeInvalidError, PG_WORKBASKET_FROZEN, TaricError } from '../../src/taric/errors.js';
import { getWorkbasket, listEnvelopes } from '../../src/taric/store.js';
import { importJsonWorkbasket } from '../../src/taric/import/import-json.js';
import { pgCode } from '../../src/db/errors.js';
import { countRows, footnoteTransaction, longFootnoteTransaction, readyWorkbasket, transactionIdsInFile } from './support/workbaskets.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const NOW = new Date('2026-03-15T10:00:00Z');

/** A sink that keeps the bytes in memory and records whether it was ended or aborted. */
function memorySink() {
  const chunks: Buffer[] = [];
  const state = { ended: false, aborted: null as Error | null };
  const sink: EnvelopeSink = {
    write: (c) => void chunks.push(Buffer.from(c)),
    end: async () => void (state.ended = true),
    abort: (reason) => void (state.aborted = reason),
  };
  return { sink, state, bytes: () => Buffer.concat(chunks) };
}

describe('taric.export', () => {
  const t = useTestDb(import.meta.url);
  const db = () => t.get().db;
  let workDir: string;

  beforeEach(() => {
    workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'herald-export-'));
  });
  afterEach(() => fs.rmSync(workDir, { recursive: true, force: true }));

  // Each test leaves no READY_FOR_EXPORT workbasket behind unexported, so
  // that the next test's export sees only its own (moved to SENT here, as
  // the upload step will).
  afterEach(async () => {
    await db().raw(`UPDATE workbaskets SET status = 'SENT' WHERE status = 'READY_FOR_EXPORT'`);
  });

  const options = (extra: Partial<ExportOptions> = {}): ExportOptions => ({
    now: NOW,
    maxEnvelopeBytes: 40_000_000,
    firstTransactionId: 5000,
    workDir,
    ...extra,
  });

  /** Corrupts a value behind the importer's back (as a buggy writer could), then marks it ready. */
  async function readyInvalidWorkbasket(): Promise<number> {
    const id = await readyWorkbasket(db(), [footnoteTransaction(700)], 'invalid');
    await db().raw(`UPDATE workbaskets SET status = 'EDITING' WHERE id = ?`, [id]);
    await db().raw(
      `UPDATE records SET fields = jsonb_set(fields, '{footnote.type.id}', '"tn"')
        WHERE record_type = 'footnote.type' AND transaction_id IN (SELECT id FROM transactions WHERE workbasket_id = ?)`,
      [id],
    );
    await db().raw(`UPDATE workbaskets SET status = 'READY_FOR_EXPORT' WHERE id = ?`, [id]);
    return id;
  }

  it('exports the READY_FOR_EXPORT workbaskets into a numbered, validated envelope and leaves the rest alone', async () => {
    const a = await readyWorkbasket(db(), [footnoteTransaction(1), footnoteTransaction(2)], 'a');
    const b = await readyWorkbasket(db(), [footnoteTransaction(3)], 'b');
    const draft = await importJsonWorkbasket(db(), { title: 'draft', transactions: [{ records: [{ type: 'footnote.type', update_type: 3, fields: footnoteTransaction(4)[0]!.fields }] }] });

    const { envelopes } = await exportReadyWorkbaskets(db(), options());
    expect(envelopes).to.have.length(1);
    const e = envelopes[0]!;
    expect(e).to.include({ envelopeId: '260001', transactionCount: 3, firstTaricTransactionId: 5000, lastTaricTransactionId: 5002 });
    expect(e.workbasketIds).to.deep.equal([a, b]);
    const file = fs.readFileSync(e.file);
    expect(e.file).to.equal(path.join(workDir, 'DIT260001.xml'));
    expect(file.length).to.equal(e.bytes);
    expect(crypto.createHash('md5').update(file).digest('hex')).to.equal(e.md5);
    expect(transactionIdsInFile(file.toString('utf8'))).to.deep.equal([5000, 5001, 5002]);

    const [row] = await listEnvelopes(db());
    expect(row).to.include({ id: e.id, envelopeId: '260001', year: 26, counter: 1, sizeBytes: e.bytes, md5: e.md5 });
    const { rows } = await db().raw(
      `SELECT et.workbasket_id, t.position AS tx_position, et.taric_transaction_id, et.position
         FROM envelope_transactions et JOIN transactions t ON t.id = et.transaction_id ORDER BY et.position`,
    );
    expect(rows).to.deep.equal([
      { workbasket_id: a, tx_position: 1, taric_transaction_id: 5000, position: 1 },
      { workbasket_id: a, tx_position: 2, taric_transaction_id: 5001, position: 2 },
      { workbasket_id: b, tx_position: 1, taric_transaction_id: 5002, position: 3 },
    ]);
    // Status is the upload step's business; the draft was not exported.
    expect((await getWorkbasket(db(), a))?.status).to.equal('READY_FOR_EXPORT');
    expect((await getWorkbasket(db(), draft.workbasketId))?.status).to.equal('EDITING');
    // Exported records are frozen.
    expect(pgCode(await db().raw(`DELETE FROM records WHERE transaction_id IN (SELECT id FROM transactions WHERE workbasket_id = ?)`, [a]).catch((x: unknown) => x))).to.equal(
      PG_WORKBASKET_FROZEN,
    );

    // Nothing left to export: no envelope, no id used.
    const before = await countRows(db());
    expect((await exportReadyWorkbaskets(db(), options())).envelopes).to.deep.equal([]);
    expect(await countRows(db())).to.deep.equal(before);
  });

  it('splits one run into several envelopes with consecutive envelope ids and contiguous transaction ids', async () => {
    const txs = Array.from({ length: 13 }, (_, i) => longFootnoteTransaction(100 + i, 2500));
    const w1 = await readyWorkbasket(db(), txs.slice(0, 6), 'split 1');
    const w2 = await readyWorkbasket(db(), txs.slice(6), 'split 2');
    const { envelopes } = await exportReadyWorkbaskets(db(), options({ maxEnvelopeBytes: 12_000 }));
    expect(envelopes.length).to.be.at.least(4);
    expect(envelopes.map((e) => e.envelopeId)).to.deep.equal(envelopes.map((_, i) => `26${String(2 + i).padStart(4, '0')}`));
    const ids: number[] = [];
    for (const e of envelopes) {
      const text = fs.readFileSync(e.file, 'utf8');
      expect(Buffer.byteLength(text)).to.equal(e.bytes).and.to.be.at.most(12_000);
      const inFile = transactionIdsInFile(text);
      expect(inFile).to.have.length(e.transactionCount);
      expect(inFile[0]).to.equal(e.firstTaricTransactionId);
      ids.push(...inFile);
    }
    expect(ids).to.deep.equal(Array.from({ length: 13 }, (_, i) => 5003 + i));
    expect(envelopes[0]!.workbasketIds).to.deep.equal([w1]);
    expect(envelopes[envelopes.length - 1]!.workbasketIds).to.deep.equal([w2]);
    const { rows } = await db().raw(
      `SELECT count(*)::int AS n, count(DISTINCT et.transaction_id)::int AS distinct_tx
         FROM envelope_transactions et WHERE et.workbasket_id IN (?, ?)`,
      [w1, w2],
    );
    expect(rows[0]).to.deep.equal({ n: 13, distinct_tx: 13 });
  });

  it('re-renders a stored envelope byte for byte, and refuses to end the sink when the bytes differ', async () => {
    await readyWorkbasket(db(), Array.from({ length: 5 }, (_, i) => longFootnoteTransaction(200 + i, 3000)), 'rerender');
    const { envelopes } = await exportReadyWorkbaskets(db(), options({ maxEnvelopeBytes: 9000 }));
    expect(envelopes.length).to.be.at.least(2);
    for (const e of envelopes) {
      const m = memorySink();
      const r = await renderStoredEnvelope(db(), e.id, m.sink);
      expect(r).to.deep.equal({ envelopeId: e.envelopeId, bytes: e.bytes, md5: e.md5 });
      expect(m.bytes().equals(fs.readFileSync(e.file))).to.equal(true);
      expect(m.state.ended).to.equal(true);
    }
    const victim = envelopes[1]!;
    await db().raw(`UPDATE envelopes SET md5 = ? WHERE id = ?`, ['0'.repeat(32), victim.id]);
    const m = memorySink();
    const err = await renderStoredEnvelope(db(), victim.id, m.sink).catch((x: unknown) => x);
    expect(err).to.be.instanceOf(TaricError).with.property('code', 'envelope_mismatch');
    expect(m.state.ended).to.equal(false);
    expect(m.state.aborted).to.equal(err);
    const missing = await renderStoredEnvelope(db(), 999_999, memorySink().sink).catch((x: unknown) => x);
    expect(missing).to.be.instanceOf(TaricError).with.property('code', 'envelope_not_found');
  });

  it('stores nothing, deletes its files and uses no id when an envelope fails validation', async () => {
    const before = await countRows(db());
    const nextIds = (await db().raw(`SELECT max(counter) AS c FROM envelopes WHERE year = 26`)).rows[0].c as number;
    const lastTaric = (await db().raw(`SELECT max(taric_transaction_id) AS n FROM envelope_transactions`)).rows[0].n as number;
    const good = await readyWorkbasket(db(), [footnoteTransaction(710), footnoteTransaction(711)], 'good');
    const bad = await readyInvalidWorkbasket();
    const after = await countRows(db());

    const err = await exportReadyWorkbaskets(db(), options()).catch((x: unknown) => x);
    expect(err).to.be.instanceOf(EnvelopeInvalidError);
    const invalid = (err as EnvelopeInvalidError).envelopes;
    expect(invalid).to.have.length(1);
    expect(invalid[0]!.issues.map((i) => i.message).join('\n')).to.match(/footnote.type.id|tn/);
    expect((err as Error).message).to.match(/envelope 26\d{4} line \d+/);
    expect(fs.readdirSync(workDir)).to.deep.equal([]);
    expect(await countRows(db())).to.deep.equal(after);
    expect(after.envelopes).to.equal(before.envelopes);

    // The next successful run takes exactly the ids the failed one would have.
    const ok = await exportReadyWorkbaskets(db(), options({ workbasketIds: [good] }));
    expect(ok.envelopes.map((e) => e.envelopeId)).to.deep.equal([`26${String(nextIds + 1).padStart(4, '0')}`]);
    expect(ok.envelopes[0]!.firstTaricTransactionId).to.equal(lastTaric + 1);
    expect((await getWorkbasket(db(), bad))?.status).to.equal('READY_FOR_EXPORT');
  });

  it('stores nothing and uses no id when a transaction cannot fit an envelope of its own', async () => {
    const before = await countRows(db());
    const nextEnvelope = (await listEnvelopes(db())).length + 1;
    const small = await readyWorkbasket(db(), [footnoteTransaction(720)], 'small');
    const big = await readyWorkbasket(db(), [footnoteTransaction(721), longFootnoteTransaction(722, 6000)], 'big');
    const lastTaric = ((await db().raw(`SELECT max(taric_transaction_id) AS n FROM envelope_transactions`)).rows[0].n as number | null) ?? 4999;
    const err = await exportReadyWorkbaskets(db(), options({ maxEnvelopeBytes: 5000, workbasketIds: [small, big] })).catch((x: unknown) => x);
    expect(err).to.be.instanceOf(OversizeTransactionError);
    expect(err).to.include({ workbasketId: big, maxBytes: 5000, workbasketPosition: 2 });
    // Named as import problems name it (its position in the workbasket), with the TARIC id it was given:
    // the small workbasket's transaction and the big one's first came before it.
    const { transactionId, bytes, taricTransactionId } = err as OversizeTransactionError;
    expect(taricTransactionId).to.equal(lastTaric + 3);
    expect((err as Error).message).to.equal(
      `workbasket ${big}, transaction 2 (row ${transactionId}), TARIC transaction id ${taricTransactionId}: needs ${bytes} bytes as an envelope of its own, ` +
        'more than the limit of 5000 bytes; split it into smaller transactions',
    );
    expect(fs.readdirSync(workDir)).to.deep.equal([]);
    expect((await countRows(db())).envelopes).to.equal(before.envelopes);
    const ok = await exportReadyWorkbaskets(db(), options({ maxEnvelopeBytes: 5000, workbasketIds: [small] }));
    expect(ok.envelopes[0]!.envelopeId).to.equal(`26${String(nextEnvelope).padStart(4, '0')}`);
  });

  it('refuses named workbaskets that do not exist or are not READY_FOR_EXPORT', async () => {
    const editing = await readyWorkbasket(db(), [footnoteTransaction(730)], 'named');
    await db().raw(`UPDATE workbaskets SET status = 'EDITING' WHERE id = ?`, [editing]);
    const before = await countRows(db());
    const notReady = await exportReadyWorkbaskets(db(), options({ workbasketIds: [editing] })).catch((x: unknown) => x);
    expect(notReady).to.be.instanceOf(TaricError).with.property('code', 'workbasket_status');
    expect((notReady as Error).message).to.equal(`workbasket ${editing} is EDITING, not READY_FOR_EXPORT`);
    const missing = await exportReadyWorkbaskets(db(), options({ workbasketIds: [987_654] })).catch((x: unknown) => x);
    expect(missing).to.be.instanceOf(TaricError).with.property('code', 'workbasket_not_found');
    expect(await countRows(db())).to.deep.equal(before);
  });

  it('leaves no xmllint running when the exporter is killed while xmllint validates, and the next run exports it all', async function () {
    this.timeout(240_000); // two child processes (node + tsx start-up)
    // ~360 KB: more than one 256 KiB segment, so the kill comes mid-envelope.
    const w = await readyWorkbasket(db(), Array.from({ length: 120 }, (_, i) => longFootnoteTransaction(900 + i, 3000)), 'validating');
    const before = await countRows(db());
    // The real xmllint, behind a script that notes its pid first (exec keeps the pid).
    const bin = fs.mkdtempSync(path.join(os.tmpdir(), 'herald-xmllint-bin-'));
    const pids = path.join(bin, 'pids');
    const real = spawnSync('sh', ['-c', 'command -v xmllint'], { encoding: 'utf8' }).stdout.trim();
    expect(real, 'xmllint is installed (.ci/run installs libxml2-utils)').to.not.equal('');
    fs.writeFileSync(path.join(bin, 'xmllint'), `#!/bin/sh\necho "$$ $*" >> '${pids}'\nexec '${real}' "$@"\n`, { mode: 0o755 });
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'herald-export-tmp-'));
    const childOpts = { url: t.get().url, now: NOW.toISOString(), workDir, maxEnvelopeBytes: 1_000_000, firstTransactionId: 5000, workbasketIds: [w] };
    const run = (crashAt: string) =>
      spawnSync(process.execPath, ['--import', 'tsx', 'test/taric/export-child.ts', JSON.stringify(childOpts)], {
        cwd: ROOT,
        env: { ...process.env, HERALD_CRASH_AT: crashAt, TMPDIR: tmp, PATH: `${bin}:${process.env.PATH}` },
        encoding: 'utf8',
        timeout: 60_000,
      });
    const gone = (pid: string) => {
      try {
        return /^\d+ \(.*\) Z/.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8')); // a zombie has ended
      } catch {
        return true;
      }
    };
    try {
      const crashed = run('taric-export.validating');
      expect(crashed.signal, crashed.stderr).to.equal('SIGKILL');
      // Validators only (not the --version probe that finds xmllint).
      const started = fs.readFileSync(pids, 'utf8').trim().split('\n').filter((l) => l.includes('--stream')).map((l) => l.split(' ')[0]!);
      expect(started, 'the killed export had started xmllint').to.have.length(1);
      // Its writer gone, xmllint reads the end of its input and exits.
      let alive = started;
      for (let i = 0; i < 200 && alive.length > 0; i++) {
        await new Promise((r) => setTimeout(r, 50));
        alive = started.filter((pid) => !gone(pid));
      }
      expect(alive, 'xmllint still running after its exporter was killed').to.deep.equal([]);
      expect(fs.readdirSync(tmp).filter((f) => f.startsWith('herald-xmllint-')), 'FIFO directories left behind').to.deep.equal([]);
      expect(await countRows(db())).to.deep.equal(before);

      const ok = run('');
      expect(ok.status, ok.stderr).to.equal(0);
      const result = JSON.parse(ok.stdout) as Awaited<ReturnType<typeof exportReadyWorkbaskets>>;
      expect(result.envelopes).to.have.length(1);
      expect((await countRows(db())).envelope_transactions).to.equal(before.envelope_transactions + 120);
    } finally {
      fs.rmSync(bin, { recursive: true, force: true });
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  });

  for (const point of ['taric-export.rendered', 'taric-export.before-commit']) {
    it(`loses nothing and uses no id when the exporter is killed at ${point}`, async function () {
      this.timeout(240_000); // two child processes (node + tsx start-up)
      const w = await readyWorkbasket(db(), Array.from({ length: 4 }, (_, i) => longFootnoteTransaction(800 + i, 3000)), point);
      const before = await countRows(db());
      const lastTaric = ((await db().raw(`SELECT max(taric_transaction_id) AS n FROM envelope_transactions`)).rows[0].n as number | null) ?? 4999;
      const lastCounter = ((await db().raw(`SELECT max(counter) AS c FROM envelopes WHERE year = 26`)).rows[0].c as number | null) ?? 0;
      const childOpts = { url: t.get().url, now: NOW.toISOString(), workDir, maxEnvelopeBytes: 9000, firstTransactionId: 5000, workbasketIds: [w] };
      const run = (crashAt: string) =>
        spawnSync(process.execPath, ['--import', 'tsx', 'test/taric/export-child.ts', JSON.stringify(childOpts)], {
          cwd: ROOT,
          env: { ...process.env, HERALD_CRASH_AT: crashAt },
          encoding: 'utf8',
          timeout: 60_000,
        });

      const crashed = run(point);
      expect(crashed.signal, crashed.stderr).to.equal('SIGKILL');
      expect(await countRows(db())).to.deep.equal(before);
      // Postgres ends the killed client's backend (rolling back, releasing
      // the envelopes lock) once it sees the socket close.
      let held = -1;
      for (let i = 0; i < 300 && held !== 0; i++) {
        if (i > 0) await new Promise((r) => setTimeout(r, 50));
        const { rows } = await db().raw(`SELECT count(*)::int AS n FROM pg_locks l JOIN pg_class c ON c.oid = l.relation WHERE c.relname = 'envelopes'`);
        held = rows[0].n;
      }
      expect(held, 'the killed exporter still holds the envelopes lock').to.equal(0);
      // The killed run had rendered its files (no cleanup ran): they show the ids it held.
      const leftBehind = fs.readdirSync(workDir).sort();
      expect(leftBehind.length).to.be.at.least(2);
      const heldIds = leftBehind.flatMap((f) => transactionIdsInFile(fs.readFileSync(path.join(workDir, f), 'utf8')));
      const heldMd5 = leftBehind.map((f) => crypto.createHash('md5').update(fs.readFileSync(path.join(workDir, f))).digest('hex'));
      expect(heldIds).to.deep.equal([1, 2, 3, 4].map((i) => lastTaric + i));

      // The next run takes exactly those ids and writes exactly those bytes.
      const ok = run('');
      expect(ok.status, ok.stderr).to.equal(0);
      const result = JSON.parse(ok.stdout) as Awaited<ReturnType<typeof exportReadyWorkbaskets>>;
      expect(result.envelopes.map((e) => path.basename(e.file))).to.deep.equal(leftBehind);
      expect(result.envelopes.map((e) => Number(e.envelopeId.slice(2)))).to.deep.equal(leftBehind.map((_, i) => lastCounter + 1 + i));
      expect(result.envelopes.map((e) => e.md5)).to.deep.equal(heldMd5);
      expect(result.envelopes.flatMap((e) => transactionIdsInFile(fs.readFileSync(e.file, 'utf8')))).to.deep.equal(heldIds);
      expect((await countRows(db())).envelope_transactions).to.equal(before.envelope_transactions + 4);
    });
  }
});
