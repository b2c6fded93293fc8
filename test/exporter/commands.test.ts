import { expect } from 'chai';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { useTestDb } from '../helpers/db.js';
import { startExporterEnv, readyWorkbasket, type ExporterEnv } from './support.js';

// `herald upload` and `herald notify retry` as an operator runs them: real
// processes, exit codes, --json output, inline jobs (no REDIS_URL).

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const run = promisify(execFile);

describe('exporter commands (herald upload, herald notify retry)', function () {
  this.timeout(120_000);
  const t = useTestDb(import.meta.url);
  let env: ExporterEnv;

  before(async () => {
    env = await startExporterEnv(t.get().url);
  });
  after(async () => env.close());

  async function herald(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    try {
      const { stdout, stderr } = await run(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], {
        cwd: ROOT,
        env: { ...process.env, ...env.env, HMRC_TIMEOUT_MS: '2000' },
      });
      return { code: 0, stdout, stderr };
    } catch (err) {
      const e = err as { code: number; stdout: string; stderr: string };
      return { code: e.code, stdout: e.stdout, stderr: e.stderr };
    }
  }

  it('exits 1 and says so when HMRC refuses the notification, then notify retry sends it without uploading again', async () => {
    const { db } = t.get();
    await readyWorkbasket(db, 3);
    env.hmrc.inject({ type: 'status', status: 400, body: { code: 'INVALID_FILE' }, match: 'notify', times: 1 });
    const first = await herald('upload', '--json');
    expect(first.code, first.stderr).to.equal(1);
    const out = JSON.parse(first.stdout);
    expect(out.ok).to.equal(false);
    expect(out.report.envelopes).to.have.length(1);
    expect(out.report.envelopes[0]).to.include({ uploaded: true, notified: false });
    const putsBefore = env.s3.requests().filter((r) => r.method === 'PUT' && r.path.includes('DIT')).length;

    const retry = await herald('notify', 'retry', '--all-failed', '--json');
    expect(retry.code, retry.stderr).to.equal(0);
    expect(JSON.parse(retry.stdout).queued).to.have.length(1);
    const [upload] = await db('uploads');
    expect(upload.notification_sent).to.be.instanceOf(Date);
    expect(env.s3.requests().filter((r) => r.method === 'PUT' && r.path.includes('DIT')).length, 'no re-upload').to.equal(putsBefore);

    const resend = await herald('notify', 'retry', '--upload', String(upload.id));
    expect(resend.code, resend.stderr).to.equal(0);
    expect(resend.stdout).to.match(/notification of upload \d+: job \d+ completed/);
    const sent = env.hmrc.notifications().filter((n) => n.correlationID === upload.correlation_id);
    expect(sent, 'resent with the same correlation id').to.have.length(2);
  });

  it('prints one line per envelope and workbasket and exits 0 when everything is delivered', async () => {
    const { db } = t.get();
    const id = await readyWorkbasket(db, 2, { sidBase: 5000 });
    const res = await herald('upload');
    expect(res.code, res.stderr).to.equal(0);
    expect(res.stdout).to.match(/envelope \d{6}\s+DIT\d{6}\.xml\s+\d+ bytes\s+md5 [0-9a-f]{32}\s+s3:\/\/\S+\s+uploaded\s+notified/);
    expect(res.stdout).to.contain(`workbasket ${id} "test workbasket 5000": SENT`);
  });

  it('refuses bad options with one line naming them', async () => {
    const both = await herald('notify', 'retry');
    expect(both.code).to.not.equal(0);
    expect(both.stderr).to.contain('give exactly one of --upload ID or --all-failed');
    const bad = await herald('notify', 'retry', '--upload', 'abc');
    expect(bad.stderr).to.contain('--upload: must be a positive whole number');
    const missing = await herald('notify', 'retry', '--upload', '99999');
    expect(missing.code).to.equal(1);
    expect(missing.stderr).to.contain('upload 99999 does not exist');
  });
});
