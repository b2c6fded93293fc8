import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { loadConfig } from '../../src/config.js';
import { wire } from '../../src/cli/wiring.js';
import { createLogger } from '../../src/log.js';
import { useTestDb } from '../helpers/db.js';

// Every runner Herald starts comes from the composition root's one jobs
// runtime, so each has every kind and every permanent-failure hook. A runner
// once started without hooks failed jobs for good with no mail and no
// clean-up of the row waiting on them.

const SRC = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../src');
const KINDS = [
  'invoice-request', 'upload-workbaskets', 'upload-envelope', 'notify-hmrc', 'report-generate', 'report-timeout', 'reports-expire',
  'send-failure-mail', 'provider-submit', 'provider-poll', 'providers-cleanup',
];

function sourceFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? sourceFiles(path.join(dir, e.name)) : e.name.endsWith('.ts') ? [path.join(dir, e.name)] : []));
}

describe('cli.wiring (the composition root)', () => {
  const t = useTestDb(import.meta.url);
  const log = createLogger('silent');
  const config = loadConfig({ SMTP_URL: 'smtp://127.0.0.1:1', MAIL_FAILURES_TO: 'ops@example.test', REDIS_URL: '' });

  it('builds a definition for every job kind, once each', () => {
    const kinds = wire({ config, log }).jobs.definitions.map((d) => d.kind as string);
    expect([...kinds].sort()).to.deep.equal([...KINDS].sort());
  });

  it('is the only way src/ starts a runner: nothing outside src/jobs imports the runner or the inline loop', () => {
    const starters = sourceFiles(SRC)
      .filter((f) => !f.startsWith(path.join(SRC, 'jobs') + path.sep))
      .filter((f) => /from '[./]*jobs\/runtime\/(runner|inline)\.js'/.test(fs.readFileSync(f, 'utf8').replace(/import type [^;]+;/g, '')));
    expect(starters.map((f) => path.relative(SRC, f))).to.deep.equal([]);
  });

  for (const mode of ['runInline', 'createRunner'] as const) {
    it(`${mode}: a job that dies of stalls ends failed_permanent with its failure mail queued (the hooks ran)`, async () => {
      const { db } = t.get();
      // A job whose workers kept dying: the next stall ends it.
      const { rows: jobRows } = await db.raw(
        `INSERT INTO jobs (kind, payload, subject_type, subject_id, status, attempts, started_at, heartbeat_at, claim_token, stall_count)
         VALUES ('upload-workbaskets', '{}'::jsonb, 'workbasket', '1', 'processing', 1, now() - interval '10 days', now() - interval '10 days', gen_random_uuid(), 5)
         RETURNING id`,
      );
      const jobId = Number(jobRows[0].id);
      const wiring = wire({ config, log });
      try {
        if (mode === 'runInline') await wiring.jobs.runInline(db, { until: 'idle' });
        else {
          const runner = wiring.jobs.createRunner(db, { concurrency: 1, listen: false, sweepIntervalMs: 60_000 });
          await runner.start();
          try {
            await runner.sweeper.runOnce();
          } finally {
            await runner.stop({ graceMs: 0 });
          }
        }
      } finally {
        wiring.close();
      }
      const [job] = (await db.raw(`SELECT status FROM jobs WHERE id = ?`, [jobId])).rows;
      expect(job.status).to.equal('failed_permanent');
      const mails = (await db.raw(`SELECT job_id FROM failure_mails WHERE job_id = ?`, [jobId])).rows;
      expect(mails, 'the failure-mail hook ran in the transition').to.have.length(1);
      await db.raw(`DELETE FROM jobs`);
    });
  }
});
