import { z } from 'zod';
import type { Knex } from 'knex';
import { planAnnouncement } from './announce.js';
import { insertJob } from './runs.js';
import type { EnqueueOptions, JobKind, JobPayloads } from '../contract/types.js';

// The outbox write. Pass the caller's transaction: the job row commits or
// rolls back with the business change that caused it. Nothing is sent to
// Redis here: the row is announced (NOTIFY) once the transaction commits,
// by announce.ts right after the commit or, where that cannot be arranged
// (embedded database), by the insert trigger; the sweeper is the safety net.

const options = z.object({
  subjectType: z.string().min(1, { message: 'subjectType must not be empty' }).optional(),
  subjectId: z.union([z.string().min(1), z.number().int()], { message: 'subjectId must be a non-empty string or an integer' }).optional(),
  dedupeKey: z.string().min(1, { message: 'dedupeKey must not be empty' }).max(500, { message: 'dedupeKey must be at most 500 characters' }).optional(),
  runAt: z.date({ message: 'runAt must be a Date' }).refine((d) => !Number.isNaN(d.getTime()), { message: 'runAt must be a valid Date' }).optional(),
  maxAttempts: z.number().int({ message: 'maxAttempts must be a whole number' }).min(1, { message: 'maxAttempts must be at least 1' }).optional(),
});

export interface EnqueueResult {
  id: number;
  /** false: a job with this dedupe key already existed; id is that job's. */
  created: boolean;
}

export async function enqueueJob<K extends JobKind>(
  db: Knex | Knex.Transaction,
  kind: K,
  payload: JobPayloads[K],
  opts: EnqueueOptions = {},
): Promise<EnqueueResult> {
  if (typeof kind !== 'string' || kind.length === 0) throw new TypeError('kind must be a non-empty string');
  const parsed = options.safeParse(opts);
  if (!parsed.success) throw new TypeError(parsed.error.issues[0]?.message ?? 'invalid enqueue options');
  const o = parsed.data;
  const announce = planAnnouncement(db);
  const result = await insertJob(db, {
    kind,
    payload,
    subjectType: o.subjectType ?? null,
    subjectId: o.subjectId === undefined ? null : String(o.subjectId),
    dedupeKey: o.dedupeKey ?? null,
    scheduledAt: o.runAt ?? null,
    maxAttempts: o.maxAttempts ?? null,
    writerAnnounces: announce !== null,
  });
  if (result.created) announce?.(result.id);
  return result;
}
