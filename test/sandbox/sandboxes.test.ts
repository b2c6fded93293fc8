import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { SandboxStartError, hmrcSandbox, s3Sandbox, startSandboxes, type StartedSandboxes, SANDBOXES } from '../../src/sandbox/sandboxes.js';

// startSandboxes in-process, as the demo uses it.

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

describe('sandbox/sandboxes: startSandboxes', () => {
  let dir: string;
  let started: StartedSandboxes | undefined;

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'herald-sandboxes-'));
  });
  afterEach(async () => {
    await started?.close();
    started = undefined;
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('starts every sandbox on free loopback ports with merged env and typed handles', async () => {
    started = await startSandboxes({ dataDir: dir, s3Bucket: 'demo-bucket', hmrc: { srn: 'SRN-DEMO' } });
    expect(started.list.map((s) => s.name)).to.deep.equal(SANDBOXES.map((d) => d.name));
    expect(started.env).to.include({ S3_BUCKET: 'demo-bucket', HMRC_SRN: 'SRN-DEMO', S3_ENDPOINT: started.handle(s3Sandbox).url });
    expect(started.env.HMRC_TOKEN_URL).to.equal(`${started.handle(hmrcSandbox).url}/oauth/token`);
    // The typed handle is the live server: its fault queue is reachable.
    started.handle(hmrcSandbox).inject({ type: 'status', status: 500 });
    expect(started.handle(hmrcSandbox).pendingFaults()).to.have.length(1);
    expect(fs.existsSync(path.join(dir, 's3', 'demo-bucket'))).to.equal(true);
  });

  it('starts only the sandboxes asked for', async () => {
    started = await startSandboxes({ dataDir: dir, only: ['hmrc'] });
    expect(started.list.map((s) => s.name)).to.deep.equal(['hmrc']);
    expect(() => started!.handle(s3Sandbox)).to.throw('sandbox s3 is not running');
  });

  it('closes the sandboxes already started when a later one fails, and says which failed', async () => {
    const taken = net.createServer();
    await new Promise<void>((r) => taken.listen(0, '127.0.0.1', () => r()));
    const port = (taken.address() as net.AddressInfo).port;
    const s3Port = await new Promise<number>((resolve) => {
      const probe = net.createServer().listen(0, '127.0.0.1', () => {
        const p = (probe.address() as net.AddressInfo).port;
        probe.close(() => resolve(p));
      });
    });
    try {
      const err = await startSandboxes({ dataDir: dir, ports: { s3: s3Port, hmrc: port } }).catch((e: unknown) => e);
      expect(err).to.be.instanceOf(SandboxStartError);
      expect(err).to.include({ sandbox: 'hmrc', port, code: 'EADDRINUSE' });
      expect(await refused(`http://127.0.0.1:${s3Port}`)).to.equal(true);
    } finally {
      await new Promise((r) => taken.close(r));
    }
  });
});
