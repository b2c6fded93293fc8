import { ENVELOPE_FOOTER, HEADER_LINES } from './serialize.js';
import { MAX_ISSUES_PER_ENVELOPE, sharedValidator, type Validator } from './validate.js';
import type { TaskResult, ValidationIssue } from './validation-types.js';
import { XMLLINT_MISSING, XmllintStream, xmllintVersion } from './xmllint.js';

// The XSD check of one envelope while the writer renders it, by either
// validator (docs/decisions/0019):
// - xmllint: the envelope streamed through `xmllint --stream` (xmllint.ts);
// - wasm: each segment wrapped in the envelope's header and footer and
//   validated as a small document by libxml2-wasm in the worker thread
//   (validate.ts), for hosts without xmllint.
// Both see every byte of the file in order and report the file's own lines.

export type XsdValidatorChoice = 'auto' | 'xmllint' | 'wasm';
export type XsdEngine = 'xmllint' | 'wasm';

/** auto: xmllint where it runs, else libxml2-wasm. xmllint when it is missing fails with what to install. */
export function resolveXsdEngine(choice: XsdValidatorChoice): XsdEngine {
  if (choice === 'wasm') return 'wasm';
  if (xmllintVersion() !== null) return 'xmllint';
  if (choice === 'xmllint') throw new Error(XMLLINT_MISSING);
  return 'wasm';
}

export interface SegmentInfo {
  /** The segment starts with the envelope's own header. */
  hasHeader: boolean;
  /** The segment ends with the envelope's own closing tag. */
  last: boolean;
  /** Line of the envelope file where the segment starts. */
  startLine: number;
  /** Transactions that end in this segment. */
  transactions: number;
}

export interface CheckResult {
  issues: ValidationIssue[];
  count: number;
  /** The validator's own time (overlapping rendering). */
  ms: number;
}

export interface EnvelopeCheck {
  /** Every segment of the file, in order; resolves when the next may be sent (back-pressure). */
  segment(buf: Buffer, info: SegmentInfo): Promise<void>;
  /** After the last segment: the verdict. */
  result(): Promise<CheckResult>;
  /** The run failed: stop checking. */
  abort(): void;
}

export function startEnvelopeCheck(engine: XsdEngine, schemaPath: string, header: string): EnvelopeCheck {
  return engine === 'xmllint' ? new StreamCheck(schemaPath) : new ChunkedCheck(sharedValidator(), schemaPath, header);
}

class StreamCheck implements EnvelopeCheck {
  private readonly stream: XmllintStream;

  constructor(schemaPath: string) {
    this.stream = new XmllintStream(schemaPath, MAX_ISSUES_PER_ENVELOPE);
  }

  // The last segment ends xmllint's input, so an envelope's verdict does not
  // wait for the envelopes after it.
  async segment(buf: Buffer, info: SegmentInfo): Promise<void> {
    await this.stream.write(buf);
    if (info.last) this.stream.end();
  }

  result(): Promise<CheckResult> {
    return this.stream.result();
  }

  abort(): void {
    this.stream.abort();
  }
}

class ChunkedCheck implements EnvelopeCheck {
  private readonly validations: Array<Promise<TaskResult>> = [];

  constructor(
    private readonly validator: Validator,
    private readonly schemaPath: string,
    private readonly header: string,
  ) {}

  // The segment wrapped in the envelope's own header and footer where it
  // lacks them: equivalent to validating the whole file, as the schemas have
  // no identity constraints. Waits for a free chunk slot, which bounds the
  // memory queued for validation. A segment of only the header or the
  // closing tag has nothing to validate (alone it would be an envelope
  // without transactions).
  async segment(buf: Buffer, info: SegmentInfo): Promise<void> {
    if (info.transactions === 0) return;
    const { result } = await this.validator.validateChunk({
      schemaPath: this.schemaPath,
      parts: [info.hasHeader ? '' : this.header, buf, info.last ? '' : ENVELOPE_FOOTER],
      prefixLines: info.hasHeader ? 0 : HEADER_LINES,
      firstLine: info.startLine,
      maxIssues: MAX_ISSUES_PER_ENVELOPE,
    });
    result.catch(() => undefined); // awaited in result(); no unhandled rejection meanwhile
    this.validations.push(result);
  }

  async result(): Promise<CheckResult> {
    const results = await Promise.all(this.validations);
    return {
      issues: results.flatMap((r) => r.issues).slice(0, MAX_ISSUES_PER_ENVELOPE),
      count: results.reduce((n, r) => n + r.count, 0),
      ms: results.reduce((n, r) => n + r.ms, 0),
    };
  }

  // Chunks already queued finish on their own; their results are dropped.
  abort(): void {}
}
