import { expect } from 'chai';
import knexFactory, { type Knex } from 'knex';
import ClientPgLite from 'knex-pglite';
import { queryPrepared } from '../../src/db/prepared.js';
import { useTestDb } from '../helpers/db.js';

const TEXT = `SELECT $1::int + 1 AS n, current_setting('server_version_num')::int > 0 AS pg`;

describe('db.queryPrepared', () => {
  const t = useTestDb(import.meta.url);

  it('prepares the statement once per connection on Postgres and answers every call', async () => {
    const db = t.get().db;
    for (let i = 0; i < 5; i++) expect(await queryPrepared(db, 'test_prepared_add', TEXT, [i])).to.deep.equal([{ n: i + 1, pg: true }]);
    // The server holds it as a prepared statement of that name (on the connection it ran on).
    const held = await queryPrepared<{ name: string }>(db, 'test_prepared_list', `SELECT name FROM pg_prepared_statements ORDER BY name`, []);
    expect(held.map((r) => r.name)).to.include('test_prepared_list');
  });

  it('refuses to run inside a transaction, whose connection it cannot use', async () => {
    await t.get().db.transaction(async (trx) => {
      const err = await queryPrepared(trx, 'test_prepared_add', TEXT, [1]).then(
        () => null,
        (e: unknown) => e as Error,
      );
      expect(err?.message).to.match(/cannot run inside a transaction/);
    });
  });

  it('runs unprepared on the embedded database', async () => {
    const db: Knex = knexFactory({ client: ClientPgLite, dialect: 'postgres', connection: {} } as Knex.Config);
    try {
      expect(await queryPrepared(db, 'test_prepared_add', TEXT, [41])).to.deep.equal([{ n: 42, pg: true }]);
    } finally {
      await db.destroy();
    }
  });
});
