import { expect } from 'chai';
import type { Knex } from 'knex';
import type { JobRow, JobStatus } from '../../src/jobs/contract/types.js';
import { listJobs } from '../../src/jobs/store/admin.js';

// The one way tests look for the job rows a change enqueued: by kind (and
// subject, status), asserting how many there are, so a test that expects
// "the" job fails when there are two instead of reading the first.

export interface EnqueuedFilter {
  subjectType?: string;
  subjectId?: string | number;
  status?: JobStatus;
  /** How many rows must match (default 1). */
  count?: number;
}

export async function expectEnqueued(db: Knex, kind: string, filter: EnqueuedFilter = {}): Promise<JobRow[]> {
  const { count = 1, subjectId, ...rest } = filter;
  const rows = await listJobs(db, { kind, ...rest, ...(subjectId === undefined ? {} : { subjectId: String(subjectId) }) });
  expect(rows, `${kind} jobs${subjectId === undefined ? '' : ` of subject ${subjectId}`}${rest.status ? ` (${rest.status})` : ''}`).to.have.length(count);
  return rows;
}
