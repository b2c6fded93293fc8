import type { Knex } from 'knex';
import { retryJob, retryJobs, summarizeJobs, unstickJobs, type JobKindSummary } from '../jobs/store/admin.js';
import type { JobRow } from '../jobs/contract/types.js';
import { listLiveWorkers, type LiveWorker } from '../jobs/store/workers.js';

// The operator's actions, shared by `herald queue ...` and /admin so both do
// exactly the same thing. Only rows change; workers hear of retried rows
// through the jobs table's NOTIFY trigger.

/**
 * "Order id" in operator speak is the id of an invoice request (the order
 * that asks for an invoice) or of the invoice it produced: invoice jobs carry
 * one of these subject types. A provider job (src/providers) that names its
 * invoice with subject_type 'invoice' is covered too.
 */
export const ORDER_SUBJECT_TYPES = ['invoice_request', 'invoice'] as const;

/** Unstick's default age: a row with no heartbeat this long is not running (5 min; every kind's heartbeat is at most 60 s apart). */
export const DEFAULT_UNSTICK_AFTER_MS = 300_000;

export type RetryTarget = { id: number } | { subjectId: string } | { orderId: string } | { allFailed: true };

export async function retryTarget(db: Knex, target: RetryTarget): Promise<JobRow[]> {
  if ('id' in target) {
    const row = await retryJob(db, target.id);
    return row ? [row] : [];
  }
  if ('subjectId' in target) return retryJobs(db, { subjectId: target.subjectId });
  if ('orderId' in target) {
    const out: JobRow[] = [];
    for (const subjectType of ORDER_SUBJECT_TYPES) out.push(...(await retryJobs(db, { subjectType, subjectId: target.orderId })));
    return out;
  }
  return retryJobs(db, { status: 'failed_permanent' });
}

export async function unstick(db: Knex, olderThanMs = DEFAULT_UNSTICK_AFTER_MS): Promise<JobRow[]> {
  return unstickJobs(db, { olderThanMs });
}

export interface QueueStatus {
  kinds: JobKindSummary[];
  total: Omit<JobKindSummary, 'kind'>;
}

/** Workers heartbeating within JOBS_WORKER_LOST_AFTER_MS (job_workers), oldest first: `herald queue status` only, not every /admin page. */
export function liveWorkers(db: Knex, lostAfterMs: number): Promise<LiveWorker[]> {
  return listLiveWorkers(db, { lostAfterMs });
}

export async function queueStatus(db: Knex, at?: Date): Promise<QueueStatus> {
  const kinds = await summarizeJobs(db, at);
  const total = { pending: 0, processing: 0, failed: 0, failed_permanent: 0, completed_today: 0, oldest_pending_s: null as number | null };
  for (const k of kinds) {
    total.pending += k.pending;
    total.processing += k.processing;
    total.failed += k.failed;
    total.failed_permanent += k.failed_permanent;
    total.completed_today += k.completed_today;
    if (k.oldest_pending_s !== null) total.oldest_pending_s = Math.max(total.oldest_pending_s ?? 0, k.oldest_pending_s);
  }
  return { kinds, total };
}

/** "3 min", "2 h 5 min": ages for people. */
export function formatAge(seconds: number | null): string {
  if (seconds === null) return '-';
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min`;
  if (s < 86_400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  return `${Math.floor(s / 86_400)} d ${Math.floor((s % 86_400) / 3600)} h`;
}
