// `npm run bench:envelope [-- options]`: the TARIC envelope pipeline against
// its targets. Builds a ~40 MB export lazily (a generator cycling over a few
// hundred sample transactions, so the input is never held in memory), runs it
// through buildEnvelopes (render + md5 + validate) into a temp file, then
// runs `xmllint --noout --schema xsd/envelope.xsd` on the same file.
// Targets: total / xmllint <= 2.0 and peak RSS <= 3x the envelope size.
//
// Timing split: render and validation overlap (validation runs in an xmllint
// process, or with --validator wasm in a worker thread), so "total" is the
// wall time of the run; "validate" is the validator's own time; "render" is
// the main thread's busy time during the run (event loop utilisation:
// render + md5 + handing bytes to the file and the validator).
// A second, render-only run was tried for the split and dropped: it raised
// the process's peak RSS by ~25 MB, which then no longer described the real
// pipeline.
import { spawnSync } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance as perf } from 'node:perf_hooks';
import { Command, InvalidArgumentError, Option } from 'commander';
import cliProgress from 'cli-progress';
import type { SourceTransaction } from '../../src/taric/model.js';
import { buildEnvelopes, type BuiltEnvelope, type EnvelopeSink } from '../../src/taric/envelope/envelope-writer.js';
import { renderTransaction } from '../../src/taric/envelope/serialize.js';
import { sampleTransactions } from '../../test/taric/support/sample-records.js';
import { resolveXsdEngine, type XsdValidatorChoice } from '../../src/taric/envelope/envelope-check.js';
import { closeSharedValidatorPool, sharedValidator } from '../../src/taric/envelope/validate.js';
import { HERALD_ENVELOPE_XSD } from '../../src/taric/envelope/xsd.js';
import { finish, loadGuard, type Target } from './support.js';

const whole = (name: string, min: number) => (v: string) => {
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < min) throw new InvalidArgumentError(`${name} must be a whole number >= ${min}`);
  return n;
};

const program = new Command('bench:envelope')
  .description('Render, checksum and validate a ~40 MB TARIC export; compare with xmllint')
  .option('--target-bytes <n>', 'approximate size of the export', whole('--target-bytes', 4096), 39_500_000)
  .option('--max-envelope-size <n>', 'envelope size limit in bytes', whole('--max-envelope-size', 4096), 40_000_000)
  .option('--segment-bytes <n>', "bytes per write / validation chunk (default: the writer's, 256 KiB)", whole('--segment-bytes', 1))
  .addOption(new Option('--validator <which>', 'envelope validator (as EXPORTER_XSD_VALIDATOR)').choices(['auto', 'xmllint', 'wasm']).default('auto'))
  .option('--keep', 'keep the envelope files (printed) instead of deleting them')
  .option('--json', 'print the figures as JSON')
  .parse();
const opts = program.opts<{ targetBytes: number; maxEnvelopeSize: number; segmentBytes?: number; validator: XsdValidatorChoice; keep?: boolean; json?: boolean }>();
const engine = resolveXsdEngine(opts.validator);

// A few hundred varied transactions, measured once, replayed with fresh ids
// until the export reaches the target size.
const palette = [...sampleTransactions({ count: 150, seed: 42, records: [1, 8], textLength: 60 })];
const paletteBytes = palette.map((t, i) => renderTransaction(t, 1_000_000 + i, 10_000).bytes);
function* workbasket(target: number): Generator<SourceTransaction> {
  let bytes = 0;
  for (let i = 0; bytes < target; i++) {
    const t = palette[i % palette.length]!;
    bytes += paletteBytes[i % palette.length]!;
    yield { ...t, transactionId: i + 1, workbasketId: 1 };
  }
}

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'herald-bench-'));
function fileSink(file: string): EnvelopeSink {
  const ws = fs.createWriteStream(file);
  return {
    async write(chunk) {
      if (!ws.write(chunk)) await once(ws, 'drain');
    },
    async end() {
      ws.end();
      await once(ws, 'finish');
    },
  };
}

async function run(label: string): Promise<{ envelopes: BuiltEnvelope[]; seconds: number; busySeconds: number }> {
  const bar = process.stderr.isTTY ? new cliProgress.SingleBar({ format: `${label} {bar} {value}/{total} MB` }, cliProgress.Presets.shades_classic) : null;
  bar?.start(Math.round(opts.targetBytes / 1e6), 0);
  let counter = 0;
  const started = performance.now();
  const elu = perf.eventLoopUtilization();
  const envelopes = await buildEnvelopes({
    transactions: workbasket(opts.targetBytes),
    firstTaricTransactionId: 1,
    nextEnvelopeId: () => `26${String(++counter).padStart(4, '0')}`,
    maxEnvelopeBytes: opts.maxEnvelopeSize,
    xsdValidator: engine,
    openSink: (id) => fileSink(path.join(dir, `DIT${id}.xml`)),
    ...(opts.segmentBytes ? { segmentBytes: opts.segmentBytes } : {}),
    onProgress: (p) => bar?.update(Math.round(p.bytes / 1e6)),
  });
  const seconds = (performance.now() - started) / 1000;
  const busySeconds = perf.eventLoopUtilization(elu).active / 1000;
  bar?.stop();
  return { envelopes, seconds, busySeconds };
}

