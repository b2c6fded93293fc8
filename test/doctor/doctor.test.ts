import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { SMTPServer } from 'smtp-server';
import { doctor } from '../../src/doctor/run.js';
import type { CheckResult } from '../../src/doctor/check.js';
import { hmrcSandbox, startSandboxes, type StartedSandboxes } from '../../src/sandbox/sandboxes.js';
import { runHerald } from '../helpers/cli.js';
import { useTestDb } from '../helpers/db.js';
import { closedPort, silentServer } from '../helpers/ports.js';
import { REDIS_URL } from '../helpers/redis.js';

// herald doctor against real services: the test database, the machine's
// Redis, Herald's S3 / HMRC / PAC / invoicing-API stand-ins and an SMTP
// server in this process; and against the same settings pointing at closed
// ports (a port bound on 0 and closed again), where every check must fail
// with a fix naming the setting.

const OPTS = { workers: 1, servers: 1, timeout: 10_000 };
const SERVICE_CHECKS = ['postgres', 'migrations', 'connections', 'redis', 's3', 'hmrc', 'provider-pac', 'provider-invoicing', 'smtp', 'xsd-validator'];

function byName(results: CheckResult[]): Record<string, CheckResult> {
  return Object.fromEntries(results.map((r) => [r.name, r]));
}

