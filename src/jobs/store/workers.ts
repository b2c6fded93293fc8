import { NOW, rows, ts, type At, type Db } from './runs.js';

// The worker registry's SQL (table job_workers, migration 0014): a row per
// process that claims job rows, its heartbeat, and the reads for
// `herald queue status` and `herald upload --wait`. The reset of a dead
// worker's jobs is the sweeper's (sweep.ts, resetJobsOfLostWorkers).

export type WorkerRunner = 'worker' | 'inline';

/** JOBS_WORKER_HEARTBEAT_MS and JOBS_WORKER_LOST_AFTER_MS when not given (src/config.ts has the same). */
export const DEFAULT_WORKER_HEARTBEAT_MS = 2000;
export const DEFAULT_WORKER_LOST_AFTER_MS = 10_000;

export interface WorkerRow {
  id: number;
  pid: number;
  host: string;
  runner: WorkerRunner;
  started_at: Date;
  heartbeat_at: Date;
}

export interface LiveWorker extends WorkerRow {
  /** Jobs this worker holds now (status processing, claimed by it). */
  running: number;
  /** How long ago its last heartbeat was, on the database's clock. */
  heartbeat_age_ms: number;
}

export async function registerWorker(db: Db, w: { pid: number; host: string; runner: WorkerRunner }, at?: At): Promise<number> {
  const [row] = await rows<{ id: string }>(
    db,
    `INSERT INTO job_workers (pid, host, runner, started_at, heartbeat_at) VALUES (?, ?, ?, ${NOW}, ${NOW}) RETURNING id`,
    [w.pid, w.host, w.runner, ts(at), ts(at)],
  );
  return Number(row!.id);
}

/** false: the row is gone (another worker declared this one dead and reset its jobs). */
/**
 * Refreshes this worker's heartbeat and, in the same statement, says whether
 * its row still exists (false: another worker declared it dead) and whether
 * the lost-worker reset (sweep.ts resetJobsOfLostWorkers) has work: another
 * worker silent for lostAfterMs, or a processing row of a worker that no
 * longer exists. Two cheap EXISTS per beat instead of the reset's locking
 * transaction on every beat of every worker.
 */
export async function heartbeatWorker(db: Db, id: number, lostAfterMs: number, at?: At): Promise<{ alive: boolean; reapNeeded: boolean }> {
  const [row] = await rows<{ alive: boolean; reap_needed: boolean }>(
    db,
    `WITH beat AS (UPDATE job_workers SET heartbeat_at = ${NOW} WHERE id = ? RETURNING id)
     SELECT EXISTS (SELECT 1 FROM beat) AS alive,
            EXISTS (SELECT 1 FROM job_workers WHERE id <> ? AND heartbeat_at < ${NOW} - make_interval(secs => ? / 1000.0))
            OR EXISTS (SELECT 1 FROM jobs j WHERE j.status = 'processing' AND j.worker_id IS NOT NULL
                          AND NOT EXISTS (SELECT 1 FROM job_workers w WHERE w.id = j.worker_id)) AS reap_needed`,
    [ts(at), id, id, ts(at), lostAfterMs],
  );
  return { alive: row!.alive, reapNeeded: row!.reap_needed };
}

export async function deregisterWorker(db: Db, id: number): Promise<void> {
  await db.raw(`DELETE FROM job_workers WHERE id = ?`, [id]);
}

/**
 * Workers whose last heartbeat is within lostAfterMs (the others are dead
 * and about to be reaped), oldest first, with how many jobs each holds.
 */
export async function listLiveWorkers(db: Db, opts: { lostAfterMs: number; runner?: WorkerRunner }, at?: At): Promise<LiveWorker[]> {
  const runner = opts.runner ? 'AND w.runner = ?' : '';
  const out = await rows<LiveWorker>(
    db,
    `SELECT w.*, (SELECT count(*)::int FROM jobs j WHERE j.status = 'processing' AND j.worker_id = w.id) AS running,
            greatest(0, round(extract(epoch FROM ${NOW} - w.heartbeat_at) * 1000))::int AS heartbeat_age_ms
       FROM job_workers w
      WHERE w.heartbeat_at >= ${NOW} - ? * interval '1 millisecond' ${runner}
      ORDER BY w.started_at, w.id`,
    [ts(at), ts(at), opts.lostAfterMs, ...(opts.runner ? [opts.runner] : [])],
  );
  return out.map((w) => ({ ...w, id: Number(w.id), running: Number(w.running), heartbeat_age_ms: Number(w.heartbeat_age_ms) }));
}
