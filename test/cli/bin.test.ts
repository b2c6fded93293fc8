import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { expect } from 'chai';
import { ROOT } from '../../bin/compiled.js';
import { runHerald } from '../helpers/cli.js';
import { useTestDb } from '../helpers/db.js';

// The `herald` bin and what a command loads. bin/herald.js runs dist/ when it
// is at least as new as every source, else the sources through tsx; commands
// register without loading what they run (docs/decisions/0004).

const MODULE_LOG_HOOKS = path.join(ROOT, 'test/helpers/module-log.mjs');
// What the tsx loader itself brings when the sources run (no build).
const LOADER_PACKAGES = ['tsx', 'esbuild', 'get-tsconfig', 'resolve-pkg-maps'];

/** The npm packages `herald ARGS` loaded through the ESM loader. */
async function packagesLoaded(args: string[], env: Record<string, string | undefined> = {}): Promise<string[]> {
  const log = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'herald-modules-')), 'loaded.txt');
  const r = await runHerald(args, { env: { ...env, HERALD_MODULE_LOG: log }, nodeArgs: ['--import', MODULE_LOG_HOOKS] });
  expect(r.code, r.stderr).to.equal(0);
  const urls = fs.readFileSync(log, 'utf8').split('\n').filter(Boolean);
  fs.rmSync(path.dirname(log), { recursive: true, force: true });
  const names = urls
    .map((u) => /\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(u)?.[1])
    .filter((n): n is string => Boolean(n) && !LOADER_PACKAGES.includes(n!));
  return [...new Set(names)].sort();
}

describe('cli.bin (the herald bin, --version, lazy command loading)', function () {
  this.timeout(300_000);
  const t = useTestDb(import.meta.url);

  it('prints the package version with --version', async () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string };
    const r = await runHerald(['--version']);
    expect([r.code, r.stdout, r.stderr]).to.deep.equal([0, `${pkg.version}\n`, '']);
  });

  it('lists every command with --help loading no package but commander', async () => {
    expect(await packagesLoaded(['--help'])).to.deep.equal(['commander']);
    expect(await packagesLoaded(['workbaskets', 'import', '--help'])).to.deep.equal(['commander']);
  });

  it('loads only config, database and logger packages for queue status', async () => {
    expect(await packagesLoaded(['queue', 'status'], { DATABASE_URL: t.get().url, REDIS_URL: undefined, LOG_LEVEL: 'warn' })).to.deep.equal(['commander', 'knex', 'pg', 'pino', 'zod']);
  });

  it('shows the report types in report create --help (loaded just for it)', async () => {
    const r = await runHerald(['report', 'create', '--help']);
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stdout).to.match(/Report types:\n {2}uploads +Envelopes uploaded/).and.to.match(/\n {2}invoices +Invoices issued/);
  });

  describe('bin/herald.js', () => {
    let dir: string;
    const main = (where: string) => path.join(dir, where);
    const run = () => spawnSync(process.execPath, [path.join(dir, 'bin', 'herald.js'), 'a', 'b'], { encoding: 'utf8', timeout: 120_000 });
    const setAge = (file: string, secondsAgo: number) => {
      const at = new Date(Date.now() - secondsAgo * 1000);
      fs.utimesSync(file, at, at);
    };

    before(() => {
      // A copy of the bin in a tree of its own: stand-in mains say which one ran.
      dir = fs.mkdtempSync(path.join(os.tmpdir(), 'herald-bin-'));
      fs.mkdirSync(main('bin'));
      for (const f of ['herald.js', 'compiled.js']) fs.copyFileSync(path.join(ROOT, 'bin', f), main(`bin/${f}`));
      fs.symlinkSync(path.join(ROOT, 'node_modules'), main('node_modules'));
      fs.writeFileSync(main('package.json'), '{"type": "module"}\n');
      fs.mkdirSync(main('src/cli'), { recursive: true });
      fs.writeFileSync(main('src/cli/main.ts'), "const args: string[] = process.argv.slice(2);\nconsole.log(`source ${args.join(' ')}`);\n");
    });
    after(() => fs.rmSync(dir, { recursive: true, force: true }));

    it('runs dist/ when it is newer than every source, the sources through tsx when dist/ is older or missing', () => {
      fs.mkdirSync(main('dist/src/cli'), { recursive: true });
      fs.writeFileSync(main('dist/src/cli/main.js'), "console.log(`compiled ${process.argv.slice(2).join(' ')}`);\n");
      setAge(main('src/cli/main.ts'), 60);
      setAge(main('dist/src/cli/main.js'), 30);
      const fresh = run();
      expect([fresh.status, fresh.stdout, fresh.stderr]).to.deep.equal([0, 'compiled a b\n', '']);

      setAge(main('src/cli/main.ts'), 10); // edited after the build
      const stale = run();
      // Not a terminal: no notice on stderr, the sources' output only.
      expect([stale.status, stale.stdout, stale.stderr]).to.deep.equal([0, 'source a b\n', '']);

      fs.rmSync(main('dist'), { recursive: true });
      const missing = run();
      expect([missing.status, missing.stdout]).to.deep.equal([0, 'source a b\n']);
    });
  });
});
