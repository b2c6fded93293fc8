import type { ChildProcess } from 'node:child_process';
import { spawnHerald } from '../helpers/cli.js';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import crypto from 'node:crypto';
import { expect } from 'chai';
import { SANDBOXES } from '../../src/sandbox/sandboxes.js';
import { loadConfig } from '../../src/config.js';
import { createHmrcClient, hmrcOptionsFromConfig } from '../../src/exporter/hmrc-client.js';
import { createS3Storage, s3OptionsFromConfig } from '../../src/storage/s3.js';

// `herald sandbox` as a user runs it: a real child process. The env it
// prints must be enough for Herald's own config to reach both servers, and
// a signal must stop it cleanly (exit 0, ports closed).


interface Run {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<number | null>;
}

function herald(args: string[]): Run {
  // A clean env: settings from the developer's shell must not leak in.
  const env = Object.fromEntries(Object.keys(process.env).filter((k) => /^(S3_|HMRC_|HERALD_)/.test(k)).map((k) => [k, undefined]));
  const child = spawnHerald(args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (err += c.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, stdout: () => out, stderr: () => err, exited };
}

async function waitFor<T>(what: string, run: Run, probe: () => T | undefined, ms = 30_000): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    const v = probe();
    if (v !== undefined) return v;
    if (run.child.exitCode !== null) throw new Error(`herald exited (${run.child.exitCode}) before ${what}: ${run.stderr()}`);
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}; stdout: ${run.stdout()} stderr: ${run.stderr()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function refused(url: string): Promise<boolean> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const s = net.connect(Number(port), hostname);
    s.once('connect', () => {
      s.destroy();
      resolve(false);
    });
    s.once('error', (e: NodeJS.ErrnoException) => resolve(e.code === 'ECONNREFUSED'));
  });
}

/** Uses the printed settings the way Herald would: through loadConfig. */
async function useEnv(env: Record<string, string>, dir: string): Promise<void> {
  const config = loadConfig(env);
  const s3 = createS3Storage(s3OptionsFromConfig(config));
  try {
    const file = path.join(dir, 'DIT1.xml');
    fs.writeFileSync(file, crypto.randomBytes(300_000));
    const put = await s3.putObjectFromFile('tohmrc/staging/DIT1.xml', file, { contentType: 'application/xml' });
    expect((await s3.getObjectBuffer('tohmrc/staging/DIT1.xml')).equals(fs.readFileSync(file))).to.equal(true);
    await createHmrcClient(hmrcOptionsFromConfig(config)).notifyTransferReady({
      correlationId: crypto.randomUUID(),
      fileName: 'DIT1.xml',
      fileSize: put.size,
      checksum: put.md5Hex,
    });
  } finally {
    s3.close();
  }
}

describe('sandbox/commands: herald sandbox', function () {
  let dir: string;
  const runs: Run[] = [];

  function start(args: string[]): Run {
    const run = herald(args);
    runs.push(run);
    return run;
  }

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'herald-sandbox-cmd-'));
  });
  afterEach(async () => {
    // No child may outlive its test.
    for (const run of runs.splice(0)) {
      if (run.child.exitCode === null && run.child.signalCode === null) {
        run.child.kill('SIGKILL');
        await run.exited;
      }
    }
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('--json prints URLs and env that Herald reaches both servers with, and SIGTERM stops it with exit 0', async () => {
    const run = start(['sandbox', '--json', '--data-dir', dir, ...SANDBOXES.flatMap((d) => [`--${d.name}-port`, '0'])]);
    const printed = await waitFor('the JSON description', run, () => {
      try {
        return JSON.parse(run.stdout()) as { sandboxes: { name: string; url: string }[]; env: Record<string, string> };
      } catch {
        return undefined;
      }
    });
    expect(printed.sandboxes.map((s) => s.name)).to.deep.equal(SANDBOXES.map((d) => d.name));
    expect(Object.keys(printed.env)).to.include.members([
      'S3_ENDPOINT',
      'S3_BUCKET',
      'S3_ACCESS_KEY_ID',
      'S3_SECRET_ACCESS_KEY',
      'S3_FORCE_PATH_STYLE',
      'S3_CHECKSUM_WHEN_REQUIRED',
      'HMRC_BASE_URL',
      'HMRC_TOKEN_URL',
      'HMRC_CLIENT_ID',
      'HMRC_CLIENT_SECRET',
      'HMRC_SRN',
    ]);
    expect(printed.env).to.include({ S3_FORCE_PATH_STYLE: 'true', S3_CHECKSUM_WHEN_REQUIRED: 'true' });
    for (const s of printed.sandboxes) expect(s.url).to.match(/^http:\/\/127\.0\.0\.1:\d+$/);

    await useEnv(printed.env, dir);
    expect(fs.existsSync(path.join(dir, 's3', printed.env.S3_BUCKET!))).to.equal(true); // data in --data-dir/s3

    run.child.kill('SIGTERM');
    expect(await run.exited).to.equal(0);
    for (const s of printed.sandboxes) expect(await refused(s.url), s.name).to.equal(true);
  });

  it('prints KEY=value lines in text mode and stops on SIGINT', async () => {
    // Every stand-in on port 0: the defaults (4568-4571) may be taken by another suite on this machine.
    const run = start(['sandbox', '--data-dir', dir, ...SANDBOXES.flatMap((d) => [`--${d.name}-port`, '0']), '--bucket', 'my-bucket']);
    await waitFor('the env lines', run, () => (/^HMRC_SRN=.+$/m.test(run.stdout()) ? true : undefined));
    const env = Object.fromEntries(
      run
        .stdout()
        .split('\n')
        .filter((l) => /^[A-Z0-9_]+=/.test(l))
        .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
    ) as Record<string, string>;
    expect(env.S3_BUCKET).to.equal('my-bucket');
    await useEnv(env, dir);
    run.child.kill('SIGINT');
    expect(await run.exited).to.equal(0);
    expect(run.stderr()).to.contain('herald sandbox: stopped');
  });

  it('rejects a bad port, a non-loopback host and a port in use, each with one line naming the option', async () => {
    const taken = net.createServer();
    await new Promise<void>((r) => taken.listen(0, '127.0.0.1', () => r()));
    const port = (taken.address() as net.AddressInfo).port;
    try {
      // Three processes at once: each pays tsx's start-up.
      const badPort = start(['sandbox', '--s3-port', '70000']);
      const badHost = start(['sandbox', '--host', '0.0.0.0', '--data-dir', dir]);
      const busy = start(['sandbox', '--data-dir', dir, '--s3-port', '0', '--hmrc-port', String(port)]);
      const [portCode, hostCode, busyCode] = await Promise.all([badPort.exited, badHost.exited, busy.exited]);

      expect(portCode).to.not.equal(0);
      expect(badPort.stderr().split('\n')[0]).to.contain('--s3-port must be a port number from 0 to 65535');
      expect(hostCode).to.equal(2);
      expect(badHost.stderr().trim()).to.equal('herald: --host must be a loopback address (127.x.x.x, ::1 or localhost), got 0.0.0.0');
      expect(busyCode).to.equal(2);
      expect(busy.stderr().trim()).to.equal(`herald: --hmrc-port ${port} is in use; pick another port (0: any free port)`);
    } finally {
      await new Promise((r) => taken.close(r));
    }
  });

  it('has --help text listing a port option per sandbox and --json', async () => {
    const run = start(['sandbox', '--help']);
    expect(await run.exited).to.equal(0);
    for (const flag of ['--json', '--data-dir', '--s3-port', '--hmrc-port', '--host', '--bucket']) expect(run.stdout()).to.contain(flag);
  });
});
