import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { SMTPServer } from 'smtp-server';
import { useTestDb } from '../helpers/db.js';
import { REDIS_URL, quietLog, redisPrefix, waitFor, wipeRedisPrefix } from '../jobs/support.js';
import { enqueueJob } from '../../src/jobs/store/enqueue.js';
import { getJob } from '../../src/jobs/store/runs.js';
import type { JobRow } from '../../src/jobs/contract/types.js';
import { createMailServices, failureMailHook, failureMailJob, queueFailureMail } from '../../src/mail/jobs.js';
import { listFailureMails } from '../../src/mail/store.js';

// Failure mails against a real SMTP server (smtp-server, in this process),
// real Postgres and real worker processes racing over Redis.

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const WORKER = 'test/mail/fixtures/worker-process.ts';

interface Received {
  to: string[];
  raw: string;
}

async function startSmtp(): Promise<{ url: string; received: Received[]; close(): Promise<void> }> {
  const received: Received[] = [];
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS'],
    logger: false,
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        received.push({ to: session.envelope.rcptTo.map((r) => r.address), raw: Buffer.concat(chunks).toString('utf8') });
        callback();
      });
    },
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.server.address() as { port: number }).port;
  return { url: `smtp://127.0.0.1:${port}`, received, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

function spawnWorker(databaseUrl: string, prefix: string, smtpUrl: string): { child: ChildProcess; ready: Promise<void> } {
  const child = spawn(process.execPath, ['--import', 'tsx', WORKER, databaseUrl, REDIS_URL, prefix, smtpUrl], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
  const ready = new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => String(d).includes('ready') && resolve());
    child.once('exit', () => reject(new Error('worker exited before it was ready')));
  });
  return { child, ready };
}

function header(raw: string, name: string): string | undefined {
  return raw.match(new RegExp(`^${name}: (.*(?:\\r?\\n[ \\t].*)*)`, 'mi'))?.[1]?.replace(/\r?\n[ \t]/g, ' ');
}

describe('failure mail', () => {
  const t = useTestDb(import.meta.url);
  const prefix = redisPrefix(import.meta.url);
  let smtp: Awaited<ReturnType<typeof startSmtp>>;
  const workers: ChildProcess[] = [];

  before(async () => {
    smtp = await startSmtp();
  });
  after(async () => {
    for (const w of workers) if (w.exitCode === null) w.kill('SIGKILL');
    await smtp.close();
    await wipeRedisPrefix(prefix);
  });
  beforeEach(() => {
    smtp.received.length = 0;
  });

  it('sends exactly one mail per permanently failed job while two worker processes race over the jobs', async function () {
    this.timeout(90_000);
    const { db, url } = t.get();
    const ws = [spawnWorker(url, prefix, smtp.url), spawnWorker(url, prefix, smtp.url)];
    workers.push(...ws.map((w) => w.child));
    await Promise.all(ws.map((w) => w.ready));
    const N = 12;
    const ids: number[] = [];
    for (let n = 1; n <= N; n++) ids.push((await enqueueJob(db, 'test-doomed', { n }, { subjectType: 'invoice_request', subjectId: `order-${n}` })).id);
    await waitFor('a mail for every failed job', async () => {
      const { rows } = await db.raw(`SELECT count(*)::int AS n FROM failure_mails WHERE status = 'sent'`);
      return rows[0].n >= N;
    }, 60_000, 100);
    // Give a duplicate time to show up if one were on its way.
    await new Promise((r) => setTimeout(r, 1500));
    for (const w of workers.splice(0)) w.kill('SIGTERM');

    expect(smtp.received, 'one mail per failed job, no more').to.have.length(N);
    const subjects = smtp.received.map((m) => header(m.raw, 'Subject') ?? '');
    for (const [i, id] of ids.entries()) {
      const matching = subjects.filter((s) => s.includes(`(job ${id})`));
      expect(matching, `mails about job ${id}`).to.have.length(1);
      expect(matching[0]).to.include(`invoice_request order-${i + 1}`);
    }
    const one = smtp.received.find((m) => (header(m.raw, 'Subject') ?? '').includes(`(job ${ids[0]})`))!;
    expect(one.to).to.deep.equal(['ops@example.test']);
    expect(one.raw).to.include('Attempts:    1');
    expect(one.raw).to.include('400: document 1 refused');
    expect(one.raw, 'the next step for a permanent error').to.include('The request itself was refused');
    const mails = await listFailureMails(db);
    expect(mails.filter((m) => m.status === 'sent')).to.have.length(N);
    expect(new Set(mails.map((m) => Number(m.job_id)))).to.have.property('size', N);
  });

  it('sends one mail when the same failure is queued twice and two senders run at once', async () => {
    const { db } = t.get();
    const mail = createMailServices({ enabled: true, smtpUrl: smtp.url, to: ['ops@example.test'], from: 'herald@example.test', timeoutMs: 5000 });
    const sendFailureMail = failureMailJob(() => mail);
    const { id } = await enqueueJob(db, 'test-doomed', { n: 99 }, { subjectType: 'upload', subjectId: 7 });
    await db.raw(`UPDATE jobs SET status = 'failed_permanent', finished_at = now(), attempts = 3, last_error = 'HMRC said 401', error_class = 'auth' WHERE id = ?`, [id]);
    const job = (await getJob(db, id)) as JobRow;
    const first = await db.transaction((trx) => queueFailureMail(trx, job));
    const second = await db.transaction((trx) => queueFailureMail(trx, job));
    expect(first).to.be.a('number');
    expect(second, 'the marker row is unique per failure').to.equal(null);
    const ctx = { db, log: quietLog, signal: new AbortController().signal, job, now: () => new Date() };
    await Promise.all([sendFailureMail.run({ failureMailId: first! }, ctx), sendFailureMail.run({ failureMailId: first! }, ctx)]);
    expect(smtp.received).to.have.length(1);
    expect(smtp.received[0]!.raw).to.include('Credentials were rejected');
    expect(header(smtp.received[0]!.raw, 'Subject')).to.include('upload 7');
  });

  it('sends nothing when failure mails are switched off', async () => {
    const { db } = t.get();
    const { id } = await enqueueJob(db, 'test-doomed', { n: 100 });
    await db.raw(`UPDATE jobs SET status = 'failed_permanent', finished_at = now(), attempts = 1 WHERE id = ?`, [id]);
    const job = (await getJob(db, id)) as JobRow;
    const hook = failureMailHook({ settings: { enabled: false, smtpUrl: smtp.url, to: ['ops@example.test'], from: 'h@example.test' } });
    await db.transaction((trx) => hook(job, { db: trx }));
    expect(await listFailureMails(db, { jobId: id })).to.have.length(0);
    const { rows } = await db.raw(`SELECT count(*)::int AS n FROM jobs WHERE kind = 'send-failure-mail' AND subject_id = ?`, [String(id)]);
    expect(rows[0].n).to.equal(0);
  });
});
