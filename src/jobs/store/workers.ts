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
export async function heartbeatWorker(db: Db, id: number, at?: At): Promise<boolean> {
  const res = await rows<{ id: string }>(db, `UPDATE job_workers SET heartbeat_at = ${NOW} WHERE id = ? RETURNING id`, [ts(at), id]);
  return res.length === 1;
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
