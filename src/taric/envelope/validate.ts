import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { ChunkTask, FileTask, LoadTask, TaskResult, ValidationIssue } from './validation-types.js';
import { HERALD_ENVELOPE_XSD } from './xsd.js';

// XSD validation off the main thread with libxml2-wasm: whole files (the
// import's schema check, tests) always, and envelopes being exported where
// xmllint is not installed (envelope-check.ts; xmllint.ts is the default
// there, docs/decisions/0019). One worker thread (validate-worker.ts)
// validates envelope chunks while the main thread keeps rendering, so render
// and validation overlap on the two cores. The schemas have no identity
// constraints (no xs:key/xs:unique), so validating groups of transactions,
// each wrapped in the envelope's own header and footer, is equivalent to
// validating the whole file (src/taric/README.md); chunks keep memory bounded.
//
// ONE worker: on two cores the main thread renders while it validates, and
// libxml2-wasm lives in that worker only (validate-worker.ts: its wasm heap
// keeps its peak). A crashed worker is simply replaced. Tests read XML back
// with saxes and validate through this module for the same reason.
//
// The worker starts on first use and stays for the life of the process
// (start-up costs ~0.3 s with tsx and the schema parse); it holds the event
// loop open only while a task is in flight.

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

// Chunks reach the worker through two reusable SharedArrayBuffer slots (one
// being validated, one queued): no allocation per chunk, and nothing for the
// mostly idle worker heap to keep as garbage (a fresh transferred buffer per
// chunk left tens of MB of dead ArrayBuffers in the worker until its next GC).
const CHUNK_SLOTS = 2;

interface ChunkSlot {
  memory: SharedArrayBuffer;
  busy: boolean;
}

interface Pending {
  resolve(r: TaskResult): void;
  reject(e: Error): void;
}

// Under tsx (the source tree) a worker does not inherit the parent's module
// hooks, so a two-line CommonJS bootstrap registers tsx's require hook and
// loads the TypeScript entry. The require hook, not tsx's ESM loader: the
// ESM loader runs its own hooks thread per worker, which measured +35-65 MB
// RSS against +10 MB. Compiled output (.js) would load directly.
const ENTRY = new URL(import.meta.url.endsWith('.ts') ? './validate-worker.ts' : './validate-worker.js', import.meta.url);
const BOOTSTRAP = `
const { workerData } = require('node:worker_threads');
require(workerData.tsx).register();
require(workerData.entry);`;

function startWorker(): Worker {
  if (!ENTRY.pathname.endsWith('.ts')) return new Worker(ENTRY);
  const tsx = createRequire(import.meta.url).resolve('tsx/cjs/api');
  return new Worker(BOOTSTRAP, { eval: true, workerData: { tsx, entry: fileURLToPath(ENTRY) } });
}

export class Validator {
  private worker: Worker | null = null;
  private readonly pending = new Map<number, Pending>();
  private readonly slots: ChunkSlot[] = Array.from({ length: CHUNK_SLOTS }, () => ({ memory: new SharedArrayBuffer(0), busy: false }));
  private readonly slotWaiters: Array<() => void> = [];
  private nextId = 1;

  /**
   * Queue a chunk for validation. Resolves once the chunk is copied into a
   * free slot (waiting while both are busy: the caller's backpressure);
   * `result` resolves when the worker has validated it.
   */
  async validateChunk(req: ChunkRequest): Promise<{ result: Promise<TaskResult> }> {
    const bytes = req.parts.reduce((n, p) => n + (typeof p === 'string' ? Buffer.byteLength(p) : p.length), 0);
    const slot = await this.acquireSlot();
    if (slot.memory.byteLength < bytes) slot.memory = new SharedArrayBuffer(Math.ceil((bytes * 1.25) / 4096) * 4096);
    const view = Buffer.from(slot.memory, 0, bytes);
    let at = 0;
    for (const p of req.parts) at += typeof p === 'string' ? view.write(p, at) : p.copy(view, at);
    const { schemaPath, prefixLines, firstLine, maxIssues } = req;
    const result = this.run({ kind: 'chunk', schemaPath, prefixLines, firstLine, maxIssues, memory: slot.memory, length: bytes });
    const release = () => this.releaseSlot(slot);
    result.then(release, release);
    return { result };
  }

  /** Start the worker and have it parse the schema now (so timings exclude start-up). */
  async prepare(schema: SchemaChoice = 'herald'): Promise<void> {
    await this.run({ kind: 'load', schemaPath: schemaPathFor(schema) });
  }

  run(task: Task): Promise<TaskResult> {
    const worker = this.worker ?? this.spawn();
    const id = this.nextId++;
    return new Promise<TaskResult>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      if (this.pending.size === 1) worker.ref();
      worker.postMessage({ ...task, id });
    });
  }

  async close(): Promise<void> {
    const worker = this.worker;
    this.worker = null;
    await worker?.terminate();
  }

  private acquireSlot(): Promise<ChunkSlot> {
    const free = this.slots.find((s) => !s.busy);
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

  private spawn(): Worker {
    const worker = startWorker();
    const failAll = (err: Error) => {
      if (this.worker === worker) this.worker = null; // replaced on next use
      for (const p of this.pending.values()) p.reject(err);
      this.pending.clear();
    };
    worker.on('message', (r: TaskResult) => {
      const p = this.pending.get(r.id);
      if (!p) return;
      this.pending.delete(r.id);
      if (this.pending.size === 0) worker.unref();
      if (r.error) p.reject(new Error(r.error));
      else p.resolve(r);
    });
    worker.on('error', (err) => failAll(new Error(`XSD validation worker failed: ${err.message}`, { cause: err })));
    worker.on('exit', (code) => {
      if (this.worker === worker || this.pending.size > 0) failAll(new Error(`XSD validation worker exited (code ${code})`));
    });
    worker.unref();
    this.worker = worker;
    return worker;
  }
}

let shared: Validator | undefined;

/** The process's validator (there must be only one: see the top of this file). */
export function sharedValidator(): Validator {
  shared ??= new Validator();
  return shared;
}

/** Stop the worker (before exit, or in tests); the next use starts a new one. */
export async function closeSharedValidatorPool(): Promise<void> {
  const v = shared;
  shared = undefined;
  await v?.close();
}

export interface FileValidation {
  valid: boolean;
  issues: ValidationIssue[];
  issueCount: number;
}

/**
 * Validate an XML file on disk (parsed whole, in the worker: for tests and
 * small files; envelopes being written are validated in chunks) against Herald's
 * envelope schema or another XSD, e.g. the published envelope.xsd kept beside
 * the repo. Issues carry the file's line numbers and, where libxml2 names
 * one, the element.
 */
export async function validateEnvelopeFile(file: string, schema: SchemaChoice = 'herald', maxIssues = MAX_ISSUES_PER_ENVELOPE): Promise<FileValidation> {
  const r = await sharedValidator().run({ kind: 'file', schemaPath: schemaPathFor(schema), path: path.resolve(file), maxIssues });
  return { valid: r.count === 0, issues: r.issues, issueCount: r.count };
}
