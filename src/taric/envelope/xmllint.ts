import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { elementInMessage, tidyMessage } from './issue-text.js';
import type { ValidationIssue } from './validation-types.js';

// Envelope validation by libxml2's streaming validator in its own process:
// `xmllint --stream --schema <xsd> -` reads the envelope from a FIFO as it is
// rendered (docs/decisions/0019). Native and streaming, it takes about half
// the CPU of a document per chunk in libxml2-wasm, runs on the other core,
// and none of its memory is the worker's. Line numbers are the file's own
// (it sees the whole file), so nothing needs mapping.
//
// Why a FIFO and not a pipe from spawn(): Node moves bytes into a child's
// stdin (a socket of ~200 KB) only when the event loop turns, which the renderer
// does once per segment; xmllint then emptied the socket in ~2 ms and waited
// (1.0 s wall for 0.46 s of CPU on a 40 MB export). A FIFO written through
// fs.WriteStream is written by blocking writes on libuv's thread pool, which
// refill it as fast as xmllint reads, whatever the main thread is doing.
//
// The process only ever sees Herald's own rendered output (never input from
// outside), with --nonet. Its stderr is read line by line and only the first
// maxIssues issues are kept, so an envelope with an error on every line costs
// a count, not memory. When Herald dies, xmllint reads EOF and exits.

export const XMLLINT = 'xmllint';

/** Where to get it, in the one line an operator sees. */
export const XMLLINT_MISSING = `${XMLLINT} not found on PATH: install it (Debian/Ubuntu: apt-get install libxml2-utils) or set EXPORTER_XSD_VALIDATOR=wasm`;

const versionOnPath = new Map<string, string | null>();

/** The libxml2 version `xmllint` reports ("20914"), or null where it does not run (asked once per PATH). */
export function xmllintVersion(): string | null {
  const key = process.env.PATH ?? '';
  let version = versionOnPath.get(key);
  if (version === undefined) {
    const r = spawnSync(XMLLINT, ['--version'], { encoding: 'utf8' });
    version = r.status === 0 ? (/using libxml version (\d+)/.exec(r.stderr)?.[1] ?? 'unknown') : null;
    versionOnPath.set(key, version);
  }
  return version;
}

export interface StreamResult {
  issues: ValidationIssue[];
  /** Every issue reported, including those beyond maxIssues. */
  count: number;
  /** Wall time of the xmllint process, start to exit. */
  ms: number;
}

// "-:12: Schemas validity error : Element '{ns}x': ..." ("-": stdin);
// libxml2's context lines (the source line and a caret under it) do not
// start with "-:<line>:" and are not issues, nor are its verdict lines
// ("- validates", "- fails to validate").
const ISSUE_AFTER_INPUT = /^:(\d+): (?:element [^:]*: )?(?:[A-Za-z ]*error|[A-Za-z ]*warning) : (.*)$/;
const LONGEST_KEPT_LINE = 4096;

// Up to this much waits for xmllint before the writer must (1 MiB measured
// as fast as 4 MiB, with less memory).
const QUEUED_BYTES = 1024 * 1024;

// xmllint's exit codes: 1 the input is not well-formed, 3 and 4 it is not
// valid; 5 the schema did not compile (Herald's fault, not the envelope's).
const NOT_WELL_FORMED = 1;
const INVALID_INPUT = new Set([NOT_WELL_FORMED, 3, 4]);

/** How xmllint names its input when it reads stdin, at the start of each message. */
const STDIN = '-';

/**
 * Both ends of a new FIFO, opened here before xmllint starts, so neither side
 * ever waits in open() for the other: had xmllint opened the FIFO itself, an
 * exporter killed before it got there would leave it waiting for a writer for
 * ever. The read end is opened first without blocking (a FIFO opens for
 * writing only once it has a reader), then the blocking ends; the FIFO's name
 * is removed at once, so nothing is left behind whatever happens next.
 */
