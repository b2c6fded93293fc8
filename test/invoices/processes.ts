import type { ChildProcess } from 'node:child_process';
import { spawnHerald } from '../helpers/cli.js';
import { connectionName } from '../../src/db/index.js';
import type { Knex } from 'knex';
import { expect } from 'chai';

// Real Herald processes for the crash and concurrency tests: `herald worker`
// and `herald serve`, run from source with tsx, killed for real.


export interface Proc {
  child: ChildProcess;
  /** Resolves with the exit code and signal (SIGKILL for a crash point). */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stdout(): string;
  stderr(): string;
}

export function herald(args: string[], env: Record<string, string | undefined>): Proc {
  const child = spawnHerald(args, {
    env: { HERALD_CRASH_AT: undefined, HERALD_CRASH_AFTER: undefined, LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  return { child, exited, stdout: () => out, stderr: () => err };
}

export async function waitFor(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 60_000, proc?: Proc): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${proc ? `\n--- stderr:\n${proc.stderr().slice(-3000)}` : ''}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export async function startWorker(env: Record<string, string | undefined>, concurrency = 4): Promise<Proc> {
  const proc = herald(['worker', '--concurrency', String(concurrency), '--grace', '5000'], env);
  await waitFor('worker started', () => proc.stderr().includes('"worker started"') || proc.child.exitCode !== null, 60_000, proc);
  return proc;
}

export async function startServer(env: Record<string, string | undefined>): Promise<Proc & { url: string }> {
  const proc = herald(['serve', '--port', '0', '--no-worker', '--json'], env);
  await waitFor('server listening', () => proc.stdout().includes('"url"') || proc.child.exitCode !== null, 60_000, proc);
  if (proc.child.exitCode !== null) throw new Error(`herald serve exited:\n${proc.stderr()}`);
  return { ...proc, url: (JSON.parse(proc.stdout()) as { url: string }).url };
}

/** SIGTERM and wait; SIGKILL if it does not stop in time. */
export async function stop(proc: Proc | undefined): Promise<void> {
  if (!proc || proc.child.exitCode !== null || proc.child.signalCode !== null) return;
  proc.child.kill('SIGTERM');
  const timer = setTimeout(() => proc.child.kill('SIGKILL'), 15_000);
  await proc.exited;
  clearTimeout(timer);
}

/**
 * The invariants every crash must leave intact: exactly one invoice per
 * completed request and none for others, numbers 1..n per supplier with no
 * gap or duplicate, every request COMPLETED or FAILED, every job finished.
 */
export async function expectClean(db: Knex, supplierId: number, expectedInvoices: number): Promise<void> {
  const reqs = await db('invoice_requests').select('id', 'status', 'invoice_id');
  const stuck = reqs.filter((r) => r.status !== 'completed' && r.status !== 'failed');
  expect(stuck, 'requests neither COMPLETED nor FAILED').to.deep.equal([]);
  const perRequest = await db.raw(`SELECT request_id, count(*)::int AS n FROM invoices WHERE request_id IS NOT NULL GROUP BY request_id HAVING count(*) <> 1`);
  expect(perRequest.rows, 'requests with more than one invoice').to.deep.equal([]);
  const unlinked = await db.raw(`
    SELECT r.id FROM invoice_requests r LEFT JOIN invoices i ON i.request_id = r.id
     WHERE (r.status = 'completed') <> (i.id IS NOT NULL) OR (r.status = 'completed' AND r.invoice_id <> i.id)`);
  expect(unlinked.rows, 'requests whose status and invoice disagree').to.deep.equal([]);
  const numbers = (await db('invoices').where({ supplier_party_id: supplierId }).orderBy('invoice_number_int').pluck('invoice_number_int')).map(Number);
  expect(numbers.length, 'invoice count').to.equal(expectedInvoices);
  const gaps = numbers.filter((n, i) => n !== i + 1);
  expect(gaps, 'numbers not 1..n').to.deep.equal([]);
  const supplier = await db('parties').where({ id: supplierId }).first();
  expect(Number(supplier.last_invoice_number)).to.equal(expectedInvoices);
  const openJobs = await db('jobs').whereNot({ status: 'completed' }).select('id', 'status', 'last_error');
  expect(openJobs, 'jobs not completed').to.deep.equal([]);
}

/** Backends Postgres holds for a Herald process (named by src/db's connectionName). */
export async function backendsOf(db: Knex, proc: Proc): Promise<number> {
  const { rows } = await db.raw<{ rows: { n: number }[] }>('SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = ?', [connectionName(proc.child.pid!)]);
  return rows[0]!.n;
}

/**
 * Waits until Postgres has ended the backends of a killed process. Until it
 * reads their closed sockets they keep the dead process's locks: a sweep run
 * that moment would find the reaper's advisory lock or the job row taken and
 * skip it.
 */
export async function waitForBackendsGone(db: Knex, proc: Proc): Promise<void> {
  await waitFor(`Postgres to end the backends of pid ${proc.child.pid}`, async () => (await backendsOf(db, proc)) === 0, 30_000);
}
