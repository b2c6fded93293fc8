import fs from 'node:fs';
import path from 'node:path';
import { loadConfig } from '../config.js';
import { packageRoot } from '../lib/package-root.js';
import { printJson, withApp, type AppContext } from '../lib/cli/context.js';
import { createExporterServices } from '../exporter/services.js';
import { buildUploadReport, formatUploadReport } from '../exporter/report.js';
import { countUnfinishedJobs } from '../jobs/store/views.js';
import { wire, type Wiring } from './wiring.js';
import { hmrcSandbox, startSandboxes, type StartedSandboxes } from '../sandbox/sandboxes.js';
import { importJsonText } from '../taric/import/import-json.js';
import { setWorkbasketStatusIf } from '../taric/store.js';

// `herald demo` (npm run demo): Herald's main job end to end on a fresh
// machine. Sample workbaskets from fixtures/ are imported and made ready
// (the READY_FOR_EXPORT trigger queues the upload); the pipeline renders,
// validates and numbers envelopes, puts them in S3 and notifies HMRC.
// Unset DATABASE_URL: an embedded database, made fresh for each demo.
// Unset REDIS_URL: jobs run in this process. Unset S3_BUCKET / HMRC_BASE_URL:
// a local S3-compatible server and the HMRC stand-in on loopback ports.

const FIXTURES = path.join(packageRoot(), 'fixtures', 'workbaskets');

export async function runDemo(dir: string, json: boolean): Promise<void> {
  const base = loadConfig();
  const say = (line: string) => !json && process.stdout.write(`${line}\n`);
  if (!base.DATABASE_URL) fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });

  const needS3 = !base.S3_BUCKET;
  const needHmrc = !base.HMRC_BASE_URL;
  let sandboxes: StartedSandboxes | undefined;
  const overrides: Record<string, string> = { HERALD_DATA_DIR: dir, LOG_LEVEL: base.LOG_LEVEL === 'info' ? 'warn' : base.LOG_LEVEL };
  if (needS3 || needHmrc) {
    sandboxes = await startSandboxes({ dataDir: path.join(dir, 'sandbox'), only: [...(needS3 ? ['s3'] : []), ...(needHmrc ? ['hmrc'] : [])] });
    Object.assign(overrides, sandboxes.env);
    for (const s of sandboxes.list) say(`started ${s.name} sandbox at ${s.url} (${s.description})`);
  }
  try {
    const result = await withApp((app) => demoRun(app, say), { overrides, migrate: true });
    const notifications = sandboxes && needHmrc ? sandboxes.handle(hmrcSandbox).notifications() : null;
    if (json) {
      printJson({ ...result, hmrcNotificationsReceived: notifications, s3Directory: needS3 ? path.join(dir, 'sandbox', 's3') : null });
    } else {
      process.stdout.write(formatUploadReport(result.report));
      if (notifications) say(`HMRC stand-in received ${notifications.length} notification(s): ${notifications.map((n) => `${n.file.fileName} (${n.correlationID})`).join(', ')}`);
      if (needS3) say(`envelope files are in ${path.join(dir, 'sandbox', 's3', result.bucket)} (the local S3 server's directory)`);
      say(result.ok ? 'demo finished: every envelope is in S3 and HMRC was notified' : 'demo finished with problems (see above)');
    }
    if (!result.ok) process.exitCode = 1;
  } finally {
    await sandboxes?.close();
  }
}

async function demoRun(app: AppContext, say: (line: string) => void) {
  const { db, config, log } = app;
  const services = createExporterServices(config, { log });
  const wiring = wire(app, { exporter: services });
  try {
    await services.storage().ensureBucket();
    const { rows } = await db.raw('SELECT now() AS now');
    const since = new Date(rows[0].now);
    const files = fs.readdirSync(FIXTURES).filter((f) => f.endsWith('.json')).sort();
    for (const f of files) {
      const imported = await importJsonText(db, fs.readFileSync(path.join(FIXTURES, f), 'utf8'));
      await setWorkbasketStatusIf(db, imported.workbasketId, 'EDITING', 'READY_FOR_EXPORT');
      say(`imported ${f} as workbasket ${imported.workbasketId} (${imported.transactions} transactions, ${imported.records} records) and made it READY_FOR_EXPORT`);
    }
    if (config.REDIS_URL) await runWithWorker(app, wiring);
    else await wiring.jobs.runInline(db, { until: 'idle', waitForRetriesMs: 60_000, log });
    const report = await buildUploadReport(db, since);
    const ok = report.envelopes.length > 0 && report.envelopes.every((e) => e.uploaded && (e.notified || !config.HMRC_NOTIFICATIONS_ENABLED));
    return { ok, bucket: services.storage().bucket, report };
  } finally {
    wiring.close();
    services.close();
  }
}

/** With REDIS_URL: a real worker in this process, until no job is left to run. */
async function runWithWorker({ db }: AppContext, wiring: Wiring): Promise<void> {
  const runner = wiring.jobs.createRunner(db);
  await runner.start();
  try {
    const deadline = Date.now() + 120_000;
    for (;;) {
      if ((await countUnfinishedJobs(db)) === 0 || Date.now() > deadline) break;
      await new Promise((r) => setTimeout(r, 250));
    }
  } finally {
    await runner.stop({ graceMs: 5_000 });
  }
}
