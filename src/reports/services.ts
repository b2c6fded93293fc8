import type { Config } from '../config.js';
import { createS3Storage, s3OptionsFromConfig, type S3Storage } from '../storage/s3.js';

// What report generation and download need besides the database. The S3
// client is made on first use, so a process that never touches a report file
// needs no S3 settings, and a missing one fails that report with the
// setting's name instead of stopping the process at start-up.

export interface ReportServices {
  config: Config;
  storage(): S3Storage;
  close(): void;
}

export function createReportServices(config: Config, overrides: { storage?: S3Storage } = {}): ReportServices {
  let storage = overrides.storage;
  return {
    config,
    storage() {
      storage ??= createS3Storage(s3OptionsFromConfig(config));
      return storage;
    },
    close() {
      if (storage && !overrides.storage) storage.close();
      if (!overrides.storage) storage = undefined;
    },
  };
}

/** The settings createReport reads. */
export interface ReportSettings {
  config: Config;
  /** Injected clock for created_at/deadline (tests); default: the database's now(). */
  now?: () => Date;
}
