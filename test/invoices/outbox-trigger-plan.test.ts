import crypto from 'node:crypto';
import { expect } from 'chai';
import pg from 'pg';
import { INSERT_INVOICE_REQUESTS_SQL } from '../../src/invoices/request-store.js';
import { useTestDb } from '../helpers/db.js';
import { seedClient, seedSupplier } from './support.js';

// The safety-net trigger (migration 0017) looks for each new request's job.
// PL/pgSQL keeps that query's plan for the session: planned while jobs was
// nearly empty, a plan that scans the whole table would stay in use as jobs
// grows, one full scan per submit statement. What Postgres ran is read from
// auto_explain, sent to this session as LOG notices.
describe('invoices: the outbox safety-net trigger', () => {
  const t = useTestDb(import.meta.url);

  it('probes ix_jobs_subject per new row, also in a session that first ran it while the statistics said jobs was empty', async () => {
    const { db, url } = t.get();
    const supplier = await seedSupplier(db);
    const client = await seedClient(db);
    const requests = (n: number) =>
      JSON.stringify(Array.from({ length: n }, () => ({
        id: crypto.randomUUID(), caller: 'plan-test', idempotency_key: null, body_hash: null, payload: {}, supplier_party_id: supplier.id, client_party_id: client.id,
      })));
    const session = new pg.Client({ connectionString: url });
    await session.connect();
    try {
      const submit = (n: number) => session.query({ name: 'submit', text: INSERT_INVOICE_REQUESTS_SQL, values: [requests(n)] });
      // Statistics that say jobs is empty (a fresh install analysed before
      // its first jobs, or a purge), then more than five runs: PL/pgSQL may
      // keep a generic plan from then on, made now.
      await db.raw('ANALYZE jobs');
      for (let i = 0; i < 8; i++) await submit(1);
      await db.raw(`INSERT INTO jobs (kind, payload, subject_type, subject_id, status, finished_at)
                    SELECT 'plan-test', '{}', 'invoice_request', g::text, 'completed', now() FROM generate_series(1, 20000) AS g`);

      const notices: string[] = [];
      session.on('notice', (n) => notices.push(n.message ?? ''));
      await session.query(`LOAD 'auto_explain'`);
      await session.query(`SET auto_explain.log_min_duration = 0; SET auto_explain.log_nested_statements = on; SET client_min_messages = log`);
      await submit(3);
      const plans = notices.filter((m) => m.includes('new_requests'));
      expect(plans, notices.join('\n---\n')).to.have.length(1);
      expect(plans[0]).to.match(/Index (Only )?Scan using ix_jobs_subject on jobs/);
      expect(plans[0]).not.to.match(/Seq Scan on jobs/);
    } finally {
      await session.end();
    }
    const jobs = await db('jobs').where({ kind: 'invoice-request', subject_type: 'invoice_request' }).count<{ count: string }[]>('* as count');
    expect(Number(jobs[0]!.count), 'one job per request, none added twice').to.equal(11);
  });
});
