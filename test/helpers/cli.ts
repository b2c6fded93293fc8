import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { compiledState, COMPILED_MAIN, ROOT, SOURCE_MAIN } from '../../bin/compiled.js';

// The one way tests run the `herald` CLI as a child process: the compiled
// CLI (dist/, what bin/herald.js runs) when it is built and newer than every
// source, else the sources through tsx, so a test never runs stale code.
// bin/compiled.js decides, as it does for the bin. Spawned asynchronously:
// a test's own servers (sandboxes in this process) keep answering meanwhile.

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface CliOptions {
  /** On top of this process's environment; undefined removes a setting. */
  env?: Record<string, string | undefined>;
  /** Written to the child's stdin, which is then closed. */
  input?: string;
  cwd?: string;
  /** Killed (SIGKILL) after this long (default 120 s: a loaded 2-core machine starts node slowly). */
  timeoutMs?: number;
  /** node's own options, before the CLI (e.g. ['--import', hooks]). */
  nodeArgs?: string[];
  /** Another checkout's bin/herald.js to run instead of this one's (the fresh-clone test). */
  bin?: string;
}

let entry: string[] | undefined;

/** node's arguments before the CLI's own: the compiled main, or tsx and the source main. */
export function heraldEntry(): string[] {
  entry ??= compiledState() === 'fresh' ? [COMPILED_MAIN] : ['--import', 'tsx', SOURCE_MAIN];
  return entry;
}

function childEnv(extra: CliOptions['env'] = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const [k, v] of Object.entries(extra)) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  return env;
}

/** Starts `herald ARGS` and hands back the child (servers, workers: the test stops it). */
export function spawnHerald(args: readonly string[], opts: CliOptions & Pick<SpawnOptions, 'stdio'> = {}): ChildProcess {
  return spawn(process.execPath, [...(opts.nodeArgs ?? []), ...(opts.bin ? [opts.bin] : heraldEntry()), ...args], { cwd: opts.cwd ?? ROOT, env: childEnv(opts.env), stdio: opts.stdio ?? 'pipe' });
}

/** Runs `herald ARGS` to its end. */
export function runHerald(args: readonly string[], opts: CliOptions = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawnHerald(args, opts);
    let stdout = '';
    let stderr = '';
    child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 120_000);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
    child.stdin!.end(opts.input ?? '');
  });
}
