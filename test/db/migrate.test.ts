import { expect } from 'chai';
import { useTestDb } from '../helpers/db.js';
import { SchemaBehindError, migrateLatest, pendingMigrations, requireCurrentSchema } from '../../src/db/migrate.js';
import { splitStatements } from '../../src/db/statements.js';

describe('db.migrate', () => {
  const t = useTestDb(import.meta.url);

  it('leaves a migrated database unchanged when run again', async () => {
    expect(await migrateLatest(t.get().db)).to.deep.equal([]);
    const { rows } = await t.get().db.raw(`SELECT count(*)::int AS n FROM information_schema.tables WHERE table_name = 'envelopes'`);
    expect(rows[0].n).to.equal(1);
  });

  it('names the migrations a database has not run, and requireCurrentSchema refuses such a schema', async () => {
    const { db } = t.get();
    expect(await pendingMigrations(db)).to.deep.equal([]);
    await requireCurrentSchema(db);
    const { rows } = await db.raw(`SELECT id, name, batch, migration_time FROM knex_migrations ORDER BY id DESC LIMIT 2`);
    expect(rows).to.have.length(2);
    await db.raw(`DELETE FROM knex_migrations WHERE id IN (?, ?)`, [rows[0].id, rows[1].id]);
    try {
      expect(await pendingMigrations(db)).to.deep.equal([rows[1].name, rows[0].name]);
      const err = await requireCurrentSchema(db).then(() => null, (e: unknown) => e);
      expect(err).to.be.instanceOf(SchemaBehindError);
      expect((err as Error).message).to.equal(
        `the database schema is behind this release (2 migration(s) not run: ${rows[1].name}, ${rows[0].name}); run \`herald migrate\` first`,
      );
    } finally {
      await db('knex_migrations').insert(rows.reverse());
    }
    expect(await pendingMigrations(db)).to.deep.equal([]);
  });

  it('counts every migration as pending on a database never migrated', async () => {
    const { db } = t.get();
    const all = await pendingMigrations(db);
    await db.raw(`ALTER TABLE knex_migrations RENAME TO knex_migrations_aside`);
    try {
      const pending = await pendingMigrations(db);
      expect(pending.length).to.be.greaterThan(9);
      expect(pending[0]).to.equal('0001_taric');
      expect(all).to.deep.equal([]);
    } finally {
      await db.raw(`ALTER TABLE knex_migrations_aside RENAME TO knex_migrations`);
    }
  });

  it('splits scripts on statement ends but not inside dollar-quoted bodies', () => {
    const parts = splitStatements(`CREATE TABLE a (x int);\nCREATE FUNCTION f() RETURNS trigger AS $$\nBEGIN\n  RETURN NEW;\nEND;\n$$ LANGUAGE plpgsql;\nSELECT 1;`);
    expect(parts).to.have.length(3);
    expect(parts[1]).to.contain('RETURN NEW;').and.to.contain('LANGUAGE plpgsql;');
  });
});
