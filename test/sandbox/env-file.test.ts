import { execFileSync } from 'node:child_process';
import { spawnHerald } from '../helpers/cli.js';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseEnv } from 'node:util';
import { expect } from 'chai';
import { loadConfig } from '../../src/config.js';
import { EnvFileError, formatEnvFile, writeEnvFile } from '../../src/sandbox/env-file.js';
import { SANDBOXES } from '../../src/sandbox/sandboxes.js';

// `herald sandbox --write-env-file PATH`: the settings it prints, as a file
// that node's own .env parser (the one behind `node --env-file`) reads back
// to the same values, mode 0600, replacing only regular files.


function mode(file: string): number {
  return fs.statSync(file).mode & 0o777;
}

describe('sandbox/env-file: writing the sandbox settings for .env use', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'herald-env-file-'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('formats KEY=value lines that node reads back to the same values, under # header lines', () => {
    const env = { S3_ENDPOINT: 'http://127.0.0.1:4568', HMRC_TOKEN_URL: 'http://127.0.0.1:4569/oauth/token', S3_FORCE_PATH_STYLE: 'true', HMRC_SRN: 'SANDBOX-SRN-0001', EMPTY: '' };
    const text = formatEnvFile(env, ['made by a test', 'second line']);
    expect(text.split('\n').slice(0, 2)).to.deep.equal(['# made by a test', '# second line']);
    expect(parseEnv(text)).to.deep.equal(env);
  });

  it('refuses values that .env readers would read differently, and bad names', () => {
    expect(() => formatEnvFile({ A: 'two words' })).to.throw(EnvFileError, 'A: its value needs quoting');
    expect(() => formatEnvFile({ B: 'x#y' })).to.throw(EnvFileError, 'B: its value needs quoting');
    expect(() => formatEnvFile({ C: '$HOME' })).to.throw(EnvFileError, 'C: its value needs quoting');
    expect(() => formatEnvFile({ 'bad-name': 'x' })).to.throw(EnvFileError, 'bad-name: not a valid setting name');
  });

  it('writes a new file with mode 0600 even under a permissive umask', () => {
    const file = path.join(dir, '.env');
    const old = process.umask(0);
    try {
      writeEnvFile(file, 'A=1\n');
    } finally {
      process.umask(old);
    }
    expect(fs.readFileSync(file, 'utf8')).to.equal('A=1\n');
    expect(mode(file)).to.equal(0o600);
    expect(fs.readdirSync(dir), 'no temporary file left').to.deep.equal(['.env']);
  });

  it('replaces a regular file (content and a wider mode)', () => {
    const file = path.join(dir, '.env');
    fs.writeFileSync(file, 'OLD=1\n', { mode: 0o644 });
    fs.chmodSync(file, 0o644);
    writeEnvFile(file, 'NEW=2\n');
    expect(fs.readFileSync(file, 'utf8')).to.equal('NEW=2\n');
    expect(mode(file)).to.equal(0o600);
  });

  it('refuses a directory, a symbolic link and a named pipe, changing nothing', () => {
    const sub = path.join(dir, 'sub');
    fs.mkdirSync(sub);
    expect(() => writeEnvFile(sub, 'A=1\n')).to.throw(EnvFileError, `${sub} is a directory`);
    expect(fs.readdirSync(sub)).to.deep.equal([]);

    const target = path.join(dir, 'target');
    fs.writeFileSync(target, 'KEEP=1\n');
    const link = path.join(dir, 'link');
    fs.symlinkSync(target, link);
    expect(() => writeEnvFile(link, 'A=1\n')).to.throw(EnvFileError, `${link} is a symbolic link`);
    expect(fs.readFileSync(target, 'utf8')).to.equal('KEEP=1\n');
    expect(fs.lstatSync(link).isSymbolicLink()).to.equal(true);

    const fifo = path.join(dir, 'fifo');
    execFileSync('mkfifo', [fifo]);
    expect(() => writeEnvFile(fifo, 'A=1\n')).to.throw(EnvFileError, `${fifo} is a named pipe`);
    expect(fs.lstatSync(fifo).isFIFO()).to.equal(true);
    expect(fs.readdirSync(dir).sort()).to.deep.equal(['fifo', 'link', 'sub', 'target']);
  });

  it('names a missing directory', () => {
    const file = path.join(dir, 'no', 'such', '.env');
    expect(() => writeEnvFile(file, 'A=1\n')).to.throw(EnvFileError, `directory ${path.join(dir, 'no', 'such')} does not exist`);
  });

  describe('herald sandbox --write-env-file (a real process)', () => {
    function herald(args: string[]) {
      const env = Object.fromEntries(Object.keys(process.env).filter((k) => /^(S3_|HMRC_|HERALD_|PROVIDER_)/.test(k)).map((k) => [k, undefined]));
      const child = spawnHerald(args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
      child.stderr!.on('data', (c: Buffer) => (err += c.toString()));
      // A signal name when it died of one, so a failure says which.
      const exited = new Promise<number | string | null>((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal)));
      return { child, exited, stdout: () => out, stderr: () => err };
    }
    const ports = SANDBOXES.flatMap((d) => [`--${d.name}-port`, '0']);
    let running: ReturnType<typeof herald> | undefined;
    afterEach(async () => {
      if (running && running.child.exitCode === null && running.child.signalCode === null) {
        running.child.kill('SIGKILL');
        await running.exited;
      }
      running = undefined;
    });

    it('writes a new file holding exactly the settings it prints, which Herald loads', async () => {
      const file = path.join(dir, '.env.sandbox'); // does not exist yet: the case node's own --env-file flag would kill
      // A local: afterEach clears `running` while a timed-out test's timer may still fire.
      const run = herald(['sandbox', '--json', '--data-dir', path.join(dir, 'data'), '--write-env-file', file, ...ports]);
      running = run;
      const printed = await new Promise<{ env: Record<string, string>; envFile: string }>((resolve, reject) => {
        const timer = setInterval(() => {
          try {
            resolve(JSON.parse(run.stdout()));
            clearInterval(timer);
          } catch {
            if (run.child.exitCode !== null || run.child.signalCode !== null) {
              clearInterval(timer);
              reject(new Error(`herald exited ${run.child.exitCode ?? run.child.signalCode}: ${run.stderr()}`));
            }
          }
        }, 50);
      });
      expect(printed.envFile).to.equal(file);
      expect(mode(file)).to.equal(0o600);
      const written = parseEnv(fs.readFileSync(file, 'utf8'));
      expect(written).to.deep.equal(printed.env);
      expect(Object.keys(written)).to.include.members(['S3_ENDPOINT', 'HMRC_BASE_URL', 'PROVIDER_PAC_BASE_URL', 'PROVIDER_INVOICING_BASE_URL']);
      const config = loadConfig(written);
      expect(config.S3_ENDPOINT).to.equal(printed.env.S3_ENDPOINT);
      expect(config.S3_FORCE_PATH_STYLE).to.equal(true);
      running.child.kill('SIGTERM');
      expect(await running.exited).to.equal(0);
    });

    it('refuses a directory with one line and exit 2 before starting any sandbox', async () => {
      running = herald(['sandbox', '--data-dir', path.join(dir, 'data'), '--write-env-file', dir, ...ports]);
      expect(await running.exited).to.equal(2);
      expect(running.stderr()).to.equal(`herald: --write-env-file: ${dir} is a directory; name a regular file (it is replaced) or a new one\n`);
      expect(running.stdout()).to.equal('');
      expect(fs.existsSync(path.join(dir, 'data')), 'no sandbox started').to.equal(false);
    });
  });
});
