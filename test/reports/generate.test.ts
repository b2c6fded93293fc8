import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { useTestDb } from '../helpers/db.js';
import type { Config } from '../../src/config.js';
import { runJobsInline } from '../../src/jobs/runtime/inline.js';
import { createReport } from '../../src/reports/create.js';
import { ReportInputError } from '../../src/reports/errors.js';
import { writeReportCsv } from '../../src/reports/generate.js';
import { reportJobs } from '../../src/reports/jobs.js';
import { uploadsReport } from '../../src/reports/report-types.js';
import { createReportServices, type ReportServices } from '../../src/reports/services.js';
import { failReport, getReport, insertRunningReport, type ReportRow } from '../../src/reports/store.js';
import { createS3Storage, s3OptionsFromConfig, type S3Storage } from '../../src/storage/s3.js';
import { quietLog, reportConfig, seedInvoice, seedParty, seedUpload, setLegalStatusColumn, startS3, type S3Sandbox } from './support.js';

// Generation end to end: real Postgres rows -> CSV -> the local S3 server ->
// SUCCESS, run by the job runner (inline), and every way it can end otherwise.

const BOM = '\uFEFF';
const csv = (...lines: string[]) => `${BOM}${lines.map((l) => `${l}\r\n`).join('')}`;
const iso = (d: Date | string | null) => (d ? new Date(d).toISOString() : '');