describe('doctor (herald doctor)', function () {
  this.timeout(180_000);
  const t = useTestDb(import.meta.url);
  let dir: string;
  let sandboxes: StartedSandboxes;
  let smtp: SMTPServer;
  let smtpPort: number;
  let upEnv: Record<string, string>;

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'herald-doctor-'));
    sandboxes = await startSandboxes({ dataDir: dir });
    smtp = new SMTPServer({ authOptional: true, disabledCommands: ['STARTTLS'], logger: false });
    await new Promise<void>((resolve) => smtp.listen(0, '127.0.0.1', resolve));
    smtpPort = (smtp.server.address() as { port: number }).port;
    upEnv = {
      ...sandboxes.env,
      DATABASE_URL: t.get().url,
      REDIS_URL,
      SMTP_URL: `smtp://127.0.0.1:${smtpPort}`,
      MAIL_FAILURES_TO: 'ops@example.test',
      LOG_LEVEL: 'silent',
    };
  });
  after(async () => {
    await new Promise<void>((resolve) => smtp.close(() => resolve()));
    await sandboxes.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  async function downEnv(): Promise<Record<string, string>> {
    const port = await closedPort();
    const at = `127.0.0.1:${port}`;
    return {
      ...upEnv,
      DATABASE_URL: `postgres://postgres@${at}/herald`,
      REDIS_URL: `redis://${at}`,
      S3_ENDPOINT: `http://${at}`,
      HMRC_BASE_URL: `http://${at}/`,
      HMRC_TOKEN_URL: `http://${at}/oauth/token`,
      PROVIDER_PAC_BASE_URL: `http://${at}`,
      PROVIDER_INVOICING_BASE_URL: `http://${at}`,
      SMTP_URL: `smtp://${at}`,
    };
  }

  it('passes every check when each service is up, and leaves no probe object in the bucket', async () => {
    const results = byName(await doctor(OPTS, upEnv));
    for (const name of ['configuration', ...SERVICE_CHECKS]) expect(results[name]?.status, `${name}: ${results[name]?.detail}`).to.equal('ok');
    expect(results.postgres!.detail).to.match(/^PostgreSQL \d+/);
    expect(results.migrations!.detail).to.match(/^\d+ applied, none pending$/);
    expect(results.connections!.detail).to.contain('Herald needs 28: 1 worker(s) x 15 (JOBS_CONCURRENCY 10 + 4 pool + 1 LISTEN) + 1 serve x 10 + 3 for commands');
    expect(results.redis!.detail).to.match(/PING PONG$/);
    expect(results.s3!.detail).to.contain('put, head and delete of doctor/');
    expect(results.hmrc!.detail).to.contain(`issued a token to ${upEnv.HMRC_CLIENT_ID}`);
    expect(results.smtp!.detail).to.contain('answered EHLO; failure mails go to ops@example.test');
    expect(results['xsd-validator']!.detail).to.match(/^xmllint \(libxml \d+\) validates envelopes/);
    // The probe was deleted: the sandbox's bucket directory holds nothing under doctor/.
    const bucketDir = path.join(dir, 's3', upEnv.S3_BUCKET!);
    const leftovers = fs.existsSync(bucketDir) ? fs.readdirSync(bucketDir, { recursive: true }).map(String).filter((f) => f.includes('probe-')) : [];
    expect(leftovers).to.deep.equal([]);
    // The HMRC stand-in granted one token and was sent no notification.
    const hmrc = sandboxes.handle(hmrcSandbox);
    expect([hmrc.tokenGrants(), hmrc.notifications().length]).to.deep.equal([1, 0]);
  });

  it('fails every service check when its port is closed, naming the address and the setting to fix', async () => {
    const env = await downEnv();
    const port = new URL(env.REDIS_URL!).port;
    const results = byName(await doctor(OPTS, env));
    expect(results.configuration!.status).to.equal('ok');
    const expected: Record<string, string> = {
      postgres: 'DATABASE_URL', redis: 'REDIS_URL', s3: 'S3_ENDPOINT', hmrc: 'HMRC_TOKEN_URL',
      'provider-pac': 'PROVIDER_PAC_BASE_URL', 'provider-invoicing': 'PROVIDER_INVOICING_BASE_URL', smtp: 'SMTP_URL',
    };
    for (const [name, setting] of Object.entries(expected)) {
      const r = results[name]!;
      expect([r.status, r.detail, r.fix], name).to.deep.equal(['fail', `127.0.0.1:${port}: connection refused`, `start it or fix ${setting}`]);
    }
    // What needs Postgres cannot be checked without it.
    expect([results.migrations!.status, results.connections!.status]).to.deep.equal(['skip', 'skip']);
  });

  it('reports pending migrations and ones this code does not know, with what to run', async () => {
    const { db } = t.get();
    const [last] = (await db.raw(`SELECT id, name, batch, migration_time FROM knex_migrations ORDER BY id DESC LIMIT 1`)).rows;
    await db.raw(`DELETE FROM knex_migrations WHERE id = ?`, [last.id]);
    try {
      const pending = byName(await doctor(OPTS, upEnv)).migrations!;
      expect([pending.status, pending.detail, pending.fix]).to.deep.equal(['fail', `1 pending: ${last.name}`, 'run `herald migrate`']);
      await db.raw(`INSERT INTO knex_migrations (name, batch, migration_time) VALUES (?, ?, ?), ('9999_from_a_newer_herald', 99, now())`, [last.name, last.batch, last.migration_time]);
      const newer = byName(await doctor(OPTS, upEnv)).migrations!;
      expect(newer.status).to.equal('fail');
      expect(newer.detail).to.equal('the database has migrations this Herald does not know: 9999_from_a_newer_herald');
    } finally {
      await db.raw(`DELETE FROM knex_migrations WHERE name = '9999_from_a_newer_herald'`);
      if ((await db.raw(`SELECT 1 FROM knex_migrations WHERE name = ?`, [last.name])).rows.length === 0) {
        await db.raw(`INSERT INTO knex_migrations (name, batch, migration_time) VALUES (?, ?, ?)`, [last.name, last.batch, last.migration_time]);
      }
    }
  });

  it('fails max_connections when the workers asked for would not fit, saying how high to raise it', async () => {
    const { db } = t.get();
    const [server] = (await db.raw(
      `SELECT current_setting('max_connections')::int AS max,
              current_setting('superuser_reserved_connections')::int + coalesce(nullif(current_setting('reserved_connections', true), '')::int, 0) AS reserved`,
    )).rows;
    const workers = Math.ceil(server.max / 15) + 1;
    const fits = byName(await doctor(OPTS, upEnv)).connections!;
    expect(fits.status, fits.detail).to.equal('ok');
    const r = byName(await doctor({ ...OPTS, workers }, { ...upEnv, JOBS_CONCURRENCY: '10' })).connections!;
    const needed = workers * 15 + 10 + 3;
    expect(r.status).to.equal('fail');
    expect(r.detail).to.contain(`Herald needs ${needed}: ${workers} worker(s) x 15`);
    expect(r.fix).to.equal(`raise max_connections to at least ${needed + server.reserved} (postgresql.conf, then restart), or lower JOBS_CONCURRENCY / --workers`);
  });

  it('gives up on a service that accepts the connection and never answers, after --timeout', async () => {
    const hung = await silentServer();
    try {
      const results = byName(await doctor({ ...OPTS, timeout: 500 }, { ...upEnv, REDIS_URL: `redis://127.0.0.1:${hung.port}`, SMTP_URL: `smtp://127.0.0.1:${hung.port}` }));
      for (const name of ['redis', 'smtp']) {
        expect(results[name]!.status, name).to.equal('fail');
        expect(results[name]!.detail, name).to.match(/no answer within 500 ms|timed out|timeout/i);
      }
      expect(results.postgres!.status, 'the other checks are not held up').to.equal('ok');
    } finally {
      await hung.close();
    }
  });

  it('lists every invalid setting and skips the service checks', async () => {
    const results = await doctor(OPTS, { ...upEnv, REDIS_URL: 'not a url', JOBS_CONCURRENCY: 'many' });
    expect(results[0]).to.include({ name: 'configuration', status: 'fail' });
    expect(results[0]!.detail).to.contain('REDIS_URL: must be a URL').and.to.contain('JOBS_CONCURRENCY: must be a whole number');
    expect(results.slice(1).map((r) => [r.name, r.status])).to.deep.equal(SERVICE_CHECKS.map((n) => [n, 'skip']));
  });

  it('says which XSD validator exports will use, and what to install when xmllint is missing', async () => {
    const base = { DATABASE_URL: t.get().url, LOG_LEVEL: 'silent' };
    const wasm = byName(await doctor(OPTS, { ...base, EXPORTER_XSD_VALIDATOR: 'wasm' }))['xsd-validator']!;
    expect([wasm.status, wasm.detail]).to.deep.equal(['ok', 'libxml2-wasm in a worker thread validates envelopes (EXPORTER_XSD_VALIDATOR=wasm)']);
    const saved = process.env.PATH;
    process.env.PATH = dir; // no xmllint there
    try {
      const auto = byName(await doctor(OPTS, base))['xsd-validator']!;
      expect(auto.status).to.equal('skip');
      expect(auto.detail).to.match(/^xmllint not found: exports fall back to libxml2-wasm/);
      expect(auto.fix).to.contain('apt-get install libxml2-utils');
      const forced = byName(await doctor(OPTS, { ...base, EXPORTER_XSD_VALIDATOR: 'xmllint' }))['xsd-validator']!;
      expect([forced.status, forced.detail]).to.deep.equal(['fail', 'xmllint not found on PATH: install it (Debian/Ubuntu: apt-get install libxml2-utils) or set EXPORTER_XSD_VALIDATOR=wasm']);
    } finally {
      process.env.PATH = saved;
    }
  });

  it('skips what is not configured, saying what that means', async () => {
    const results = byName(await doctor(OPTS, { DATABASE_URL: t.get().url, LOG_LEVEL: 'silent' }));
    for (const name of ['redis', 's3', 'hmrc', 'provider-pac', 'provider-invoicing', 'smtp']) expect(results[name]!.status, name).to.equal('skip');
    expect(results.redis!.detail).to.contain('REDIS_URL unset');
  });

  it('as a command: prints the table and exits 0 when all is well; --json and exit 1 when something fails', async () => {
    const up = await runHerald(['doctor'], { env: upEnv });
    expect(up.code, up.stderr).to.equal(0);
    expect(up.stdout).to.match(/^OK +configuration /m).and.to.match(/^OK +s3 /m).and.to.contain('\nno problems found\n');

    const env = await downEnv();
    const down = await runHerald(['doctor', '--json', '--timeout', '5000'], { env: { ...env, S3_BUCKET: undefined } });
    expect(down.code).to.equal(1);
    expect(down.stderr).to.equal('');
    const report = JSON.parse(down.stdout) as { ok: boolean; checks: CheckResult[] };
    expect(report.ok).to.equal(false);
    expect(report.checks.map((c) => c.name)).to.deep.equal(['configuration', ...SERVICE_CHECKS]);
    const s3 = report.checks.find((c) => c.name === 's3')!;
    expect(s3).to.include({ status: 'skip', fix: 'set S3_BUCKET (and S3_ENDPOINT for an S3-compatible server)' });
    expect(report.checks.find((c) => c.name === 'postgres')).to.include({ status: 'fail', fix: 'start it or fix DATABASE_URL' });

    const bad = await runHerald(['doctor', '--workers', 'lots'], { env: upEnv });
    expect(bad.code).to.equal(1);
    expect(bad.stderr.split('\n')[0]).to.equal('error: option \'--workers <n>\' argument \'lots\' is invalid. --workers: must be a whole number from 0 to 1000, got "lots"');
  });
});
