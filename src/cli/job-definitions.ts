import type { JobDefinition } from '../jobs/types.js';
import { invoiceRequestJob } from '../invoices/jobs.js';
import { exporterJobs } from '../exporter/jobs.js';
import { reportJobs } from '../reports/jobs.js';
import { providerJobs } from '../providers/jobs.js';
import { sendFailureMail } from '../mail/jobs.js';

// Every job kind Herald runs, for `herald worker`, the inline runner and the
// admin page. src/jobs knows no capability; each capability adds its
// definitions here (one import, one entry), e.g.
//   import { notifyHmrc } from '../exporter/jobs.js';
//   export const jobDefinitions = [notifyHmrc, ...];
export const jobDefinitions: readonly JobDefinition[] = [invoiceRequestJob, ...exporterJobs, ...reportJobs, sendFailureMail as JobDefinition, ...providerJobs];
