import { expect } from 'chai';
import knexFactory, { type Knex } from 'knex';
import { useTestDb } from '../helpers/db.js';
import { loadConfig } from '../../src/config.js';
import { createReport, type CreateReportInput } from '../../src/reports/create.js';
import { ReportInputError } from '../../src/reports/errors.js';
import { completeReport, failReport } from '../../src/reports/store.js';
import { seedParty, setLegalStatusColumn } from './support.js';

// Asking for reports: the record and its jobs commit together, and the same
// request while one is RUNNING (or SUCCESS within the window) gets that one,
// also when many connections ask at the same instant.

const FILE = { fileKey: 'k', fileName: 'n.csv', fileSize: 1, rowCount: 0 };
const config = loadConfig({ REPORTS_UPLOADS_TIMEOUT_MS: '60000', REPORTS_REUSE_WINDOW_MS: '300000' });
const noReuse = loadConfig({ REPORTS_REUSE_WINDOW_MS: '0' });

const request = (over: Partial<CreateReportInput> = {}): CreateReportInput => ({
  type: 'uploads',
  params: { from: '2026-01-01', to: '2026-01-31' },
  creator: 'apikey:1',
  ...over,
});

describe('reports.createReport', () => {
  const t = useTestDb(import.meta.url);
  beforeEach(async () => t.get().db.raw('TRUNCATE reports, jobs CASCADE'));

  it('inserts RUNNING and, in the same transaction, its generation, its timeout at the deadline and the expire sweep', async () => {
    const { db } = t.get();
    const { report, created } = await createReport(db, request(), { config });
    expect(created).to.equal(true);
    expect(report).to.include({ status: 'running', report_type: 'uploads', creator: 'apikey:1', timeout_ms: 60_000 });
    expect(report.params).to.deep.equal({ from: '2026-01-01', to: '2026-01-31' });
    const jobs = await db('jobs').orderBy('id');
    expect(jobs.map((j) => [j.kind, j.dedupe_key, j.subject_id])).to.deep.equal([
      ['report-generate', `report-generate:${report.id}`, report.id],
      ['report-timeout', `report-timeout:${report.id}`, report.id],
      ['reports-expire', 'reports-expire', null],
    ]);
    expect(new Date(jobs[1].scheduled_at).toISOString()).to.equal(new Date(report.deadline_at).toISOString());
    expect(new Date(report.deadline_at).getTime() - new Date(report.created_at).getTime()).to.equal(60_000);
    // A second report adds its own two jobs; the sweep stays one row.
    await createReport(db, request({ creator: 'apikey:2' }), { config });
    expect(await db('jobs').where({ kind: 'reports-expire' })).to.have.length(1);
    expect(await db('jobs').whereIn('kind', ['report-generate', 'report-timeout'])).to.have.length(4);
  });

  it('returns the RUNNING report for the same creator, type and params in any key order; others get their own', async () => {
    const { db } = t.get();
    const first = await createReport(db, request(), { config });
    const again = await createReport(db, request({ params: { to: '2026-01-31', from: '2026-01-01' } }), { config });
    expect(again).to.deep.equal({ report: first.report, created: false });
    const otherCreator = await createReport(db, request({ creator: 'apikey:2' }), { config });
    const otherParams = await createReport(db, request({ params: { from: '2026-01-01', to: '2026-01-30' } }), { config });
    const otherType = await createReport(db, request({ type: 'invoices' }), { config });
    const ids = new Set([first, otherCreator, otherParams, otherType].map((r) => r.report.id));
    expect(ids.size).to.equal(4);
    expect([otherCreator, otherParams, otherType].every((r) => r.created)).to.equal(true);
    expect(await db('jobs').where({ kind: 'report-generate' })).to.have.length(4);
  });

  it('reuses a SUCCESS within the window, never a FAIL, and starts afresh outside the window', async () => {
    const { db } = t.get();
    const first = await createReport(db, request(), { config });
    await completeReport(db, first.report.id, FILE);
    const reused = await createReport(db, request(), { config });
    expect(reused.created).to.equal(false);
    expect(reused.report).to.include({ id: first.report.id, status: 'success' });
    expect(await db('reports').count<{ n: number }[]>({ n: '*' })).to.deep.equal([{ n: 1 }]);
    expect(await db('jobs').where({ kind: 'report-generate' })).to.have.length(1, 'the rolled-back attempt left no job');

    // Finished 10 minutes ago: outside the 5-minute window.
    await db.raw(`UPDATE reports SET finished_at = now() - interval '10 minutes', created_at = now() - interval '11 minutes',
                  deadline_at = now() - interval '10 minutes' WHERE id = ?`, [first.report.id]);
    const fresh = await createReport(db, request(), { config });
    expect(fresh.created).to.equal(true);
    await failReport(db, fresh.report.id, 'broke');
    const afterFail = await createReport(db, request(), { config });
    expect(afterFail.created).to.equal(true);
    expect(new Set([first.report.id, fresh.report.id, afterFail.report.id]).size).to.equal(3);
  });

  it('never reuses a SUCCESS when the window is 0', async () => {
    const { db } = t.get();
    const first = await createReport(db, request(), { config: noReuse });
    await completeReport(db, first.report.id, FILE);
    expect((await createReport(db, request(), { config: noReuse })).created).to.equal(true);
  });

  it('refuses bad input naming the field, before writing anything', async () => {
    const { db } = t.get();
    const cases: [CreateReportInput, string][] = [
      [request({ type: 'payroll' }), 'type'],
      [request({ params: { from: '2026-01-01' } }), 'params.to'],
      [request({ type: 'invoices', params: { from: '2026-01-01', to: '2026-01-02', supplierId: 999_999 } }), 'params.supplierId'],
    ];
    for (const [input, field] of cases) {
      const err = await createReport(db, input, { config }).then(() => null, (e: unknown) => e);
      expect(err, field).to.be.instanceOf(ReportInputError);
      expect((err as ReportInputError).field).to.equal(field);
    }
    const supplier = await seedParty(db, 'supplier', 'Acme');
    const client = await seedParty(db, 'client', 'Bolt');
    expect((await createReport(db, request({ type: 'invoices', params: { from: '2026-01-01', to: '2026-01-02', supplierId: supplier } }), { config })).created).to.equal(true);
    const notSupplier = await createReport(db, request({ type: 'invoices', params: { from: '2026-01-01', to: '2026-01-02', supplierId: client } }), { config }).catch((e: unknown) => e);
    expect((notSupplier as ReportInputError).field).to.equal('params.supplierId');
    expect(await db('reports').count<{ n: number }[]>({ n: '*' })).to.deep.equal([{ n: 1 }]);
  });

  it('refuses a legalStatus filter while invoices has no legal_status column, and takes it once it has', async () => {
    const { db } = t.get();
    const input = request({ type: 'invoices', params: { from: '2026-01-01', to: '2026-01-02', legalStatus: 'DGI_AUTHORIZED' } });
    await setLegalStatusColumn(db, false);
    const err = await createReport(db, input, { config }).then(() => null, (e: unknown) => e);
    expect((err as ReportInputError).field).to.equal('params.legalStatus');
    expect((err as ReportInputError).message).to.match(/^params\.legalStatus: invoices have no legal status yet/);
    await setLegalStatusColumn(db, true);
    expect((await createReport(db, input, { config })).report.params).to.deep.equal({ from: '2026-01-01', to: '2026-01-02', legalStatus: 'DGI_AUTHORIZED' });
  });

  describe('duplicate requests racing', () => {
    const POOLS = 8;
    let pools: Knex[] = [];
    before(() => {
      pools = Array.from({ length: POOLS }, () => knexFactory({ client: 'pg', connection: t.get().url, pool: { min: 1, max: 1 } }));
    });
    after(async () => Promise.all(pools.map((p) => p.destroy())));

    it(`gives ${POOLS} simultaneous identical requests one record and one set of jobs, 100 times over`, async () => {
      const { db } = t.get();
      for (let round = 0; round < 100; round++) {
        const input = request({ params: { from: '2026-01-01', to: '2026-01-31', notification: round % 2 ? 'sent' : 'pending' }, creator: `race:${round}` });
        const results = await Promise.all(pools.map((p) => createReport(p, input, { config })));
        const ids = new Set(results.map((r) => r.report.id));
        expect(ids.size, `round ${round}`).to.equal(1);
        expect(results.filter((r) => r.created), `round ${round}`).to.have.length(1);
      }
      const perRequest = await db.raw(`SELECT creator, count(*)::int AS n FROM reports GROUP BY creator HAVING count(*) <> 1`);
      expect(perRequest.rows).to.deep.equal([]);
      expect(await db('reports').count<{ n: number }[]>({ n: '*' })).to.deep.equal([{ n: 100 }]);
      expect(await db('jobs').where({ kind: 'report-generate' }).count<{ n: number }[]>({ n: '*' })).to.deep.equal([{ n: 100 }]);
      expect(await db('jobs').where({ kind: 'report-timeout' }).count<{ n: number }[]>({ n: '*' })).to.deep.equal([{ n: 100 }]);
    });

    it('also gives one record when a SUCCESS in the window and a new request race (never a second generation)', async () => {
      const { db } = t.get();
      for (let round = 0; round < 30; round++) {
        const input = request({ creator: `reuse-race:${round}` });
        const first = await createReport(db, input, { config });
        // The success commits while 7 identical requests arrive.
        const [, ...results] = await Promise.all([
          completeReport(pools[0]!, first.report.id, FILE),
          ...pools.slice(1).map((p) => createReport(p, input, { config })),
        ]);
        for (const r of results) expect(r!.report.id, `round ${round}`).to.equal(first.report.id);
      }
      const extra = await db.raw(`SELECT creator FROM reports WHERE creator LIKE 'reuse-race:%' GROUP BY creator HAVING count(*) > 1`);
      expect(extra.rows).to.deep.equal([]);
    });
  });
});
