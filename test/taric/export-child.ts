// Child process for the crash and multi-process tests: runs one export against
// the database named in argv and prints its result as JSON. The parent arms a
// crash point through HERALD_CRASH_AT and checks what survived the SIGKILL.
//   node --import tsx test/taric/export-child.ts '<json options>'
import knexFactory from 'knex';
import '../../src/db/index.js';
import { exportReadyWorkbaskets } from '../../src/taric/envelope/export.js';
import { closeSharedValidatorPool } from '../../src/taric/envelope/validate.js';

interface ChildOptions {
  url: string;
  now: string;
  workDir: string;
  maxEnvelopeBytes: number;
  firstTransactionId: number;
  workbasketIds?: number[];
}

const opts = JSON.parse(process.argv[2] ?? '{}') as ChildOptions;
const db = knexFactory({ client: 'pg', connection: opts.url, pool: { min: 0, max: 2 } });
try {
  const result = await exportReadyWorkbaskets(db, {
    now: new Date(opts.now),
    workDir: opts.workDir,
    maxEnvelopeBytes: opts.maxEnvelopeBytes,
    firstTransactionId: opts.firstTransactionId,
    workbasketIds: opts.workbasketIds,
  });
  process.stdout.write(`${JSON.stringify(result)}\n`);
} finally {
  await db.destroy();
  await closeSharedValidatorPool();
}
