import { expect } from 'chai';
import { useTestDb } from '../helpers/db.js';
import { migrateLatest } from '../../src/db/migrate.js';
import { splitStatements } from '../../src/db/statements.js';

describe('db.migrate', () => {
  const t = useTestDb(import.meta.url);

  it('leaves a migrated database unchanged when run again', async () => {
    expect(await migrateLatest(t.get().db)).to.deep.equal([]);
    const { rows } = await t.get().db.raw(`SELECT count(*)::int AS n FROM information_schema.tables WHERE table_name = 'envelopes'`);
    expect(rows[0].n).to.equal(1);
  });

  it('splits scripts on statement ends but not inside dollar-quoted bodies', () => {
    const parts = splitStatements(`CREATE TABLE a (x int);\nCREATE FUNCTION f() RETURNS trigger AS $$\nBEGIN\n  RETURN NEW;\nEND;\n$$ LANGUAGE plpgsql;\nSELECT 1;`);
    expect(parts).to.have.length(3);
    expect(parts[1]).to.contain('RETURN NEW;').and.to.contain('LANGUAGE plpgsql;');
  });
});
