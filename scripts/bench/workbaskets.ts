// `npm run bench:workbaskets [-- --target-bytes N --json]`: a
// ~40 MB TARIC3 envelope through `workbaskets import` (streaming XML ->
// Postgres) and back out through exportReadyWorkbaskets (Postgres in batches
// -> render -> validate -> envelope rows), printing time and memory of each.
// Target (issue): import in bounded memory, i.e. peak RSS growth during the
// import far below the file size; the export streams too.
//
// Database: DATABASE_URL's server (a scratch database herald_bench_<pid> is
// created there and dropped), else the embedded PGlite in a temp directory.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Command, InvalidArgumentError } from 'commander';
import knexFactory, { type Knex } from 'knex';
import { loadConfig } from '../../src/config.js';
import { openDb } from '../../src/db/index.js';
import { migrateLatest } from '../../src/db/migrate.js';
import { buildEnvelopes } from '../../src/taric/envelope/envelope-writer.js';
import { sampleTransactions } from '../../test/taric/support/sample-records.js';
import { importXmlWorkbasket } from '../../src/taric/import/import-xml.js';
import { exportReadyWorkbaskets, fileSink } from '../../src/taric/envelope/export.js';
import { setWorkbasketStatusIf } from '../../src/taric/store.js';
import { closeSharedValidatorPool } from '../../src/taric/envelope/validate.js';
import { finish, loadGuard, measure } from './support.js';

const program = new Command('bench:workbaskets')
  .description('Import a ~40 MB TARIC3 envelope into Postgres and export it again; print time and memory')
  .option('--target-bytes <n>', 'approximate envelope size', (v) => {
    const n = Number(v);
    if (!Number.isSafeInteger(n) || n < 10_000) throw new InvalidArgumentError('--target-bytes must be a whole number >= 10000');
    return n;
  }, 39_000_000)
  .option('--json', 'print the figures as JSON')
  .parse();
const opts = program.opts<{ targetBytes: number; json?: boolean }>();

const MB = 1024 * 1024;

async function scratchDatabase(): Promise<{ db: Knex; close(): Promise<void>; where: string }> {
  const config = loadConfig();
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'herald-bench-wb-'));
  if (!config.DATABASE_URL) {
    const handle = await openDb({ dataDir: tmp });
    return { db: handle.db, where: 'embedded PGlite', close: async () => (await handle.close(), fs.rmSync(tmp, { recursive: true, force: true })) };
  }
  const name = `herald_bench_${process.pid}`;
  const admin = knexFactory({ client: 'pg', connection: config.DATABASE_URL, pool: { min: 0, max: 1 } });
  await admin.raw(`CREATE DATABASE ${name}`);
  const url = new URL(config.DATABASE_URL);
  url.pathname = `/${name}`;
  const db = knexFactory({ client: 'pg', connection: url.toString(), pool: { min: 0, max: 4 } });
  return {
    db,
    where: `Postgres ${url.host}`,
    async close() {
      await db.destroy();
      await admin.raw(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await admin.destroy();
      fs.rmSync(tmp, { recursive: true, force: true });
    },
  };
}

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'herald-bench-wb-files-'));
const { db, close, where } = await scratchDatabase();
try {
  await migrateLatest(db);
  // The input: valid sample transactions of every exportable record type,
  // written by Herald's own envelope writer (one envelope, no validation).
  const source = path.join(work, 'DIT000001.xml');
  let bytes = 0;
  const gen = (function* () {
    for (const t of sampleTransactions({ count: Number.MAX_SAFE_INTEGER, seed: 7, records: [1, 8], textLength: 60 })) {
      if (bytes >= opts.targetBytes) return;
      yield t;
    }
  })();
  await buildEnvelopes({
    transactions: gen,
    firstTaricTransactionId: 1,
    nextEnvelopeId: () => '000001',
    maxEnvelopeBytes: Number.MAX_SAFE_INTEGER,
    openSink: () => fileSink(source),
    validate: false,
    onProgress: (p) => (bytes = p.bytes),
  });
  const fileBytes = fs.statSync(source).size;

  const watch = loadGuard();
  const imported = await measure(() => importXmlWorkbasket(db, source, { title: 'bench' }));
  await setWorkbasketStatusIf(db, imported.value.workbasketId, 'EDITING', 'READY_FOR_EXPORT');
  const exported = await measure(() =>
    exportReadyWorkbaskets(db, { now: new Date(), maxEnvelopeBytes: 40_000_000, firstTransactionId: 1, workDir: work }),
  );

  const figures = {
    database: where,
    fileMB: +(fileBytes / MB).toFixed(1),
    transactions: imported.value.transactions,
    records: imported.value.records,
    import: {
      seconds: +imported.seconds.toFixed(2),
      mbPerSecond: +(fileBytes / MB / imported.seconds).toFixed(1),
      rssBeforeMB: Math.round(imported.rssBefore / MB),
      rssPeakMB: Math.round(imported.rssPeak / MB),
      rssGrowthMB: Math.round((imported.rssPeak - imported.rssBefore) / MB),
    },
    export: {
      seconds: +exported.seconds.toFixed(2),
      envelopes: exported.value.envelopes.length,
      bytes: exported.value.envelopes.reduce((n, e) => n + e.bytes, 0),
      rssBeforeMB: Math.round(exported.rssBefore / MB),
      rssPeakMB: Math.round(exported.rssPeak / MB),
      rssGrowthMB: Math.round((exported.rssPeak - exported.rssBefore) / MB),
    },
  };
  if (!opts.json) {
    const i = figures.import;
    const e = figures.export;
    process.stdout.write(
      [
        `input     ${figures.fileMB} MB envelope, ${figures.transactions} transactions, ${figures.records} records (${figures.database})`,
        `import    ${i.seconds} s (${i.mbPerSecond} MB/s), RSS ${i.rssBeforeMB} -> peak ${i.rssPeakMB} MB (+${i.rssGrowthMB} MB)`,
        `export    ${e.seconds} s, ${e.envelopes} envelope(s) of ${(e.bytes / MB).toFixed(1)} MB, RSS ${e.rssBeforeMB} -> peak ${e.rssPeakMB} MB (+${e.rssGrowthMB} MB)`,
      ].join('\n') + '\n',
    );
  }
  finish(watch.stop(), figures, {
    'import memory bounded (RSS growth < half the file)': { met: figures.import.rssGrowthMB < figures.fileMB / 2, value: `+${figures.import.rssGrowthMB} MB for ${figures.fileMB} MB` },
  }, { jsonOnly: opts.json });
} finally {
  await close();
  await closeSharedValidatorPool();
  fs.rmSync(work, { recursive: true, force: true });
}
