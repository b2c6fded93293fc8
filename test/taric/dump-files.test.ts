import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { useTestDb } from '../helpers/db.js';
import { dumpEnvelopes, type DumpOptions } from '../../src/taric/envelope/dump.js';
import { OversizeTransactionError } from '../../src/taric/envelope/envelope-writer.js';
import { TaricError } from '../../src/taric/errors.js';
import { footnoteTransaction, longFootnoteTransaction, readyWorkbasket } from './support/workbaskets.js';

// What `herald envelopes dump --dir` does to the directory (src/taric/envelope/dump.ts):
// files appear only when the whole dump succeeded, a non-regular file at a
// target is refused and never followed, and a failed dump leaves nothing it wrote.

describe('taric.dump files (--dir is written all or nothing, never through a link)', () => {
  const t = useTestDb(import.meta.url);
  const db = () => t.get().db;
  let root: string;
  let dir: string;
  let outside: string;

  beforeEach(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'herald-dump-files-'));
    dir = path.join(root, 'out');
    fs.mkdirSync(dir);
    outside = path.join(root, 'precious.txt');
    fs.writeFileSync(outside, 'not an envelope\n');
  });
  afterEach(async () => {
    fs.rmSync(root, { recursive: true, force: true });
    await db().raw(`UPDATE workbaskets SET status = 'SENT' WHERE status = 'READY_FOR_EXPORT'`);
  });

  const options = (extra: Partial<DumpOptions> = {}): DumpOptions => ({
    now: new Date('2026-09-01T00:00:00Z'),
    maxEnvelopeBytes: 9000,
    firstTransactionId: 1,
    dir,
    ...extra,
  });

  /** Everything under `dir`, hidden entries included, with each regular file's text. */
  function listing(): Record<string, string> {
    const out: Record<string, string> = {};
    for (const name of fs.readdirSync(dir).sort()) {
      const stat = fs.lstatSync(path.join(dir, name));
      out[name] = stat.isFile() ? fs.readFileSync(path.join(dir, name), 'utf8') : stat.isSymbolicLink() ? `-> ${fs.readlinkSync(path.join(dir, name))}` : 'other';
    }
    return out;
  }

  /** The file names the next dump will write (a dump uses no id, so the next one writes the same). */
  async function nextNames(): Promise<string[]> {
    const probe = path.join(root, 'probe');
    const { envelopes } = await dumpEnvelopes(db(), options({ dir: probe }));
    fs.rmSync(probe, { recursive: true, force: true });
    return envelopes.map((e) => path.basename(e.file));
  }

  it('writes the files only at the end and replaces a regular file left by an earlier dump', async () => {
    await readyWorkbasket(db(), Array.from({ length: 4 }, (_, i) => longFootnoteTransaction(i, 2500)), 'several envelopes');
    const names = await nextNames();
    expect(names.length).to.be.at.least(2);
    fs.writeFileSync(path.join(dir, names[0]!), 'stale\n');
    fs.writeFileSync(path.join(dir, 'notes.txt'), 'mine\n');
    const { envelopes } = await dumpEnvelopes(db(), options());
    expect(Object.keys(listing())).to.deep.equal([...names, 'notes.txt'].sort());
    expect(listing()['notes.txt']).to.equal('mine\n');
    expect(fs.statSync(envelopes[0]!.file).size).to.equal(envelopes[0]!.bytes);
  });

  it('refuses a symbolic link at a target, leaving it and the file it points to untouched', async () => {
    await readyWorkbasket(db(), Array.from({ length: 4 }, (_, i) => longFootnoteTransaction(i, 2500)), 'symlink');
    const names = await nextNames();
    // The link sits at the second file: the first envelope is already rendered when it is found.
    fs.symlinkSync(outside, path.join(dir, names[1]!));
    const before = listing();
    const err = await dumpEnvelopes(db(), options()).catch((e: unknown) => e);
    expect(err).to.be.instanceOf(TaricError);
    expect((err as TaricError).code).to.equal('dump_target_not_file');
    expect((err as Error).message).to.equal(
      `${path.join(dir, names[1]!)} exists and is a symbolic link, not a regular file: remove it or dump to another --dir (nothing was written)`,
    );
    expect(listing()).to.deep.equal(before);
    expect(fs.readFileSync(outside, 'utf8')).to.equal('not an envelope\n');
  });

  it('refuses a directory and a fifo at a target', async () => {
    await readyWorkbasket(db(), [footnoteTransaction(1)], 'one envelope');
    const [name] = await nextNames();
    const target = path.join(dir, name!);
    fs.mkdirSync(target);
    const asDir = await dumpEnvelopes(db(), options()).catch((e: Error) => e);
    expect((asDir as Error).message).to.contain(`${target} exists and is a directory, not a regular file`);
    fs.rmdirSync(target);
    execFileSync('mkfifo', [target]);
    const asFifo = await dumpEnvelopes(db(), options()).catch((e: Error) => e);
    expect((asFifo as Error).message).to.contain(`${target} exists and is a fifo, not a regular file`);
    expect(Object.keys(listing())).to.deep.equal([name]);
  });

  it('leaves nothing it wrote when it fails part-way, after several envelopes were rendered', async () => {
    // Three envelopes fit; the fourth transaction cannot fit in one of its own.
    await readyWorkbasket(
      db(),
      [...Array.from({ length: 3 }, (_, i) => longFootnoteTransaction(i, 2500)), longFootnoteTransaction(9, 12_000)],
      'fails late',
    );
    fs.writeFileSync(path.join(dir, 'notes.txt'), 'mine\n');
    const before = listing();
    const err = await dumpEnvelopes(db(), options()).catch((e: unknown) => e);
    expect(err).to.be.instanceOf(OversizeTransactionError);
    expect(listing()).to.deep.equal(before);
  });
});
