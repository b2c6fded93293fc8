import { expect } from 'chai';
import { completeReport, insertRunningReport } from '../../src/reports/store.js';
import { runHerald, type CliResult } from '../helpers/cli.js';
import { urlFor, useTestDb } from '../helpers/db.js';
import { closedPort } from '../helpers/ports.js';

// What an operator sees when a service Herald needs is not there: one line
// on stderr naming the service, where it was looked for, the setting and
// the fix; no driver stack frames, nothing on stdout (a --json reader gets
// no half output), exit code 1.

function expectOneLine(r: CliResult, line: string | RegExp): void {
  expect(r.code, r.stderr).to.equal(1);
  expect(r.stdout).to.equal('');
  expect(r.stderr).to.not.match(/\n\s+at /);
  expect(r.stderr.split('\n')).to.have.length(2); // the line and its newline
  if (typeof line === 'string') expect(r.stderr).to.equal(`${line}\n`);
  else expect(r.stderr).to.match(line);
}

describe('cli errors: unreachable services in one line', function () {
  this.timeout(600_000);
  const t = useTestDb(import.meta.url);
  const quiet = { LOG_LEVEL: 'error', REDIS_URL: undefined, S3_ENDPOINT: undefined, S3_BUCKET: undefined };

  it('names Postgres, its address and DATABASE_URL: refused, no such database, login refused, unknown host', async () => {
    const port = await closedPort();
    const refused = await runHerald(['queue', 'status', '--json'], { env: { ...quiet, DATABASE_URL: `postgres://postgres@127.0.0.1:${port}/herald` } });
    expectOneLine(refused, `herald: cannot reach Postgres at 127.0.0.1:${port} (DATABASE_URL): connection refused — start it or fix DATABASE_URL`);

    const server = new URL(t.get().url);
    const noDb = await runHerald(['queue', 'status'], { env: { ...quiet, DATABASE_URL: urlFor('herald_no_such_database') } });
    expectOneLine(noDb, `herald: Postgres at ${server.host} (DATABASE_URL): database "herald_no_such_database" does not exist — create it (createdb) or fix the database name in DATABASE_URL`);

    const role = new URL(t.get().url);
    role.username = 'herald_no_such_role';
    const login = await runHerald(['workbaskets', 'list'], { env: { ...quiet, DATABASE_URL: role.toString() } });
    expectOneLine(login, `herald: Postgres at ${server.host} (DATABASE_URL) refused the login: role "herald_no_such_role" does not exist — fix the user or password in DATABASE_URL`);

    const host = await runHerald(['queue', 'status'], { env: { ...quiet, DATABASE_URL: 'postgres://postgres@herald-no-such-host.invalid:5432/herald' } });
    // No DNS here may also mean a failed lookup rather than "no such host".
    expectOneLine(host, /^herald: cannot reach Postgres at herald-no-such-host\.invalid:5432 \(DATABASE_URL\): (host not found — fix the host in DATABASE_URL|host name lookup failed \(DNS\) — fix the host in DATABASE_URL)\n$/);
  });

  it('names Redis and REDIS_URL when a worker cannot reach it', async () => {
    const port = await closedPort();
    const r = await runHerald(['worker', '--grace', '0'], { env: { ...quiet, DATABASE_URL: t.get().url, REDIS_URL: `redis://127.0.0.1:${port}` } });
    expectOneLine(r, `herald: worker could not start: cannot reach Redis at 127.0.0.1:${port} (REDIS_URL): connection refused — start it or fix REDIS_URL`);
  });

  it('names S3 and S3_ENDPOINT when a report file cannot be fetched', async () => {
    const { db } = t.get();
    const running = await insertRunningReport(db, { creator: 'cli:test', reportType: 'uploads', paramsHash: 'a'.repeat(64), params: {}, timeoutMs: 60_000 });
    await completeReport(db, running!.id, { fileKey: 'reports/x.csv', fileName: 'x.csv', fileSize: 10, rowCount: 1 });
    const port = await closedPort();
    const r = await runHerald(['report', 'download', running!.id, '--out', '/dev/null'], {
      env: {
        ...quiet, DATABASE_URL: t.get().url, S3_ENDPOINT: `http://127.0.0.1:${port}`, S3_BUCKET: 'herald-test',
        S3_ACCESS_KEY_ID: 'k', S3_SECRET_ACCESS_KEY: 's', S3_FORCE_PATH_STYLE: 'true',
      },
    });
    expectOneLine(r, `herald: cannot reach S3 at 127.0.0.1:${port} (S3_ENDPOINT): connection refused — start it or fix S3_ENDPOINT`);
  });

  it('keeps the stack for HERALD_DEBUG=1', async () => {
    const port = await closedPort();
    const r = await runHerald(['queue', 'status'], { env: { ...quiet, HERALD_DEBUG: '1', DATABASE_URL: `postgres://postgres@127.0.0.1:${port}/herald` } });
    expect(r.code).to.equal(1);
    expect(r.stderr.split('\n')[0]).to.equal(`herald: cannot reach Postgres at 127.0.0.1:${port} (DATABASE_URL): connection refused — start it or fix DATABASE_URL`);
    expect(r.stderr).to.match(/\n\s+at /);
  });
});