describe('reports.generate', () => {
  const t = useTestDb(import.meta.url);
  let s3: S3Sandbox;
  let config: Config;
  let services: ReportServices;
  let storage: S3Storage;

  before(async () => {
    s3 = await startS3();
    config = reportConfig(s3.server);
    storage = createS3Storage(s3OptionsFromConfig(config));
    services = createReportServices(config, { storage });
  });
  after(async () => {
    storage.close();
    await s3.close();
  });
  beforeEach(async () => {
    await t.get().db.raw('TRUNCATE reports, jobs CASCADE');
    s3.server.reset();
  });

  const ask = async (type: string, params: Record<string, unknown>, creator = 'test') => (await createReport(t.get().db, { type, params, creator }, { config })).report;
  const runJobs = (now?: () => Date) => runJobsInline(t.get().db, reportJobs(config, () => services), { until: 'idle', log: quietLog, ...(now && { now }) });
  const reload = async (r: ReportRow) => (await getReport(t.get().db, r.id))!;
  const puts = () => s3.server.requests().filter((r) => r.method === 'PUT');

  describe('uploads', () => {
    let ids: number[];
    before(async () => {
      const { db } = t.get();
      ids = [
        await seedUpload(db, { counter: 1, uploadedAt: '2026-03-01T10:00:00Z', notificationSent: '2026-03-01T10:05:00Z', workbaskets: ['=HYPERLINK("x")', 'Quotas'], firstTaricId: 100 }),
        await seedUpload(db, { counter: 2, uploadedAt: '2026-03-31T23:59:59Z', workbaskets: ['Duties, spring'], transactions: 1, firstTaricId: 200 }),
        await seedUpload(db, { counter: 3, uploadedAt: '2026-04-01T00:00:00Z', workbaskets: ['Too late'], firstTaricId: 300 }),
        await seedUpload(db, { counter: 4, uploadedAt: null, workbaskets: ['Not uploaded yet'], firstTaricId: 400 }),
      ];
    });

    async function expectedLine(uploadId: number, rest: string): Promise<string> {
      const { rows } = await t.get().db.raw(
        `SELECT u.correlation_id::text AS c, md5(e.envelope_id) AS m, e.envelope_id AS env, u.uploaded_at, u.notification_sent
           FROM uploads u JOIN envelopes e ON e.id = u.envelope_id WHERE u.id = ?`,
        [uploadId],
      );
      const r = rows[0];
      return `${uploadId},${r.env},2026-03-01T09:00:00.000Z,DIT${r.env}.xml,2048,${r.m},hmrc-bucket,tohmrc/staging/DIT${r.env}.xml,${iso(r.uploaded_at)},${rest.replace('{c}', r.c)}`;
    }

    it('writes the uploads of the date range (UTC days, to inclusive) with workbaskets, checksums and notification state to S3', async () => {
      const report = await ask('uploads', { from: '2026-03-01', to: '2026-03-31' });
      const summary = await runJobs();
      expect(summary.outcomes.completed).to.equal(1);
      const done = await reload(report);
      expect(done).to.include({ status: 'success', row_count: 2, error_message: null, file_key: `reports/uploads/${report.id}.csv` });
      expect(done.file_name).to.match(new RegExp(`^uploads-\\d{4}-\\d{2}-\\d{2}-${report.id.slice(0, 8)}\\.csv$`));
      const body = (await storage.getObjectBuffer(done.file_key!)).toString('utf8');
      const head = await storage.headObject(done.file_key!);
      expect(head).to.include({ size: Buffer.byteLength(body), contentType: 'text/csv; charset=utf-8', contentDisposition: `attachment; filename="${done.file_name}"` });
      expect(done.file_size).to.equal(Buffer.byteLength(body));
      const wb = (await t.get().db('envelope_transactions').where({ envelope_id: 1 }).distinct('workbasket_id').orderBy('workbasket_id')).map((r) => r.workbasket_id);
      const wb2 = (await t.get().db('envelope_transactions').where({ envelope_id: 2 }).distinct('workbasket_id')).map((r) => r.workbasket_id);
      expect(body).to.equal(
        csv(
          uploadsReport.headers.join(','),
          await expectedLine(ids[0]!, `sent,2026-03-01T10:05:00.000Z,{c},4,100,103,${wb.join(';')},"'=HYPERLINK(""x""); Quotas"`),
          await expectedLine(ids[1]!, `pending,,{c},1,200,200,${wb2.join(';')},"Duties, spring"`),
        ),
      );
    });

    it('filters on notification state', async () => {
      const report = await ask('uploads', { from: '2026-03-01', to: '2026-04-30', notification: 'pending' });
      await runJobs();
      const done = await reload(report);
      expect(done.row_count).to.equal(2);
      const body = (await storage.getObjectBuffer(done.file_key!)).toString('utf8');
      expect(body.split('\r\n').slice(1, 3).map((l) => Number(l.split(',')[0]))).to.deep.equal([ids[1], ids[2]]);
    });

    it('writes just the header for an empty range', async () => {
      const report = await ask('uploads', { from: '2020-01-01', to: '2020-01-31' });
      await runJobs();
      const done = await reload(report);
      expect(done).to.include({ status: 'success', row_count: 0 });
      expect((await storage.getObjectBuffer(done.file_key!)).toString('utf8')).to.equal(csv(uploadsReport.headers.join(',')));
    });

    it('reads every row once across page boundaries (keyset pages of 1)', async () => {
      const file = path.join(os.tmpdir(), `herald-report-test-${process.pid}.csv`);
      try {
        const rows = await writeReportCsv(t.get().db, uploadsReport as never, { from: '2026-01-01', to: '2026-12-31' }, file, {
          signal: new AbortController().signal, pageSize: 1,
        });
        expect(rows).to.equal(3);
        const lines = fs.readFileSync(file, 'utf8').trim().split('\r\n').slice(1);
        expect(lines.map((l) => Number(l.split(',')[0]))).to.deep.equal(ids.slice(0, 3));
      } finally {
        fs.rmSync(file, { force: true });
      }
    });
  });

  describe('invoices', () => {
    let acme: number;
    let bolt: number;
    before(async () => {
      const { db } = t.get();
      acme = await seedParty(db, 'supplier', 'Acme Exports');
      bolt = await seedParty(db, 'supplier', '@Bolt Supplies');
      const client = await seedParty(db, 'client', 'Client GmbH');
      await seedInvoice(db, { supplierId: bolt, clientId: client, number: 1, issueDate: '2026-02-01', total: '60.00' });
      await seedInvoice(db, { supplierId: acme, clientId: client, number: 2, issueDate: '2026-02-28' });
      await seedInvoice(db, { supplierId: acme, clientId: client, number: 1, issueDate: '2026-02-01', total: '99.99' });
      await seedInvoice(db, { supplierId: acme, clientId: client, number: 3, issueDate: '2026-03-01' });
    });

    const dataLines = (body: string) => body.replace(BOM, '').trim().split('\r\n').slice(1).map((l) => l.split(','));

    it('lists invoices of the range by supplier and number, legal status empty while invoices have none', async () => {
      await setLegalStatusColumn(t.get().db, false);
      const report = await ask('invoices', { from: '2026-02-01', to: '2026-02-28' });
      await runJobs();
      const done = await reload(report);
      expect(done).to.include({ status: 'success', row_count: 3 });
      const body = (await storage.getObjectBuffer(done.file_key!)).toString('utf8');
      expect(body.split('\r\n')[0]).to.equal(`${BOM}invoice_id,supplier_id,supplier_name,supplier_tax_id,invoice_number,issue_date,due_date,client_name,currency,subtotal,tax_total,total,status,legal_status,created_at`);
      const lines = dataLines(body);
      expect(lines.map((l) => [l[1], l[2], l[4], l[5], l[6], l[9], l[10], l[11], l[12], l[13]])).to.deep.equal([
        [String(acme), 'Acme Exports', 'INV-000001', '2026-02-01', '2026-03-03', '83.33', '16.66', '99.99', 'issued', ''],
        [String(acme), 'Acme Exports', 'INV-000002', '2026-02-28', '2026-03-30', '100.00', '20.00', '120.00', 'issued', ''],
        [String(bolt), "'@Bolt Supplies", 'INV-000001', '2026-02-01', '2026-03-03', '50.00', '10.00', '60.00', 'issued', ''],
      ]);
    });

    it('filters by supplier', async () => {
      const report = await ask('invoices', { from: '2026-01-01', to: '2026-12-31', supplierId: acme });
      await runJobs();
      const lines = dataLines((await storage.getObjectBuffer((await reload(report)).file_key!)).toString('utf8'));
      expect(lines.map((l) => l[4])).to.deep.equal(['INV-000001', 'INV-000002', 'INV-000003']);
    });

    it('shows and filters legal status once invoices has the column', async () => {
      const { db } = t.get();
      await setLegalStatusColumn(db, true);
      await db.raw(`UPDATE invoices SET legal_status = CASE WHEN invoice_number_int = 2 THEN 'DGI_REJECTED' ELSE 'DGI_AUTHORIZED' END`);
      const all = await ask('invoices', { from: '2026-02-01', to: '2026-02-28' });
      const authorized = await ask('invoices', { from: '2026-01-01', to: '2026-12-31', legalStatus: 'DGI_AUTHORIZED', supplierId: acme });
      await runJobs();
      const allLines = dataLines((await storage.getObjectBuffer((await reload(all)).file_key!)).toString('utf8'));
      expect(allLines.map((l) => [l[4], l[13]])).to.deep.equal([['INV-000001', 'DGI_AUTHORIZED'], ['INV-000002', 'DGI_REJECTED'], ['INV-000001', 'DGI_AUTHORIZED']]);
      const authorizedLines = dataLines((await storage.getObjectBuffer((await reload(authorized)).file_key!)).toString('utf8'));
      expect(authorizedLines.map((l) => l[4])).to.deep.equal(['INV-000001', 'INV-000003']);
    });

    it('fails a legalStatus report whose column disappeared before it ran, naming the parameter', async () => {
      const { db } = t.get();
      await setLegalStatusColumn(db, true);
      const report = await ask('invoices', { from: '2026-01-01', to: '2026-12-31', legalStatus: 'DGI_AUTHORIZED' });
      await setLegalStatusColumn(db, false);
      await runJobs();
      const failed = await reload(report);
      expect(failed.status).to.equal('fail');
      expect(failed.error_message).to.match(/^params\.legalStatus: invoices have no legal_status column/);
      expect((await db('jobs').where({ kind: 'report-generate', subject_id: report.id }).first()).status).to.equal('failed_permanent');
    });
  });

  describe('how else it ends', () => {
    const range = { from: '2026-03-01', to: '2026-03-31' };

    it('fails the report at once with the storage error when S3 refuses for good (and the job says why)', async () => {
      s3.server.inject({ type: 'status', status: 400, code: 'InvalidArgument', match: 'PUT' });
      const report = await ask('uploads', range);
      await runJobs();
      const failed = await reload(report);
      expect(failed).to.include({ status: 'fail', file_key: null });
      expect(failed.error_message).to.contain('InvalidArgument');
      expect(failed.finished_at).to.not.equal(null);
      const job = await t.get().db('jobs').where({ kind: 'report-generate', subject_id: report.id }).first();
      expect(job).to.include({ status: 'failed_permanent', error_class: 'permanent' });
    });

    it('stays RUNNING through a transient S3 failure and succeeds on the retry', async () => {
      s3.server.inject({ type: 'status', status: 503, code: 'SlowDown', match: 'PUT' });
      const report = await ask('uploads', range);
      await runJobs();
      expect((await reload(report)).status).to.equal('running');
      const job = await t.get().db('jobs').where({ kind: 'report-generate', subject_id: report.id }).first();
      expect(job).to.include({ status: 'failed', attempts: 1 });
      const later = new Date(Date.now() + 70_000);
      await runJobs(() => later);
      expect(await reload(report)).to.include({ status: 'success', row_count: 2 });
      expect(puts()).to.have.length(2);
    });

    it('settles the report as FAIL when the last attempt fails too', async () => {
      const report = await ask('uploads', range);
      await t.get().db('jobs').where({ kind: 'report-generate', subject_id: report.id }).update({ max_attempts: 1 });
      s3.server.inject({ type: 'status', status: 500, code: 'InternalError', match: 'PUT' });
      await runJobs();
      const failed = await reload(report);
      expect(failed.status).to.equal('fail');
      expect(failed.error_message).to.contain('InternalError');
    });

    it('does nothing (no file) for a report that ended before its generation ran', async () => {
      const report = await ask('uploads', range);
      await failReport(t.get().db, report.id, 'cancelled by test');
      await runJobs();
      expect(await reload(report)).to.include({ status: 'fail', error_message: 'cancelled by test', file_key: null });
      expect(puts()).to.deep.equal([]);
      expect((await t.get().db('jobs').where({ kind: 'report-generate' }).first()).status).to.equal('completed');
    });

    it('times a report out instead of generating it when its deadline has passed before the run', async () => {
      const report = await ask('uploads', range);
      const afterDeadline = new Date(new Date(report.deadline_at).getTime() + 1000);
      await runJobs(() => afterDeadline);
      const ended = await reload(report);
      expect(ended).to.include({ status: 'fail', error_message: 'timed out after 900 s', file_key: null });
      expect(puts()).to.deep.equal([]);
      // The timeout and expire jobs ran too (they were due at that time) and changed nothing more.
      const jobs = await t.get().db('jobs').orderBy('id');
      expect(jobs.map((j) => [j.kind, j.status])).to.deep.equal([['report-generate', 'completed'], ['report-timeout', 'completed'], ['reports-expire', 'pending']]);
    });

    it('fails a report stored with a date the database refuses (year 0000) at once: "[permanent]", the condition, no SQL', async () => {
      const { db } = t.get();
      // Written before the boundary refused such dates (createReport does now, as params.from).
      const params = { from: '0000-01-01', to: '2026-01-31' };
      const row = (await insertRunningReport(db, { creator: 't', reportType: 'uploads', paramsHash: '1'.repeat(64), params, timeoutMs: 60_000 }))!;
      await db.raw(`INSERT INTO jobs (kind, payload, subject_type, subject_id) VALUES ('report-generate', ?::jsonb, 'report', ?)`, [JSON.stringify({ reportId: row.id }), row.id]);
      await runJobs();
      const failed = await reload(row);
      expect(failed).to.include({
        status: 'fail',
        error_message: '[permanent] reading the report rows failed: the database refused a value: datetime_field_overflow (22008)',
        file_key: null,
      });
      const job = await db('jobs').where({ kind: 'report-generate', subject_id: row.id }).first();
      expect(job).to.include({ status: 'failed_permanent', attempts: 1, error_class: 'permanent' });
      expect(job.last_error).to.not.match(/select|uploads|::date/i);
      const refused = await createReport(db, { type: 'uploads', params, creator: 't' }, { config }).catch((e: unknown) => e);
      expect(refused).to.be.instanceOf(ReportInputError).and.to.include({ field: 'params.from' });
    });

    it('fails a report of a type this worker does not know', async () => {
      const { db } = t.get();
      const row = (await insertRunningReport(db, { creator: 't', reportType: 'payroll', paramsHash: '0'.repeat(64), params: {}, timeoutMs: 60_000 }))!;
      await db.raw(`INSERT INTO jobs (kind, payload) VALUES ('report-generate', ?::jsonb)`, [JSON.stringify({ reportId: row.id })]);
      await runJobs();
      expect(await reload(row)).to.include({ status: 'fail', error_message: 'unknown report type "payroll": this worker cannot generate it' });
    });
  });
});
