import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Knex } from 'knex';
import { loadConfig, type Config } from '../../src/config.js';
import { createExporterServices, type ExporterServices } from '../../src/exporter/services.js';
import { createS3Storage, s3OptionsFromConfig } from '../../src/storage/s3.js';
import { hmrcSandbox, s3Sandbox, startSandboxes, type StartedSandboxes } from '../../src/sandbox/sandboxes.js';
import type { HmrcSandbox } from '../../src/sandbox/hmrc.js';
import type { S3Server } from '../../src/sandbox/s3-server.js';
import { importJsonWorkbasket } from '../../src/taric/import/import-json.js';
import { setWorkbasketStatusIf } from '../../src/taric/store.js';
import { digestBuffer } from '../../src/storage/digest.js';
import { waitFor } from '../helpers/wait.js';
export { waitFor };

// The upload pipeline's real surroundings for a test file: a local S3 server
// and the HMRC stand-in on loopback, settings pointing at them (and at the
// file's own database), and helpers to make READY_FOR_EXPORT workbaskets.

export interface ExporterEnv {
  dir: string;
  sandboxes: StartedSandboxes;
  s3: S3Server;
  hmrc: HmrcSandbox;
  env: Record<string, string>;
  config(extra?: Record<string, string>): Config;
  services(extra?: Record<string, string>): ExporterServices;
  close(): Promise<void>;
}

export async function startExporterEnv(databaseUrl: string): Promise<ExporterEnv> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'herald-exporter-'));
  const sandboxes = await startSandboxes({ dataDir: dir });
  const env: Record<string, string> = {
    ...sandboxes.env,
    DATABASE_URL: databaseUrl,
    HERALD_DATA_DIR: path.join(dir, 'data'),
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
  };
  const opened: ExporterServices[] = [];
  return {
    dir,
    sandboxes,
    s3: sandboxes.handle(s3Sandbox),
    hmrc: sandboxes.handle(hmrcSandbox),
    env,
    config: (extra = {}) => loadConfig({ ...env, ...extra }),
    services(extra = {}) {
      const s = createExporterServices(loadConfig({ ...env, ...extra }));
      opened.push(s);
      return s;
    },
    async close() {
      for (const s of opened) s.close();
      await sandboxes.close();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A valid workbasket of `transactions` footnote transactions, made READY_FOR_EXPORT. */
export async function readyWorkbasket(db: Knex, transactions: number, opts: { sidBase?: number; descriptionBytes?: number } = {}): Promise<number> {
  const base = opts.sidBase ?? 1000;
  const text = 'x'.repeat(opts.descriptionBytes ?? 40);
  const doc = {
    title: `test workbasket ${base}`,
    reason: 'exporter test',
    transactions: Array.from({ length: transactions }, (_, i) => ({
      records: [
        {
          type: 'footnote.description.period',
          update_type: 3,
          fields: {
            'footnote.description.period.sid': String(base + i),
            'footnote.type.id': 'TN',
            'footnote.id': String(100 + (i % 800)).padStart(3, '0'),
            'validity.start.date': '2026-01-01',
          },
        },
        {
          type: 'footnote.description',
          update_type: 3,
          fields: {
            'footnote.description.period.sid': String(base + i),
            'language.id': 'EN',
            'footnote.type.id': 'TN',
            'footnote.id': String(100 + (i % 800)).padStart(3, '0'),
            description: `${text} & <${i}>`,
          },
        },
      ],
    })),
  };
  const { workbasketId } = await importJsonWorkbasket(db, doc);
  const moved = await setWorkbasketStatusIf(db, workbasketId, 'EDITING', 'READY_FOR_EXPORT');
  if (!moved) throw new Error(`workbasket ${workbasketId} did not move to READY_FOR_EXPORT`);
  return workbasketId;
}

/** Every object in the bucket with its md5, read back through the real SDK. */
export async function bucketContents(config: Config): Promise<Map<string, string>> {
  const storage = createS3Storage(s3OptionsFromConfig(config));
  try {
    const { ListObjectsV2Command } = await import('@aws-sdk/client-s3');
    const listed = await storage.client.send(new ListObjectsV2Command({ Bucket: storage.bucket }));
    const out = new Map<string, string>();
    for (const o of listed.Contents ?? []) out.set(o.Key!, digestBuffer(await storage.getObjectBuffer(o.Key!)).md5Hex);
    return out;
  } finally {
    storage.close();
  }
}