function xmllint(files: string[]): { seconds: number; ok: boolean } | null {
  const started = performance.now();
  const r = spawnSync('xmllint', ['--noout', '--schema', HERALD_ENVELOPE_XSD, ...files], { encoding: 'utf8' });
  if (r.error && (r.error as NodeJS.ErrnoException).code === 'ENOENT') return null;
  return { seconds: (performance.now() - started) / 1000, ok: r.status === 0 };
}

// The wasm worker starts and parses the schema before timing; xmllint
// starts per envelope, which is part of the pipeline.
if (engine === 'wasm') await sharedValidator().prepare();
const watch = loadGuard();
const baselineRssMb = process.memoryUsage().rss / 1024 / 1024;
const full = await run('render+validate');
await closeSharedValidatorPool();
const files = full.envelopes.map((e) => path.join(dir, `DIT${e.envelopeId}.xml`));
const lint = xmllint(files);

const bytes = full.envelopes.reduce((n, e) => n + e.bytes, 0);
const largest = Math.max(...full.envelopes.map((e) => e.bytes));
const onDisk = files.reduce((n, f) => n + fs.statSync(f).size, 0);
const peakRssMb = process.resourceUsage().maxRSS / 1024;
const figures = {
  bytes,
  validator: engine,
  envelopes: full.envelopes.length,
  transactions: full.envelopes.reduce((n, e) => n + e.transactions.length, 0),
  records: full.envelopes.reduce((n, e) => n + e.records, 0),
  valid: full.envelopes.every((e) => e.valid),
  renderSeconds: full.busySeconds,
  validateSeconds: full.envelopes.reduce((n, e) => n + e.validationMs, 0) / 1000,
  totalSeconds: full.seconds,
  xmllintSeconds: lint?.seconds ?? null,
  xmllintValid: lint?.ok ?? null,
  ratio: lint ? full.seconds / lint.seconds : null,
  peakRssMb,
  baselineRssMb,
  rssRatio: (peakRssMb * 1024 * 1024) / largest,
};

if (bytes !== onDisk) {
  process.stderr.write(`reported size ${bytes} differs from the ${onDisk} bytes on disk\n`);
  process.exitCode = 1;
}
if (!figures.valid || lint?.ok === false) process.exitCode = 1;
if (opts.keep) process.stderr.write(`envelopes kept in ${dir}\n`);
else fs.rmSync(dir, { recursive: true, force: true });

const f2 = (n: number | null) => (n === null ? 'n/a' : n.toFixed(2));
if (!opts.json) {
  if (!lint) process.stdout.write('xmllint not found: install it (apt-get install -y libxml2-utils) to compare against it\n');
  const rows: Array<[string, string]> = [
    ['bytes', `${bytes} (${figures.envelopes} envelope(s), ${figures.transactions} transactions, ${figures.records} records)`],
    ['render s', `${f2(figures.renderSeconds)} (main thread busy: render + md5 + write)`],
    ['validate s', `${f2(figures.validateSeconds)} (${engine === 'xmllint' ? 'the xmllint process, start to exit' : "the validation worker's own time"}, overlapped with render)`],
    ['total s', `${f2(figures.totalSeconds)} (wall, render + md5 + write + validate)`],
    ['xmllint s', f2(figures.xmllintSeconds)],
    ['ratio total/xmllint', `${f2(figures.ratio)} (target <= 2.0)`],
    ['peak RSS MB', `${peakRssMb.toFixed(0)} (whole process, worker included; ${baselineRssMb.toFixed(0)} before the run: node and modules${engine === 'wasm' ? ', validation worker' : ''}; xmllint is another process)`],
    ['RSS / envelope size', `${f2(figures.rssRatio)} (target <= 3.0)`],
  ];
  for (const [k, v] of rows) process.stdout.write(`${k.padEnd(20)} ${v}\n`);
  process.stdout.write(
    `envelope bench (${engine}): ${(bytes / 1e6).toFixed(1)} MB, total ${f2(figures.totalSeconds)} s vs xmllint ${f2(figures.xmllintSeconds)} s ` +
      `(ratio ${f2(figures.ratio)}), peak RSS ${peakRssMb.toFixed(0)} MB (${f2(figures.rssRatio)}x), ${figures.valid ? 'valid' : 'INVALID'}\n`,
  );
}
const targets: Record<string, Target> = {
  'render + validate <= 2.0x xmllint': { met: figures.ratio !== null && figures.ratio <= 2.0, value: f2(figures.ratio) },
  'peak RSS <= 3x the envelope': { met: figures.rssRatio <= 3.0, value: f2(figures.rssRatio) },
};
finish(watch.stop(), figures, targets, { jsonOnly: opts.json });
