import { expect } from 'chai';
import { connectionName, openDb } from '../../src/db/index.js';
import { useTestDb } from '../helpers/db.js';

// openDb names its connections after the process (pg_stat_activity), unless
// the operator's URL names them.
describe('db.openDb connection names', () => {
  const t = useTestDb(import.meta.url);

  async function nameSeenBy(databaseUrl: string): Promise<string> {
    const handle = await openDb({ databaseUrl, poolMax: 1 });
    try {
      const { rows } = await handle.db.raw<{ rows: { name: string }[] }>(`SELECT current_setting('application_name') AS name`);
      return rows[0]!.name;
    } finally {
      await handle.close();
    }
  }

  it('is "herald pid N" by default', async () => {
    expect(await nameSeenBy(t.get().url)).to.equal(`herald pid ${process.pid}`).and.to.equal(connectionName(process.pid));
  });

  it('is the URL\'s application_name when it has one', async () => {
    const url = new URL(t.get().url);
    url.searchParams.set('application_name', 'herald-eu-west');
    expect(await nameSeenBy(url.toString())).to.equal('herald-eu-west');
  });
});
