import crypto from 'node:crypto';
import knexFactory, { type Knex } from 'knex';
import pg from 'pg';
import { migrateLatest } from '../../src/db/migrate.js';
import '../../src/db/index.js'; // installs the pg type parsers Herald relies on

// Each test file gets its own database, cloned from a template migrated once
// per run (root hook in test/hooks.ts). A database whose tests failed is kept
// and its name printed, so the evidence survives the run.

export const ADMIN_URL = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
// One template per mocha run (the root process's pid), so runs side by side
// never drop each other's template; mochaGlobalTeardown drops it. The root
// process loads this module before it starts parallel workers, which inherit
// the variable and so name the same template.
process.env.HERALD_TEST_RUN ??= String(process.pid);
export const TEMPLATE = `herald_test_template_${process.env.HERALD_TEST_RUN ?? process.pid}`;

export function urlFor(database: string): string {
  const url = new URL(ADMIN_URL);
  url.pathname = `/${database}`;
  return url.toString();
}

/** Runs fn on a connection to the admin database (CREATE / DROP DATABASE). */
export async function admin<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: ADMIN_URL });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

export async function dropTemplate(): Promise<void> {
  await admin((c) => c.query(`DROP DATABASE IF EXISTS ${TEMPLATE} WITH (FORCE)`));
}

export async function createTemplate(): Promise<void> {
  await admin(async (c) => {
    await c.query(`DROP DATABASE IF EXISTS ${TEMPLATE} WITH (FORCE)`);
    await c.query(`CREATE DATABASE ${TEMPLATE}`);
  });
  const db = knexFactory({ client: 'pg', connection: urlFor(TEMPLATE), pool: { min: 0, max: 1 } });
  try {
    await migrateLatest(db);
  } finally {
    await db.destroy();
  }
}

export interface TestDb {
  name: string;
  url: string;
  db: Knex;
  /** Close the pool; drop the database unless keep is true. */
  finish(keep: boolean): Promise<void>;
}

/** A fresh migrated database named after the test file (and a label). */
export async function createTestDb(fileUrl: string, label = ''): Promise<TestDb> {
  const stem = fileUrl.split('/').pop()!.replace(/\.test\.ts$/, '').replace(/[^a-z0-9]+/gi, '_').toLowerCase();
  const hash = crypto.createHash('sha1').update(fileUrl + label + process.pid).digest('hex').slice(0, 6);
  const name = `herald_t_${stem.slice(0, 40)}_${hash}`;
  await admin(async (c) => {
    await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await c.query(`CREATE DATABASE ${name} TEMPLATE ${TEMPLATE}`);
  });
  const url = urlFor(name);
  const db = knexFactory({ client: 'pg', connection: url, pool: { min: 0, max: 20 } });
  return {
    name,
    url,
    db,
    async finish(keep) {
      await db.destroy();
      if (keep) {
        process.stderr.write(`kept test database ${name} (a test failed)\n`);
        return;
      }
      await admin((c) => c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
    },
  };
}

/**
 * Mocha helper: a database for the whole describe block, dropped after it
 * unless one of its tests failed.
 */
export function useTestDb(fileUrl: string, label = ''): { get: () => TestDb } {
  let current: TestDb | undefined;
  let failed = false;
  before(async () => {
    current = await createTestDb(fileUrl, label);
  });
  afterEach(function () {
    if (this.currentTest?.state === 'failed') failed = true;
  });
  after(async () => {
    await current?.finish(failed);
  });
  return {
    get: () => {
      if (!current) throw new Error('test database not ready (use inside it/before hooks)');
      return current;
    },
  };
}
