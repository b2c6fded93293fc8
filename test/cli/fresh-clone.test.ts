import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { expect } from 'chai';
import { ROOT } from '../../bin/compiled.js';
import { runHerald } from '../helpers/cli.js';

// What a newcomer gets from `git clone`: nothing generated is tracked (an
// earlier turn committed .herald/pgdata, whose empty folders git dropped, and
// every command without DATABASE_URL but the demo failed), and the commands
// of the README's first steps work on the embedded database. The clone shares
// this checkout's node_modules (no registry needed) but not its dist/, so it
// also checks that an unbuilt checkout runs its sources.

// What Herald's own commands and scripts write (the demo puts envelopes under .herald/demo).
const GENERATED = ['.herald', 'dist', 'node_modules', 'out', 'test-artifacts'];

describe('cli.fresh-clone (a clone of the repository, no DATABASE_URL)', function () {
  this.timeout(300_000);
  let dir: string;
  let clone: string;

  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'herald-clone-'));
    clone = path.join(dir, 'herald');
    execFileSync('git', ['clone', '--quiet', '--no-hardlinks', ROOT, clone]);
    fs.symlinkSync(path.join(ROOT, 'node_modules'), path.join(clone, 'node_modules'), 'dir');
  });

  after(() => {
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('tracks no generated output', () => {
    const tracked = execFileSync('git', ['-C', clone, 'ls-files'], { encoding: 'utf8' }).split('\n').filter(Boolean);
    const generated = tracked.filter((f) => GENERATED.some((g) => f === g || f.startsWith(`${g}/`)));
    expect(generated).to.deep.equal([]);
    expect(fs.existsSync(path.join(clone, '.herald'))).to.equal(false);
    const ignored = fs.readFileSync(path.join(clone, '.gitignore'), 'utf8').split('\n').map((l) => l.trim().replace(/\/$/, ''));
    for (const g of GENERATED) expect(ignored, `.gitignore lists ${g}`).to.include(g);
  });

  it('migrates and imports a workbasket on the embedded database', async () => {
    const env = { DATABASE_URL: undefined, HERALD_DATA_DIR: undefined, REDIS_URL: undefined };
    const bin = path.join(clone, 'bin', 'herald.js');
    const migrate = await runHerald(['migrate'], { bin, cwd: clone, env });
    expect(migrate.code, migrate.stderr).to.equal(0);
    expect(fs.existsSync(path.join(clone, '.herald', 'pgdata'))).to.equal(true);

    const file = path.join(clone, 'fixtures', 'workbaskets', 'envelopes', 'footnote-type.xml');
    const imported = await runHerald(['workbaskets', 'import', file, '--json'], { bin, cwd: clone, env });
    expect(imported.code, imported.stderr).to.equal(0);

    const listed = await runHerald(['workbaskets', 'list', '--json'], { bin, cwd: clone, env });
    expect(listed.code, listed.stderr).to.equal(0);
    const rows = JSON.parse(listed.stdout) as unknown[];
    expect(rows).to.have.length.greaterThan(0);
  });
});
