import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { TransientError } from '../../src/jobs/contract/errors.js';
import { startS3Server, type S3Server } from '../../src/sandbox/s3-server.js';
import { createS3Storage, type S3Storage } from '../../src/storage/s3.js';

// The local S3-compatible server itself: data survives a restart on the same
// directory, faults hit only the requests they match, and close() does not
// wait for a hung request.

describe('sandbox/s3-server', () => {
  let dir: string;
  let file: string;
  const servers: S3Server[] = [];
  const clients: S3Storage[] = [];

  async function start(over: Partial<Parameters<typeof startS3Server>[0]> = {}): Promise<S3Server> {
    const s = await startS3Server({ port: 0, directory: path.join(dir, 'data'), buckets: ['b-one'], ...over });
    servers.push(s);
    return s;
  }

  function client(server: S3Server, timeoutMs = 10_000): S3Storage {
    const c = createS3Storage({
      endpoint: server.url,
      region: 'eu-west-2',
      bucket: 'b-one',
      credentials: { accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey },
      forcePathStyle: true,
      checksumWhenRequired: true,
      timeoutMs,
      maxAttempts: 1,
    });
    clients.push(c);
    return c;
  }

  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'herald-s3-server-'));
    file = path.join(dir, 'DIT1.xml');
    fs.writeFileSync(file, crypto.randomBytes(100_000));
  });
  afterEach(async () => {
    for (const c of clients.splice(0)) c.close();
    await Promise.all(servers.splice(0).map((s) => s.close()));
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('listens on loopback, creates its buckets in the directory, and keeps objects across a restart', async () => {
    const first = await start();
    expect(first.url).to.match(/^http:\/\/127\.0\.0\.1:\d+$/);
    await client(first).putObjectFromFile('k/DIT1.xml', file, { contentType: 'application/xml' });
    await first.close();
    servers.splice(servers.indexOf(first), 1);

    const second = await start();
    const back = await client(second).getObjectBuffer('k/DIT1.xml');
    expect(back.equals(fs.readFileSync(file))).to.equal(true);
    expect(fs.readdirSync(path.join(dir, 'data'))).to.include('b-one');
  });

  it('applies a fault to the next N matching requests only, in queue order', async () => {
    const server = await start({ directory: path.join(dir, 'faults') });
    const c = client(server);
    await c.putObjectFromFile('f/DIT1.xml', file, { contentType: 'application/xml' });
    server.inject({ type: 'status', status: 500, match: 'HEAD', times: 2 });
    server.inject({ type: 'status', status: 503, match: 'HEAD' });
    // A GET does not match a HEAD fault.
    expect((await c.getObjectBuffer('f/DIT1.xml')).length).to.equal(100_000);
    for (let i = 0; i < 3; i++) await c.headObject('f/DIT1.xml').catch(() => undefined);
    expect((await c.headObject('f/DIT1.xml'))?.size).to.equal(100_000);
    const heads = server.requests().filter((r) => r.method === 'HEAD');
    expect(heads.map((r) => r.fault)).to.deep.equal(['status', 'status', 'status', null]);
  });

  it('takes faults given as a start option', async () => {
    const server = await start({ directory: path.join(dir, 'opt'), faults: [{ type: 'status', status: 503, match: 'PUT' }] });
    const c = client(server);
    const err = await c.putObjectFromFile('o/DIT1.xml', file, { contentType: 'application/xml' }).catch((e: unknown) => e);
    expect((err as Error).message).to.contain('SlowDown');
    await c.putObjectFromFile('o/DIT1.xml', file, { contentType: 'application/xml' });
    expect(server.requests().map((r) => [r.method, r.fault])).to.deep.equal([
      ['PUT', 'status'],
      ['PUT', null],
    ]);
  });

  it('delays a request by a latency fault and then answers it normally', async () => {
    const server = await start({ directory: path.join(dir, 'latency') });
    const c = client(server);
    await c.putObjectFromFile('l/DIT1.xml', file, { contentType: 'application/xml' });
    server.inject({ type: 'latency', ms: 300, match: 'GET' });
    const started = Date.now();
    expect((await c.getObjectBuffer('l/DIT1.xml')).length).to.equal(100_000);
    expect(Date.now() - started).to.be.at.least(290);
  });

  it('hangs a request until the client gives up, and close() ends it without waiting', async () => {
    const server = await start({ directory: path.join(dir, 'hang') });
    server.inject({ type: 'hang', match: 'HEAD' });
    const err = await client(server, 500).headObject('h.xml').catch((e: unknown) => e);
    expect(err).to.be.instanceOf(TransientError);

    server.inject({ type: 'hang', match: 'HEAD' });
    const pending = client(server, 30_000).headObject('h.xml').catch((e: unknown) => e);
    await new Promise((r) => setTimeout(r, 100));
    const started = Date.now();
    await server.close();
    servers.splice(servers.indexOf(server), 1);
    expect(Date.now() - started).to.be.below(1_000);
    expect(await pending).to.be.instanceOf(TransientError);
  });
});
