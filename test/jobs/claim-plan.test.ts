import { expect } from 'chai';
import pg from 'pg';
import { useTestDb } from '../helpers/db.js';

// herald_claim_due_jobs (migration 0016) pins the claim's plan to the ordered
// walk of ix_jobs_due. The case it exists for: statistics that say "few rows
// are pending" (here: taken while every row was completed) meet a burst of
// pending rows. auto_explain shows the plan Postgres really ran for the
// function's nested UPDATE. Before, the claim sorted every pending row, or
// (these statistics) ran its IN (SELECT ... LIMIT 5 FOR UPDATE SKIP LOCKED)
// as a semi join that re-ran the subquery per row and claimed all 3,000.

describe('jobs: the claim plan under stale statistics', () => {
  const t = useTestDb(import.meta.url);

  async function plansOf(url: string, sql: string, params: unknown[]): Promise<{ plans: string[]; ids: number[] }> {
    const client = new pg.Client({ connectionString: url });
    const plans: string[] = [];
    client.on('notice', (n) => {
      if (/duration: .* plan:/s.test(n.message ?? '')) plans.push(n.message!);
    });
    await client.connect();
    try {
      await client.query(`LOAD 'auto_explain'`);
      await client.query(`SET auto_explain.log_min_duration = 0; SET auto_explain.log_nested_statements = on; SET client_min_messages = log`);
      await client.query('BEGIN');
      const { rows } = await client.query<{ id: string }>(sql, params);
      await client.query('ROLLBACK');
      return { plans, ids: rows.map((r) => Number(r.id)) };
    } finally {
      await client.end();
    }
  }

  it('claims exactly the 5 most overdue rows by walking ix_jobs_due in order, sorting nothing', async () => {
    const { db, url } = t.get();
    await db.raw(`INSERT INTO jobs (kind, status, finished_at) SELECT 'test-record', 'completed', now() FROM generate_series(1, 3000)`);
    await db.raw('ANALYZE jobs');
    await db.raw(`INSERT INTO jobs (kind, scheduled_at) SELECT 'test-record', now() - make_interval(secs => 5000 - g) FROM generate_series(1, 3000) g`);
    const oldest = (await db('jobs').where({ status: 'pending' }).orderBy([{ column: 'scheduled_at' }, { column: 'id' }]).limit(5).pluck('id')).map(Number);

    const pinned = await plansOf(url, `SELECT id FROM herald_claim_due_jobs(NULL, NULL, ARRAY['test-record'], 5)`, []);
    const nested = pinned.plans.find((p) => p.includes('Update on jobs'))!;
    expect(nested).to.include('Index Scan using ix_jobs_due');
    expect(nested).not.to.match(/\bSort\b/);
    expect([...pinned.ids].sort((a, b) => a - b)).to.deep.equal(oldest);
  });
});
