import os from 'node:os';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import type { ValidationIssue } from './envelope-writer.js';
import type { ChunkTask, FileTask, LoadTask, TaskResult } from './validate-worker.js';
import { HERALD_ENVELOPE_XSD } from './xsd.js';

// XSD validation off the main thread. A small pool of worker threads
// (validate-worker.ts) validates envelope chunks while the main thread keeps
// rendering, so render and validation overlap and use both cores. The
// schemas have no identity constraints (no xs:key/xs:unique), so validating
// groups of transactions, each wrapped in the envelope's own header and
// footer, is equivalent to validating the whole file (DESIGN.md); chunks keep
// memory bounded whatever the envelope size.
//
// The pool is created on first use and kept for the life of the process
// (worker start-up, with tsx and the schema parse, costs ~0.3 s); its workers
// hold the event loop open only while a task is in flight.

export const MAX_ISSUES_PER_ENVELOPE = 200;

/** 'herald' for xsd/envelope.xsd, or a path to another envelope.xsd (e.g. the published one). */
export type SchemaChoice = 'herald' | string;

export function schemaPathFor(schema: SchemaChoice): string {
  return schema === 'herald' ? HERALD_ENVELOPE_XSD : path.resolve(schema);
}

type Task = Omit<ChunkTask, 'id'> | Omit<FileTask, 'id'> | Omit<LoadTask, 'id'>;

interface Pending {
  resolve(r: TaskResult): void;
  reject(e: Error): void;
}

interface Slot {
  worker: Worker;
  pending: Map<number, Pending>;
}

// Under tsx (the source tree) a worker does not inherit the parent's module
// hooks, so a tiny CommonJS bootstrap registers tsx before loading the
// TypeScript entry; compiled output (.js) loads directly.
const ENTRY = new URL(import.meta.url.endsWith('.ts') ? './validate-worker.ts' : './validate-worker.js', import.meta.url);
const BOOTSTRAP = `
const { workerData } = require('node:worker_threads');
import(workerData.tsx).then((m) => { m.register(); return import(workerData.entry); });`;

function startWorker(): Worker {
  if (!ENTRY.pathname.endsWith('.ts')) return new Worker(ENTRY);
  return new Worker(BOOTSTRAP, { eval: true, workerData: { tsx: import.meta.resolve('tsx/esm/api'), entry: ENTRY.href } });
}

export class ValidatorPool {
  private readonly slots: Slot[] = [];
  private nextId = 1;

  constructor(readonly size: number) {
    if (!Number.isInteger(size) || size < 1) throw new RangeError('validator pool size must be a whole number >= 1');
  }

  run(task: Task, transfer: ArrayBuffer[] = []): Promise<TaskResult> {
    return this.send(this.leastBusy(), task, transfer);
  }

  private send(slot: Slot, task: Task, transfer: ArrayBuffer[] = []): Promise<TaskResult> {
    const id = this.nextId++;
    return new Promise<TaskResult>((resolve, reject) => {
      slot.pending.set(id, { resolve, reject });
      if (slot.pending.size === 1) slot.worker.ref();
      slot.worker.postMessage({ ...task, id }, transfer);
    });
  }

  /** Start every worker and have it parse the schema (so timing excludes start-up). */
  async prepare(schema: SchemaChoice = 'herald'): Promise<void> {
    while (this.slots.length < this.size) this.spawn();
    await Promise.all(this.slots.map((slot) => this.send(slot, { kind: 'load', schemaPath: schemaPathFor(schema) })));
  }

  inFlight(): number {
    return this.slots.reduce((n, s) => n + s.pending.size, 0);
  }

  async close(): Promise<void> {
    const slots = this.slots.splice(0);
    await Promise.all(slots.map((s) => s.worker.terminate()));
  }

  private leastBusy(): Slot {
    if (this.slots.length < this.size) return this.spawn();
    return this.slots.reduce((a, b) => (b.pending.size < a.pending.size ? b : a));
  }

  private spawn(): Slot {
    const slot: Slot = { worker: startWorker(), pending: new Map() };
    const failAll = (err: Error) => {
      const i = this.slots.indexOf(slot);
      if (i >= 0) this.slots.splice(i, 1); // replaced on next use
      for (const p of slot.pending.values()) p.reject(err);
      slot.pending.clear();
    };
    slot.worker.on('message', (r: TaskResult) => {
      const p = slot.pending.get(r.id);
      if (!p) return;
      slot.pending.delete(r.id);
      if (slot.pending.size === 0) slot.worker.unref();
      if (r.error) p.reject(new Error(r.error));
      else p.resolve(r);
    });
    slot.worker.on('error', (err) => failAll(new Error(`XSD validation worker failed: ${err.message}`, { cause: err })));
    slot.worker.on('exit', (code) => failAll(new Error(`XSD validation worker exited (code ${code})`)));
    slot.worker.unref();
    this.slots.push(slot);
    return slot;
  }
}

let shared: ValidatorPool | undefined;

/** The process-wide pool: one worker per spare core, at most two. */
export function sharedValidatorPool(): ValidatorPool {
  shared ??= new ValidatorPool(Math.max(1, Math.min(2, os.availableParallelism() - 1)));
  return shared;
}

export async function closeSharedValidatorPool(): Promise<void> {
  const pool = shared;
  shared = undefined;
  await pool?.close();
}

export interface FileValidation {
  valid: boolean;
  issues: ValidationIssue[];
  issueCount: number;
}

/**
 * Validate an envelope file on disk (streaming, in a worker) against Herald's
 * schema or another envelope.xsd, e.g. the published one kept beside the repo.
 */
export async function validateEnvelopeFile(file: string, schema: SchemaChoice = 'herald', maxIssues = MAX_ISSUES_PER_ENVELOPE): Promise<FileValidation> {
  const r = await sharedValidatorPool().run({ kind: 'file', schemaPath: schemaPathFor(schema), path: path.resolve(file), maxIssues });
  return { valid: r.count === 0, issues: r.issues, issueCount: r.count };
}
