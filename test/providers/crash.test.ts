import { expect } from 'chai';
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { useTestDb } from '../helpers/db.js';
import { issueInvoices, PROVIDER_TABLES, startProviderEnv, waitFor, type ProviderEnv } from './support.js';

// Real `herald worker` processes, SIGKILLed at the named crash points of
// submission and polling: before the POST (submit_started_at recorded),
// after the PAC answered the POST but before Herald recorded it, and in the
// middle of a poll (status read, not yet stored). A fresh worker must finish
// everything: each invoice submitted to the PAC exactly once (counted by the
// stand-in per idempotency key), each DGI_AUTHORIZED with exactly one PDF.

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

interface Worker {
  child: ChildProcess;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

describe('provider crash safety (SIGKILL)', function () {
  this.timeout(120_000);
  const t = useTestDb(import.meta.url);
  let env: ProviderEnv;
  const live: Worker[] = [];
  let run = 0;

  function spawnWorker(crashAt = ''): Worker {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'worker', '--concurrency', '4', '--grace', '500'], {
      cwd: ROOT,
      env: {
        ...process.env,
        ...env.env,
        REDIS_URL,
        // One prefix per test: no bell of an earlier test can linger.
        REDIS_PREFIX: `herald-providers-crash-${process.pid}-${run}`,
        HERALD_CRASH_AT: crashAt,
        // Short timeouts so the sweeper calls a dead worker's job stuck within seconds.
        PROVIDER_API_TIMEOUT_MS: '700',
        S3_TIMEOUT_MS: '1000',
        PROVIDER_POLL_INTERVAL_MS: '200',
        JOBS_SWEEP_INTERVAL_MS: '200',
      },
      stdio: ['ignore', 'ignore', process.env.TEST_LOG_LEVEL ? 'inherit' : 'ignore'],
    });
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
    const w = { child, exited };
    live.push(w);
    return w;
  }

  beforeEach(async () => {
    run += 1;
    env = await startProviderEnv(t.get().url, { pacAfterMs: 300, dgiAfterMs: 600 });
    await t.get().db.raw(`TRUNCATE ${PROVIDER_TABLES} RESTART IDENTITY CASCADE`);
  });
  afterEach(async () => {
    for (const w of live.splice(0)) {
      if (w.child.exitCode === null && w.child.signalCode === null) w.child.kill('SIGKILL');
      await w.exited;
    }
    await env.close();
  });

  async function allFinal(ids: number[]): Promise<boolean> {
    const { rows } = await t.get().db.raw(
      `SELECT count(*)::int AS n FROM provider_documents d JOIN provider_attachments a ON a.invoice_id = d.invoice_id
        WHERE d.legal_status = 'DGI_AUTHORIZED' AND d.invoice_id = ANY(?)`,
      [ids],
    );
    return rows[0].n === ids.length;
  }

  async function checkOnceEach(ids: number[]): Promise<void> {
    const { db } = t.get();
    const perKey = new Map<string, number>();
    for (const d of env.pac.documents()) perKey.set(d.externalId, (perKey.get(d.externalId) ?? 0) + 1);
    expect([...perKey.entries()].sort(), 'each invoice submitted exactly once').to.deep.equal(ids.map((i) => [`herald-inv-${i}-invoice`, 1]).sort());
    const docs = await db('provider_documents').orderBy('invoice_id');
    expect(docs.map((d) => [d.invoice_id, d.status, d.legal_status])).to.deep.equal(ids.map((i) => [i, 'submitted', 'DGI_AUTHORIZED']));
    const byProvider = new Map(env.pac.documents().map((d) => [d.externalId, d.id]));
    for (const d of docs) expect(d.provider_document_id, `invoice ${d.invoice_id} recorded the PAC's document`).to.equal(byProvider.get(d.idempotency_key));
    const { rows } = await db.raw(`SELECT count(*)::int AS n, count(DISTINCT invoice_id)::int AS invoices FROM provider_attachments`);
    expect(rows[0]).to.deep.equal({ n: ids.length, invoices: ids.length });
  }

  async function killAt(point: string): Promise<void> {
    const ids = await issueInvoices(t.get().db, 4, 'pac');
    const doomed = spawnWorker(point);
    expect(await doomed.exited, `the worker died at ${point}`).to.deep.equal({ code: null, signal: 'SIGKILL' });
    spawnWorker();
    await waitFor('every invoice final with its PDF', () => allFinal(ids), 90_000);
    await checkOnceEach(ids);
  }

  it('finishes every submission when killed before the POST', async () => {
    await killAt('providers.before-submit-post');
  });

  it('submits nothing twice when killed after the PAC accepted the POST, before Herald recorded it', async () => {
    await killAt('providers.after-submit-post');
    expect(env.pac.requests().filter((r) => r.route === 'lookup').length, 'the next attempt looked the document up').to.be.greaterThan(0);
  });

  it('loses no poll when killed in the middle of a poll', async () => {
    await killAt('providers.mid-poll');
  });
});
