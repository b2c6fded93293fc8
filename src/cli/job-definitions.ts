import type { JobDefinition, PermanentFailureHook } from '../jobs/contract/types.js';
import type { Logger } from '../log.js';
import { failRequestOfDeadJob, invoiceRequestJob } from '../invoices/jobs.js';
import { exporterJobs } from '../exporter/jobs.js';
import { reportJobs } from '../reports/jobs.js';
import { failDocumentOfDeadSubmission, providerJobs } from '../providers/jobs.js';
import { failureMailHook, sendFailureMail } from '../mail/jobs.js';

// Every job kind Herald runs, for `herald worker`, the inline runner and the
// admin page. src/jobs knows no capability; each capability adds its
// definitions here (one import, one entry), e.g.
//   import { notifyHmrc } from '../exporter/jobs.js';
//   export const jobDefinitions = [notifyHmrc, ...];
export const jobDefinitions: readonly JobDefinition[] = [invoiceRequestJob, ...exporterJobs, ...reportJobs, sendFailureMail as JobDefinition, ...providerJobs];

/**
 * What happens when any job enters failed_permanent, in the transaction that
 * moves it: the capability whose row waits on the job gives up its row, then
 * an operator is mailed. Capabilities add theirs here.
 */
export function permanentFailureHook(log: Logger): PermanentFailureHook {
  const hooks: PermanentFailureHook[] = [failRequestOfDeadJob, failDocumentOfDeadSubmission, failureMailHook({ log })];
  return async (job, ctx) => {
    for (const hook of hooks) await hook(job, ctx);
  };
}