function openFifo(): { readFd: number; writeFd: number } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'herald-xmllint-'));
  const fifo = path.join(dir, 'envelope.xml');
  let probe: number | undefined;
  let writeFd: number | undefined;
  try {
    const made = spawnSync('mkfifo', ['-m', '600', fifo], { encoding: 'utf8' });
    if (made.status !== 0) throw new Error(`cannot make a FIFO for ${XMLLINT} (mkfifo: ${(made.stderr || made.error?.message || '').trim()})`);
    probe = fs.openSync(fifo, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
    writeFd = fs.openSync(fifo, fs.constants.O_WRONLY);
    const readFd = fs.openSync(fifo, fs.constants.O_RDONLY);
    return { readFd, writeFd };
  } catch (err) {
    if (writeFd !== undefined) fs.closeSync(writeFd);
    throw err;
  } finally {
    if (probe !== undefined) fs.closeSync(probe);
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

export class XmllintStream {
  private readonly child;
  private readonly input: fs.WriteStream;
  private readonly started = performance.now();
  private readonly issues: ValidationIssue[] = [];
  private count = 0;
  private pendingText = '';
  private overlong = false;
  private readonly stderrHead: string[] = [];
  private readonly done: Promise<StreamResult>;
  private failed: Error | null = null;

  constructor(
    schemaPath: string,
    private readonly maxIssues: number,
  ) {
    const { readFd, writeFd } = openFifo();
    try {
      this.child = spawn(XMLLINT, ['--noout', '--nonet', '--stream', '--schema', schemaPath, '-'], { stdio: [readFd, 'ignore', 'pipe'] });
    } catch (err) {
      fs.closeSync(writeFd);
      throw err;
    } finally {
      // Only xmllint may hold the read end: if it dies, the writes fail
      // (EPIPE) instead of filling a FIFO nobody reads.
      fs.closeSync(readFd);
    }
    // Blocking writes on libuv's thread pool (fs.WriteStream on the FIFO)
    // keep xmllint fed while the main thread renders; see the top of this file.
    this.input = fs.createWriteStream('', { fd: writeFd, highWaterMark: QUEUED_BYTES });
    // A write after xmllint exited (EPIPE) says nothing the exit code does not.
    this.input.on('error', () => undefined);
    this.child.stderr!.setEncoding('utf8');
    this.child.stderr!.on('data', (text: string) => this.read(text));
    this.done = new Promise<StreamResult>((resolve, reject) => {
      this.child.on('error', (err: NodeJS.ErrnoException) => {
        this.failed = err.code === 'ENOENT' ? new Error(XMLLINT_MISSING) : new Error(`${XMLLINT} could not run: ${err.message}`);
        reject(this.failed);
      });
      this.child.on('close', (code, signal) => {
        this.input.destroy();
        if (this.pendingText) this.line(this.pendingText);
        const ms = performance.now() - this.started;
        if (this.failed) return reject(this.failed);
        if (code === 0) return resolve({ issues: this.issues, count: this.count, ms });
        if (code !== null && INVALID_INPUT.has(code)) {
          // xmllint 2.9's reader prints no parser message, only "failed to
          // parse" and exit 1; never reported valid, and said plainly.
          if (code === NOT_WELL_FORMED) this.add({ line: 0, message: 'not well-formed XML: xmllint could not parse it to the end' });
          else if (this.count === 0) this.add({ line: 0, message: `${XMLLINT} rejected the envelope (exit ${code})` });
          return resolve({ issues: this.issues, count: this.count, ms });
        }
        const why = this.stderrHead.join(' ').slice(0, 500);
        reject(new Error(`${XMLLINT} failed (${signal ?? `exit ${code}`})${why ? `: ${why}` : ''}`));
      });
    });
    this.done.catch(() => undefined); // awaited in result(); no unhandled rejection meanwhile
  }

  /** Queues the bytes for xmllint; waits (back-pressure) while QUEUED_BYTES are queued. */
  write(chunk: Buffer): Promise<void> {
    if (this.input.destroyed) return Promise.resolve(); // xmllint has exited: result() says why
    if (this.input.write(chunk)) return Promise.resolve();
    return new Promise((resolve) => {
      const settle = () => {
        this.input.off('drain', settle);
        this.input.off('close', settle);
        resolve();
      };
      this.input.on('drain', settle);
      this.input.on('close', settle);
    });
  }

  /** No more input: xmllint finishes on its own. */
  end(): void {
    if (!this.input.writableEnded) this.input.end();
  }

  /** Ends the input (if not yet ended) and waits for the verdict. */
  result(): Promise<StreamResult> {
    this.end();
    return this.done;
  }

  abort(): void {
    this.child.kill('SIGKILL'); // its close releases the input
  }

  private read(text: string): void {
    let start = 0;
    for (let nl = text.indexOf('\n'); nl >= 0; nl = text.indexOf('\n', start)) {
      this.line(this.pendingText + text.slice(start, nl));
      this.pendingText = '';
      this.overlong = false;
      start = nl + 1;
    }
    if (this.overlong) return;
    this.pendingText += text.slice(start);
    if (this.pendingText.length > LONGEST_KEPT_LINE) {
      this.pendingText = this.pendingText.slice(0, LONGEST_KEPT_LINE);
      this.overlong = true;
    }
  }

  private line(text: string): void {
    const fromInput = text.startsWith(STDIN);
    const m = fromInput ? ISSUE_AFTER_INPUT.exec(text.slice(STDIN.length)) : null;
    if (!m) {
      if (this.stderrHead.length < 5 && text.trim() && !fromInput) this.stderrHead.push(text.trim());
      return;
    }
    const message = m[2]!;
    const issue: ValidationIssue = { line: Number(m[1]), message: tidyMessage(message) };
    const element = elementInMessage(message);
    if (element) issue.element = element;
    this.add(issue);
  }

  private add(issue: ValidationIssue): void {
    this.count++;
    if (this.issues.length < this.maxIssues) this.issues.push(issue);
  }
}
