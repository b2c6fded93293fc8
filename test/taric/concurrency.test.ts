import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import knexFactory from 'knex';
import { useTestDb } from '../helpers/db.js';
import { exportReadyWorkbaskets, type ExportedEnvelope } from '../../src/taric/envelope/export.js';
import { longFootnoteTransaction, readyWorkbasket, transactionIdsInFile } from './support/workbaskets.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const NOW = '2026-07-01T12:00:00Z';
const FIRST_TRANSACTION_ID = 1000;

interface ExporterRun {
  workbasketIds: number[];
  envelopes: ExportedEnvelope[];
}

describe('taric.concurrency', function () {
  // The process test starts 4 node + tsx processes: 10-35 s on a loaded 2-core machine.
  this.timeout(240_000);
  const t = useTestDb(import.meta.url);
  const db = () => t.get().db;
  let workDir: string;
  let serial = 0;

  beforeEach(() => {
    workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'herald-concurrency-'));
  });
  afterEach(() => fs.rmSync(workDir, { recursive: true, force: true }));

  /** `exporters` sets of 2 workbaskets x 3 transactions; about 3 envelopes each at 9,000 bytes. */
  async function seed(exporters: number): Promise<number[][]> {
    const sets: number[][] = [];
    for (let e = 0; e < exporters; e++) {
      const ids: number[] = [];
      for (let w = 0; w < 2; w++) {
        ids.push(await readyWorkbasket(db(), Array.from({ length: 3 }, () => longFootnoteTransaction(serial++, 2500)), `exporter ${e}.${w}`));
      }
      sets.push(ids);
    }
    return sets;
  }

  /** Checks the whole database: every number contiguous and unique, every transaction exactly once. */
  async function checkNumbering(runs: ExporterRun[]): Promise<void> {
    const { rows: envelopes } = await db().raw(`SELECT id, envelope_id, year, counter FROM envelopes ORDER BY counter`);
    expect(envelopes.map((e: { counter: number }) => e.counter)).to.deep.equal(envelopes.map((_: unknown, i: number) => i + 1));
    expect(new Set(envelopes.map((e: { envelope_id: string }) => e.envelope_id)).size).to.equal(envelopes.length);

    const { rows: ets } = await db().raw(`SELECT transaction_id, workbasket_id, taric_transaction_id FROM envelope_transactions ORDER BY taric_transaction_id`);
    const { rows: all } = await db().raw(`SELECT count(*)::int AS n FROM transactions`);
    expect(ets).to.have.length(all[0].n);
    expect(new Set(ets.map((r: { transaction_id: number }) => r.transaction_id)).size).to.equal(all[0].n);
    expect(ets.map((r: { taric_transaction_id: number }) => r.taric_transaction_id)).to.deep.equal(ets.map((_: unknown, i: number) => FIRST_TRANSACTION_ID + i));

    for (const run of runs) {
      const ids = run.envelopes.flatMap((e) => transactionIdsInFile(fs.readFileSync(e.file, 'utf8')));
      // Each exporter held the lock for its whole run: its ids form one block
      // and its envelopes hold only its own workbaskets.
      expect(ids).to.have.length(6);
      expect(ids).to.deep.equal(ids.map((_, i) => ids[0]! + i));
      for (const e of run.envelopes) expect(run.workbasketIds).to.include.members(e.workbasketIds);
      const counters = run.envelopes.map((e) => Number(e.envelopeId.slice(2)));
      expect(counters).to.deep.equal(counters.map((_, i) => counters[0]! + i));
    }
  }

  it('serializes 8 exporters on separate connection pools: contiguous ids, no duplicates, no deadlock', async () => {
    const sets = await seed(8);
    const pools = sets.map(() => knexFactory({ client: 'pg', connection: t.get().url, pool: { min: 0, max: 3 } }));
    try {
      const results = await Promise.allSettled(
        sets.map((workbasketIds, i) =>
          exportReadyWorkbaskets(pools[i]!, {
            now: new Date(NOW),
            maxEnvelopeBytes: 9000,
            firstTransactionId: FIRST_TRANSACTION_ID,
            workDir,
            workbasketIds,
          }),
        ),
      );
      const failures = results.filter((r) => r.status === 'rejected').map((r) => String((r as PromiseRejectedResult).reason));
      expect(failures, 'no exporter may fail (deadlock, unique violation)').to.deep.equal([]);
      const runs = results.map((r, i) => ({ workbasketIds: sets[i]!, envelopes: (r as PromiseFulfilledResult<{ envelopes: ExportedEnvelope[] }>).value.envelopes }));
      expect(runs.every((r) => r.envelopes.length >= 2)).to.equal(true);
      await checkNumbering(runs);
    } finally {
      await Promise.all(pools.map((p) => p.destroy()));
    }
  });

  it('serializes 4 exporter processes started at once, continuing the same numbering', async () => {
    const sets = await seed(4);
    const runs = await Promise.all(
      sets.map(
        (workbasketIds) =>
          new Promise<ExporterRun>((resolve, reject) => {
            const opts = { url: t.get().url, now: NOW, workDir, maxEnvelopeBytes: 9000, firstTransactionId: FIRST_TRANSACTION_ID, workbasketIds };
            const child = spawn(process.execPath, ['--import', 'tsx', 'test/taric/export-child.ts', JSON.stringify(opts)], { cwd: ROOT });
            let out = '';
            let err = '';
            child.stdout.on('data', (d: Buffer) => (out += d.toString()));
            child.stderr.on('data', (d: Buffer) => (err += d.toString()));
            child.on('error', reject);
            child.on('exit', (code) => {
              if (code !== 0) return reject(new Error(`exporter exited ${code}: ${err}`));
              resolve({ workbasketIds, envelopes: (JSON.parse(out) as { envelopes: ExportedEnvelope[] }).envelopes });
            });
          }),
      ),
    );
    await checkNumbering(runs);
  });
});
