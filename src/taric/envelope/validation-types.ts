// What the envelope writer, the validator (validate.ts) and its worker thread
// (validate-worker.ts) say to each other. Types only, in a module of their
// own: the worker must load nothing but libxml2-wasm and these shapes, and the
// writer and the validator must not import each other's types in a circle.

/** One schema problem, at a line (and column) of the envelope file. */
export interface ValidationIssue {
  line: number;
  column?: number;
  element?: string;
  message: string;
}

export interface ChunkTask {
  kind: 'chunk';
  id: number;
  schemaPath: string;
  /** Shared slot holding the chunk in its first `length` bytes (validate.ts). */
  memory: SharedArrayBuffer;
  length: number;
  /** Lines of synthetic envelope header in front of the chunk (0 when it carries the file's own). */
  prefixLines: number;
  /** Line of the envelope file where the chunk's own text starts. */
  firstLine: number;
  maxIssues: number;
}

export interface FileTask {
  kind: 'file';
  id: number;
  schemaPath: string;
  path: string;
  maxIssues: number;
}

/** Start-up: parse the schema now rather than inside the first chunk. */
export interface LoadTask {
  kind: 'load';
  id: number;
  schemaPath: string;
}

export interface TaskResult {
  id: number;
  issues: ValidationIssue[];
  /** All issues found, including those beyond maxIssues. */
  count: number;
  /** Time the worker spent validating (for the benchmark's split of the timing). */
  ms: number;
  error?: string;
}
