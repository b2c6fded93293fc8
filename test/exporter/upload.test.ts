import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import pino from 'pino';
import { useTestDb } from '../helpers/db.js';
import { startExporterEnv, readyWorkbasket, bucketContents, type ExporterEnv } from './support.js';
import { definitionsWith } from '../helpers/wiring.js';
import { expectEnqueued } from '../helpers/jobs.js';
import { runJobsInline } from '../../src/jobs/runtime/inline.js';
import { countJobs, listJobAttempts, listJobs } from '../../src/jobs/store/admin.js';
import { runUploadWorkbaskets } from '../../src/exporter/upload.js';
import { getUpload } from '../../src/exporter/store.js';
import { startTcpProxy } from '../../src/sandbox/tcp-proxy.js';

// The upload pipeline run in-process (inline runner) against the real
// Postgres, the local S3 server through the real SDK, and the HMRC stand-in.
// Time is a fake clock so backoff waits take no real time.

const log = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });

// Starts at the real time: rows are scheduled by the database's now().
function fakeClock() {
  let t = Date.now();
  return { now: () => new Date(t), sleep: async (ms: number) => void (t += ms), advance: (ms: number) => void (t += ms) };
}

describe('exporter upload pipeline (inline)', () => {
  const t = useTestDb(import.meta.url);
  let env: ExporterEnv;

  beforeEach(async () => {
    env = await startExporterEnv(t.get().url);
    await t.get().db.raw('TRUNCATE uploads, envelope_transactions, envelopes, records, transactions, workbaskets, job_attempts, jobs RESTART IDENTITY CASCADE');
  });
  afterEach(async () => {
    await env.close();
  });

  async function run(extra: Record<string, string> = {}, clock = fakeClock()) {
    return runJobsInline(t.get().db, definitionsWith({ exporter: env.services(extra) }), { until: 'idle', waitForRetriesMs: 24 * 3600_000, now: clock.now, sleep: clock.sleep, log });
  }

  it('schedules an upload when a workbasket becomes READY_FOR_EXPORT by plain SQL', async () => {
    const { db } = t.get();
    const [{ id }] = await db('workbaskets').insert({ title: 'plain sql' }).returning('id');
    expect(await countJobs(db)).to.deep.equal([]);
    await db.raw(`UPDATE workbaskets SET status = 'READY_FOR_EXPORT' WHERE id = ?`, [id]);
    await expectEnqueued(db, 'upload-workbaskets', { subjectType: 'workbasket', subjectId: id, status: 'pending' });
    await db.raw(`UPDATE workbaskets SET title = 'renamed' WHERE id = ?`, [id]);
    // A change that is not a status change schedules nothing.
    await expectEnqueued(db, 'upload-workbaskets');
  });

  it('puts every envelope in S3 once, notifies HMRC once per upload, and moves workbaskets to SENT', async () => {
    const { db } = t.get();
    const a = await readyWorkbasket(db, 30, { sidBase: 1000, descriptionBytes: 400 });
    const b = await readyWorkbasket(db, 30, { sidBase: 2000, descriptionBytes: 400 });
    // Small envelopes so the run makes several: tamato fails with more than one.
    await run({ EXPORTER_MAX_ENVELOPE_SIZE: '20000' });

    const envelopes = await db('envelopes').orderBy('id');
    expect(envelopes.length).to.be.greaterThan(2);
    expect(envelopes.map((e) => e.counter)).to.deep.equal(envelopes.map((_, i) => i + 1));
    const uploads = await db('uploads').orderBy('id');
    expect(uploads).to.have.length(envelopes.length);

    const objects = await bucketContents(env.config());
    expect([...objects.keys()].sort()).to.deep.equal(envelopes.map((e) => `tohmrc/staging/DIT${e.envelope_id}.xml`).sort());
    for (const e of envelopes) expect(objects.get(`tohmrc/staging/DIT${e.envelope_id}.xml`), `md5 of ${e.envelope_id}`).to.equal(e.md5);

    const notes = env.hmrc.notifications();
    expect(notes).to.have.length(uploads.length);
    for (const u of uploads) {
      const n = notes.find((x) => x.correlationID === u.correlation_id);
      expect(n, `notification of upload ${u.id}`).to.deep.equal({
        informationType: 'EDM',
        correlationID: u.correlation_id,
        file: { fileName: u.file_name, fileSize: Number(u.file_size), checksum: u.checksum, checksumAlgorithm: 'MD5' },
      });
      expect(u.uploaded_at).to.be.instanceOf(Date);
      expect(u.notification_sent).to.be.instanceOf(Date);
    }
    const statuses = await db('workbaskets').whereIn('id', [a, b]).pluck('status');
    expect(statuses).to.deep.equal(['SENT', 'SENT']);
    const puts = env.s3.requests().filter((r) => r.method === 'PUT' && r.path.includes('DIT'));
    expect(puts, 'one PUT per envelope').to.have.length(envelopes.length);
  });

  it('retries HMRC 500 three times, then records the notification once 204 comes', async () => {
    const { db } = t.get();
    await readyWorkbasket(db, 3);
    env.hmrc.inject({ type: 'status', status: 500, body: { code: 'SERVER_ERROR' }, match: 'notify', times: 3 });
    await run();
    const [job] = await expectEnqueued(db, 'notify-hmrc');
    expect(job).to.include({ status: 'completed', attempts: 4 });
    const notifyCalls = env.hmrc.requests().filter((r) => r.route === 'notify');
    expect(notifyCalls.map((r) => r.status)).to.deep.equal([500, 500, 500, 204]);
    const ids = new Set(notifyCalls.map((r) => (r.body as { correlationID: string }).correlationID));
    expect(ids.size, 'every attempt carried the same correlation id').to.equal(1);
    expect(env.s3.requests().filter((r) => r.method === 'PUT' && r.path.includes('DIT')), 'no re-upload').to.have.length(1);
  });

  it('fails a notification permanently on HMRC 400, keeping the body, and never uploads again', async () => {
    const { db } = t.get();
    await readyWorkbasket(db, 2);
    env.hmrc.inject({ type: 'status', status: 400, body: { code: 'INVALID_SRN', message: 'unknown SRN' }, match: 'notify', times: 1 });
    await run();
    const [job] = await expectEnqueued(db, 'notify-hmrc');
    expect(job!.status).to.equal('failed_permanent');
    expect(job!.error_class).to.equal('permanent');
    expect(job!.last_error).to.contain('INVALID_SRN');
    const [upload] = await db('uploads');
    expect(upload.uploaded_at).to.be.instanceOf(Date);
    expect(upload.notification_sent).to.equal(null);
    expect(env.s3.requests().filter((r) => r.method === 'PUT' && r.path.includes('DIT'))).to.have.length(1);
  });

  it('retries the S3 put while S3 answers 500, then uploads the same bytes', async () => {
    const { db } = t.get();
    await readyWorkbasket(db, 5);
    env.s3.inject({ type: 'status', status: 500, code: 'InternalError', match: 'PUT', times: 4 });
    await run();
    const [job] = await expectEnqueued(db, 'upload-envelope');
    expect(job).to.include({ status: 'completed' });
    expect(job!.attempts).to.be.greaterThan(1);
    const [envelope] = await db('envelopes');
    const objects = await bucketContents(env.config());
    expect(objects.get(`tohmrc/staging/DIT${envelope.envelope_id}.xml`)).to.equal(envelope.md5);
    expect(env.hmrc.notifications()).to.have.length(1);
  });

  it('keeps retrying while S3 is unreachable for a while, then uploads once it is back', async () => {
    const { db } = t.get();
    await readyWorkbasket(db, 4);
    const target = new URL(env.s3.url);
    const proxy = await startTcpProxy({ target: { host: target.hostname, port: Number(target.port) } });
    try {
      await proxy.down();
      const clock = fakeClock();
      let slept = 0;
      // S3 comes back after 20 minutes of (fake) retrying.
      const sleep = async (ms: number) => {
        slept += ms;
        await clock.sleep(ms);
        if (slept > 20 * 60_000 && !proxy.isUp()) await proxy.up();
      };
      await runJobsInline(db, definitionsWith({ exporter: env.services({ S3_ENDPOINT: proxy.url }) }), { until: 'idle', waitForRetriesMs: 24 * 3600_000, now: clock.now, sleep, log });
      const [job] = await expectEnqueued(db, 'upload-envelope');
      expect(job).to.include({ status: 'completed' });
      expect(job!.attempts, 'failed while S3 was down, then succeeded').to.be.greaterThan(2);
      const [envelope] = await db('envelopes');
      expect((await bucketContents(env.config())).get(`tohmrc/staging/DIT${envelope.envelope_id}.xml`)).to.equal(envelope.md5);
      expect(env.hmrc.notifications()).to.have.length(1);
    } finally {
      await proxy.close();
    }
  });

  it('holds notifications while the kill switch is off and sends them once it is on', async () => {
    const { db } = t.get();
    await readyWorkbasket(db, 2);
    const clock = fakeClock();
    const notificationsOff = definitionsWith({ exporter: env.services({ HMRC_NOTIFICATIONS_ENABLED: 'false' }) });
    // Waits under a second are slept through (rows are stamped by the database clock); the 60 s snooze is not.
    await runJobsInline(db, notificationsOff, { until: 'idle', waitForRetriesMs: 1000, now: clock.now, sleep: clock.sleep, log });
    expect(env.hmrc.requests(), 'no call to HMRC at all').to.have.length(0);
    const [waiting] = await expectEnqueued(db, 'notify-hmrc');
    expect(waiting).to.include({ status: 'pending', attempts: 0 });
    const [upload] = await db('uploads');
    expect(upload.uploaded_at).to.be.instanceOf(Date);

    clock.advance(5 * 60_000);
    await run({}, clock);
    expect(env.hmrc.notifications()).to.have.length(1);
    expect((await getUpload(db, upload.id))!.notification_sent).to.be.instanceOf(Date);
  });

  it('stores nothing and uploads nothing when an envelope fails validation', async () => {
    const { db } = t.get();
    const id = await readyWorkbasket(db, 2);
    // Bypass import checks: a value the schema refuses (footnote type ids are 2-3 letters).
    await db.raw(`UPDATE workbaskets SET status = 'EDITING' WHERE id = ?`, [id]);
    await db.raw(`UPDATE records SET fields = jsonb_set(fields, '{footnote.type.id}', '"T1X9"') WHERE id = (SELECT min(id) FROM records)`);
    await db.raw(`UPDATE workbaskets SET status = 'READY_FOR_EXPORT' WHERE id = ?`, [id]);
    await run();
    const jobs = await listJobs(db, { kind: 'upload-workbaskets' });
    expect(jobs.every((j) => j.status === 'failed_permanent')).to.equal(true);
    expect(jobs[0]!.last_error).to.match(/footnote\.type\.id|line \d+/);
    expect(await db('envelopes')).to.have.length(0);
    expect((await bucketContents(env.config())).size).to.equal(0);
    expect(await db('workbaskets').where({ id }).first()).to.include({ status: 'READY_FOR_EXPORT' });
  });

  /** Exports (upload rows and jobs included), then lets `damage` change the rendered file before the upload runs. */
  async function exportThenDamage(damage: (bytes: Buffer) => Buffer) {
    const { db } = t.get();
    await readyWorkbasket(db, 5);
    const services = env.services();
    await runUploadWorkbaskets(db, services, new Date(), log);
    const [upload] = await db('uploads');
    const file = path.join(services.workDir, upload.file_name);
    fs.writeFileSync(file, damage(fs.readFileSync(file)));
    await run();
    const [envelope] = await db('envelopes');
    const objects = await bucketContents(env.config());
    expect(objects.get(`tohmrc/staging/DIT${envelope.envelope_id}.xml`), 'S3 holds the stored envelope').to.equal(envelope.md5);
    expect(env.hmrc.notifications()).to.have.length(1);
    const [job] = await expectEnqueued(db, 'upload-envelope');
    return { job: job!, attempts: await listJobAttempts(db, job!.id) };
  }

  it('puts the stored envelope when the file on disk has its size but other bytes: the put finds out, the retry renders again', async () => {
    const { job, attempts } = await exportThenDamage((bytes) => {
      bytes[bytes.length - 30]! ^= 0x20; // one letter's case: same size, other MD5
      return bytes;
    });
    expect(job).to.include({ status: 'completed', attempts: 2 });
    expect(attempts.map((a) => [a.outcome, a.error_class])).to.deep.equal([
      ['failed', 'transient'],
      ['completed', null],
    ]);
    expect(attempts[0]!.error).to.include('BodyMismatchError');
  });

  it('renders the stored envelope again, without a failed put, when the file on disk has another size', async () => {
    const { job } = await exportThenDamage((bytes) => bytes.subarray(0, bytes.length - 100));
    expect(job).to.include({ status: 'completed', attempts: 1 });
    expect(env.s3.requests().filter((r) => r.method === 'PUT' && r.path.includes('DIT'))).to.have.length(1);
  });
});
