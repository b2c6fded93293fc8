import type { Config } from '../config.js';
import type { Logger } from '../log.js';
import { adminRoutes } from '../admin/routes.js';
import { createExporterServices, type ExporterServices } from '../exporter/services.js';
import { exporterJobs } from '../exporter/jobs.js';
import type { RoutesPlugin } from '../http/route-types.js';
import { failRequestOfDeadJob, invoiceRequestJob } from '../invoices/jobs.js';
import { invoiceRoutes } from '../invoices/routes.js';
import type { JobDefinition } from '../jobs/contract/types.js';
import { createJobsRuntime, type JobsRuntime } from '../jobs/runtime/jobs-runtime.js';
import { createMailServices, failureMailHook, failureMailJob, type MailServices } from '../mail/jobs.js';
import { mailSettingsFromConfig } from '../mail/mailer.js';
import { failDocumentOfDeadSubmission, providerJobs } from '../providers/jobs.js';
import { createProviderServices, type ProviderServices } from '../providers/services.js';
import { pacWebhookRoutes } from '../providers/webhooks.js';
import { reportJobs } from '../reports/jobs.js';
import { reportRoutes } from '../reports/routes.js';
import { createReportServices, type ReportServices } from '../reports/services.js';

// The composition root: the one place that knows every capability. From a
// process's settings it makes each capability's services (on first use, so a
// command that runs no job opens no S3 client), the job definitions built
// from them, every permanent-failure hook, ONE jobs runtime that every runner
// comes from, and the route list. Nothing in src/ imports src/cli.

/** Services a test, the demo or a bench hands in instead of making them from the settings (never closed here). */
export interface ServiceOverrides {
  exporter?: ExporterServices;
  providers?: ProviderServices;
  reports?: ReportServices;
  mail?: MailServices;
}

export interface Wiring {
  jobs: JobsRuntime;
  exporter(): ExporterServices;
  providers(): ProviderServices;
  reports(): ReportServices;
  routes: readonly RoutesPlugin[];
  /** Closes the services this wiring made. */
  close(): void;
}

interface Made<S> {
  get(): S;
  close(): void;
}

function onFirstUse<S extends { close?(): void }>(given: S | undefined, make: () => S): Made<S> {
  let made: S | undefined;
  return {
    get: () => given ?? (made ??= make()),
    close: () => made?.close?.(),
  };
}

export function wire(app: { config: Config; log: Logger }, overrides: ServiceOverrides = {}): Wiring {
  const { config, log } = app;
  const exporter = onFirstUse(overrides.exporter, () => createExporterServices(config, { log }));
  const providers = onFirstUse(overrides.providers, () => createProviderServices(config));
  const reports = onFirstUse(overrides.reports, () => createReportServices(config));
  const mail = overrides.mail ?? createMailServices(mailSettingsFromConfig(config));

  const definitions: JobDefinition[] = [
    invoiceRequestJob as JobDefinition,
    ...exporterJobs(config, exporter.get),
    ...reportJobs(config, reports.get),
    failureMailJob(() => mail) as JobDefinition,
    ...providerJobs(config, providers.get),
  ];
  // In order: the capability whose row waits on the job gives it up, then an operator is mailed.
  const hooks = [failRequestOfDeadJob, failDocumentOfDeadSubmission, failureMailHook({ log, settings: mail.settings })];
  const jobs = createJobsRuntime({
    definitions,
    hooks,
    log,
    redis: config.REDIS_URL ? { url: config.REDIS_URL, prefix: config.REDIS_PREFIX } : undefined,
    concurrency: config.JOBS_CONCURRENCY,
    sweepIntervalMs: config.JOBS_SWEEP_INTERVAL_MS,
    workerHeartbeatMs: config.JOBS_WORKER_HEARTBEAT_MS,
    workerLostAfterMs: config.JOBS_WORKER_LOST_AFTER_MS,
  });
  return {
    jobs,
    exporter: exporter.get,
    providers: providers.get,
    reports: reports.get,
    routes: [invoiceRoutes, reportRoutes(reports.get), adminRoutes(providers.get), pacWebhookRoutes(providers.get)],
    close() {
      exporter.close();
      providers.close();
      reports.close();
    },
  };
}
