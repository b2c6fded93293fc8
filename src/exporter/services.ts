import path from 'node:path';
import type { Config } from '../config.js';
import type { Logger } from '../log.js';
import { createS3Storage, s3OptionsFromConfig, type S3Storage } from '../storage/s3.js';
import { createHmrcClient, hmrcOptionsFromConfig, type HmrcClient } from './hmrc-client.js';
import type { ExportProgress } from '../taric/envelope/export.js';

// What the exporter's jobs need besides the database. S3 and HMRC clients are
// made on first use, so a worker that never runs an upload needs no S3
// settings, and a missing setting fails the job that needs it with the
// setting's name instead of stopping every worker at start-up.

export interface ExporterServices {
  config: Config;
  /** Rendered envelope files are kept here (DIT{id}.xml) until uploaded. */
  workDir: string;
  storage(): S3Storage;
  hmrc(): HmrcClient;
  /** The CLI sets this to draw a progress bar while an export renders. */
  onExportProgress?: ((p: ExportProgress) => void) | undefined;
  close(): void;
}

export interface ExporterServiceOverrides {
  storage?: S3Storage;
  hmrc?: HmrcClient;
  log?: Logger;
}

export function createExporterServices(config: Config, overrides: ExporterServiceOverrides = {}): ExporterServices {
  let storage = overrides.storage;
  let hmrc = overrides.hmrc;
  return {
    config,
    workDir: path.resolve(config.HERALD_DATA_DIR, 'exports'),
    storage() {
      storage ??= createS3Storage(s3OptionsFromConfig(config));
      return storage;
    },
    hmrc() {
      hmrc ??= createHmrcClient(hmrcOptionsFromConfig(config), { log: overrides.log });
      return hmrc;
    },
    close() {
      if (storage && !overrides.storage) storage.close();
    },
  };
}
