import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
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

export interface ChunkRequest {
  schemaPath: string;
  /** Concatenated into the chunk the worker validates (header, segment, footer). */
  parts: Array<Buffer | string>;
  prefixLines: number;
  firstLine: number;
  maxIssues: number;
}

// Chunks reach the workers through a few reusable SharedArrayBuffer slots:
// no allocation per chunk, and nothing for a mostly idle worker heap to keep
// as garbage (transferring a fresh buffer per chunk left tens of MB of dead
// ArrayBuffers in the worker until its next GC). Two slots per worker: one
// being validated, one queued.
interface ChunkSlot {
  memory: SharedArrayBuffer;
  busy: boolean;
}

interface Pending {
  resolve(r: TaskResult): void;
  reject(e: Error): void;
}

interface Slot {
  worker: Worker;
  pending: Map<number, Pending>;
}

// Under tsx (the source tree) a worker does not inherit the parent's module
// hooks, so a two-line CommonJS bootstrap registers tsx's require hook and
// loads the TypeScript entry. The require hook, not tsx's ESM loader: the
// ESM loader runs its own hooks thread per worker, which measured +35-65 MB
// RSS per worker against +10 MB. Compiled output (.js) would load directly.
const ENTRY = new URL(import.meta.url.endsWith('.ts') ? './validate-worker.ts' : './validate-worker.js', import.meta.url);
const BOOTSTRAP = `
const { workerData } = require('node:worker_threads');
require(workerData.tsx).register();
require(workerData.entry);`;

// Loading libxmljs creates thousands of binding functions; with V8's default
// young generation that briefly commits ~50 MB of worker heap (RSS peak
// +35 MB); capped at 4 MB it commits ~23 MB and runs as fast.
const WORKER_LIMITS = { maxYoungGenerationSizeMb: 4 };

function startWorker(): Worker {
  if (!ENTRY.pathname.endsWith('.ts')) return new Worker(ENTRY, { resourceLimits: WORKER_LIMITS });
  const tsx = fileURLToPath(import.meta.resolve('tsx/cjs/api'));
  return new Worker(BOOTSTRAP, { eval: true, workerData: { tsx, entry: fileURLToPath(ENTRY) }, resourceLimits: WORKER_LIMITS });
}

export class ValidatorPool {
  private readonly slots: Slot[] = [];
  private readonly chunkSlots: ChunkSlot[] = [];
  private readonly slotWaiters: Array<() => void> = [];
  private nextId = 1;

  constructor(readonly size: number) {
    if (!Number.isInteger(size) || size < 1) throw new RangeError('validator pool size must be a whole number >= 1');
    for (let i = 0; i < size * 2; i++) this.chunkSlots.push({ memory: new SharedArrayBuffer(0), busy: false });
  }

  /**
   * Queue a chunk for validation. Resolves once the chunk is copied into a
   * free slot (waiting while all are busy: the caller's backpressure); `result`
   * resolves when a worker has validated it.
   */
  async validateChunk(req: ChunkRequest): Promise<{ result: Promise<TaskResult> }> {
    const bytes = req.parts.reduce((n, p) => n + (typeof p === 'string' ? Buffer.byteLength(p) : p.length), 0);
    const slot = await this.acquireSlot();
    if (slot.memory.byteLength < bytes) slot.memory = new SharedArrayBuffer(Math.ceil((bytes * 1.25) / 4096) * 4096);
    const view = Buffer.from(slot.memory, 0, bytes);
    let at = 0;
    for (const p of req.parts) at += typeof p === 'string' ? view.write(p, at) : p.copy(view, at);
    const { parts: _parts, ...rest } = req;
    const result = this.run({ kind: 'chunk', ...rest, memory: slot.memory, length: bytes });
    const release = () => this.releaseSlot(slot);
    result.then(release, release);
    return { result };
  }

  private acquireSlot(): Promise<ChunkSlot> {
    const free = this.chunkSlots.find((s) => !s.busy);
    if (free) {
      free.busy = true;
      return Promise.resolve(free);
    }
    return new Promise((resolve) => this.slotWaiters.push(() => resolve(this.acquireSlot())));
  }

  private releaseSlot(slot: ChunkSlot): void {
    slot.busy = false;
    this.slotWaiters.shift()?.();
  }

  run(task: Task): Promise<TaskResult> {
    return this.send(this.leastBusy(), task);
  }

  private send(slot: Slot, task: Task): Promise<TaskResult> {
    const id = this.nextId++;
    return new Promise<TaskResult>((resolve, reject) => {
      slot.pending.set(id, { resolve, reject });
      if (slot.pending.size === 1) slot.worker.ref();
      slot.worker.postMessage({ ...task, id });
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
