import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { expect } from 'chai';
import { createS3Storage, s3OptionsFromConfig } from '../../src/storage/s3.js';
import { reportConfig, startS3, type S3Sandbox } from './support.js';

// `herald report` as a user runs it: a real child process on the embedded
// database (PGlite, so the migration and the partial unique index run there
// too), no Redis (generation runs inline), the local S3 server for files.

const run = promisify(execFile);
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

describe('reports.commands (herald report, embedded database)', function () {
  this.timeout(240_000);
  let s3: S3Sandbox;
  let dataDir: string;
  let env: NodeJS.ProcessEnv;

  before(async () => {
    s3 = await startS3();
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'herald-reports-cli-'));
    const config = reportConfig(s3.server);
    const keys = ['S3_ENDPOINT', 'S3_BUCKET', 'S3_ACCESS_KEY_ID', 'S3_SECRET_ACCESS_KEY', 'S3_FORCE_PATH_STYLE', 'S3_CHECKSUM_WHEN_REQUIRED'] as const;
    const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !['DATABASE_URL', 'REDIS_URL', 'HERALD_CRASH_AT'].includes(k)));
    env = { ...base, ...Object.fromEntries(keys.map((k) => [k, String(config[k])])), HERALD_DATA_DIR: dataDir, LOG_LEVEL: 'silent' };
  });
  after(async () => {
    await s3.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  const herald = async (...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> => {
    try {
      const { stdout, stderr } = await run(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'report', ...args], { cwd: ROOT, env, timeout: 120_000 });
      return { code: 0, stdout, stderr };
    } catch (err) {
      const e = err as { code?: number; stdout?: string; stderr?: string };
      return { code: e.code ?? -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
    }
  };

  it('creates a report, generates it in-process, shows it, and downloads its file', async () => {
    const created = await herald('create', 'uploads', '--param', 'from=2026-01-01', '--param', 'to=2026-01-31', '--json');
    expect(created.code, created.stderr).to.equal(0);
    const report = JSON.parse(created.stdout);
    expect(report).to.include({ type: 'uploads', status: 'SUCCESS', rowCount: 0, reused: false, errorMessage: null });
    expect(report.creator).to.match(/^cli:/);

    const shown = await herald('show', report.id, '--json');
    expect(shown.code, shown.stderr).to.equal(0);
    const { reused: _reused, ...record } = report;
    expect(JSON.parse(shown.stdout)).to.deep.equal(record);

    const out = path.join(dataDir, 'out.csv');
    const saved = await herald('download', report.id, '--out', out, '--json');
    expect(saved.code, saved.stderr).to.equal(0);
    expect(JSON.parse(saved.stdout)).to.deep.equal({ id: report.id, file: out, bytes: report.fileSize });
    const storage = createS3Storage(s3OptionsFromConfig(reportConfig(s3.server)));
    try {
      expect(fs.readFileSync(out).equals(await storage.getObjectBuffer(`reports/uploads/${report.id}.csv`))).to.equal(true);
    } finally {
      storage.close();
    }
    expect(fs.readFileSync(out, 'utf8')).to.match(/^\uFEFFupload_id,/);
  });

  it('rejects bad input with one line naming the field, and exit 1', async () => {
    const bad = await herald('create', 'uploads', '--param', 'from=2026-01-01', '--param', 'to=yesterday');
    expect(bad.code).to.equal(1);
    expect(bad.stderr.trim().split('\n')).to.deep.equal(['herald: params.to: must be a date YYYY-MM-DD from 1900-01-01 to 9999-12-30']);
    expect(bad.stdout).to.equal('');
  });
});
