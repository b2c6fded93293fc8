import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { expect } from 'chai';
import { loadConfig } from '../../src/config.js';
import { AuthError, PermanentError, RateLimitedError, TransientError } from '../../src/jobs/contract/errors.js';
import { startS3Server, type S3Server } from '../../src/sandbox/s3-server.js';
import { startTcpProxy, type TcpProxy } from '../../src/sandbox/tcp-proxy.js';
import { digestBuffer, digestFile } from '../../src/storage/digest.js';
import {
  BodyMismatchError,
  StorageConfigError,
  classifyS3Error,
  createS3Storage,
  s3OptionsFromConfig,
  type S3Storage,
  type S3StorageOptions,
} from '../../src/storage/s3.js';
import { expectRejection } from '../helpers/expect.js';

// The wrapper through the real AWS SDK against the local S3-compatible
// server, with wire faults from the TCP proxy and S3 error answers from the
// server's fault queue. s3rver does not check Content-MD5, so every upload
// is checked here by downloading it and comparing bytes and digests.

const BUCKET = 'herald-test';
const CONTENT_TYPE = 'application/xml';


describe('storage/s3', function () {
  let dir: string;
  let server: S3Server;
  let proxy: TcpProxy;
  let bigFile: string;
  let bigBytes: Buffer;
  const opened: S3Storage[] = [];

  /** A storage client; through the proxy unless told otherwise. */
  function storage(over: Partial<S3StorageOptions> = {}, viaProxy = true): S3Storage {
    const s = createS3Storage({
      endpoint: viaProxy ? proxy.url : server.url,
      region: 'eu-west-2',
      bucket: BUCKET,
      credentials: { accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey },
      forcePathStyle: true,
      checksumWhenRequired: true,
      timeoutMs: 10_000,
      ...over,
    });
    opened.push(s);
    return s;
  }

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'herald-s3-test-'));
    server = await startS3Server({ port: 0, directory: path.join(dir, 'data'), buckets: [BUCKET] });
    proxy = await startTcpProxy({ target: { host: '127.0.0.1', port: server.port } });
    bigBytes = crypto.randomBytes(6 * 1024 * 1024 + 123); // multi-MB, not a round size
    bigFile = path.join(dir, 'DIT260001.xml');
    fs.writeFileSync(bigFile, bigBytes);
  });
  afterEach(async () => {
    for (const s of opened.splice(0)) s.close();
    server.reset();
    proxy.setMode('forward');
    proxy.resetAfterBytes(undefined);
    await proxy.up();
  });
  after(async () => {
    await proxy.close();
    await server.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('puts a multi-MB file and gets back the same bytes, size and MD5', async () => {
    const s3 = storage();
    const put = await s3.putObjectFromFile('tohmrc/staging/DIT260001.xml', bigFile, {
      contentType: CONTENT_TYPE,
      contentDisposition: 'attachment; filename="DIT260001.xml"',
    });
    const expectedMd5 = crypto.createHash('md5').update(bigBytes).digest();
    expect(put.size).to.equal(bigBytes.length);
    expect(put.md5Hex).to.equal(expectedMd5.toString('hex'));
    expect(put.md5Base64).to.equal(expectedMd5.toString('base64'));

    const back = await s3.getObjectBuffer('tohmrc/staging/DIT260001.xml');
    expect(back.length).to.equal(bigBytes.length);
    expect(back.equals(bigBytes)).to.equal(true);
    expect(crypto.createHash('md5').update(back).digest('hex')).to.equal(put.md5Hex);

    const streamed: Buffer[] = [];
    for await (const chunk of await s3.getObjectStream('tohmrc/staging/DIT260001.xml')) streamed.push(chunk as Buffer);
    expect(Buffer.concat(streamed).equals(bigBytes)).to.equal(true);
  });

  it('heads an object with its size, type, disposition and MD5 ETag, and gives null for a missing key', async () => {
    const s3 = storage();
    const put = await s3.putObjectFromFile('heads/DIT1.xml', bigFile, { contentType: CONTENT_TYPE, contentDisposition: 'attachment; filename="DIT1.xml"' });
    const head = await s3.headObject('heads/DIT1.xml');
    expect(head).to.include({ size: bigBytes.length, contentType: CONTENT_TYPE, contentDisposition: 'attachment; filename="DIT1.xml"' });
    expect(head!.etag).to.equal(`"${put.md5Hex}"`);
    expect(head!.lastModified).to.be.instanceOf(Date);
    expect(await s3.headObject('heads/missing.xml')).to.equal(null);
  });

  it('overwriting a key with the same bytes is idempotent: one object, same ETag and bytes', async () => {
    const s3 = storage();
    const first = await s3.putObjectFromFile('idem/DIT2.xml', bigFile, { contentType: CONTENT_TYPE });
    const digest = await digestFile(bigFile);
    const second = await s3.putObjectFromFile('idem/DIT2.xml', bigFile, { contentType: CONTENT_TYPE, digest });
    expect(second.etag).to.equal(first.etag);
    const listed = await s3.client.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: 'idem/' }));
    expect(listed.Contents?.map((o) => [o.Key, o.Size])).to.deep.equal([['idem/DIT2.xml', bigBytes.length]]);
    expect((await s3.getObjectBuffer('idem/DIT2.xml')).equals(bigBytes)).to.equal(true);
  });

  it('checks a given digest against the bytes as they stream: a file that differs -> BodyMismatchError (transient)', async () => {
    const s3 = storage();
    // Same size, other bytes: found once the whole file has streamed (s3rver
    // does not check Content-MD5; real S3 would answer BadDigest, which alone
    // reads as permanent).
    const other = digestBuffer(crypto.randomBytes(bigBytes.length));
    const sameSize = await expectRejection(s3.putObjectFromFile('mismatch/DIT13.xml', bigFile, { contentType: CONTENT_TYPE, digest: other }), BodyMismatchError);
    expect(sameSize).to.be.instanceOf(TransientError);
    expect(sameSize.message).to.include(other.md5Hex).and.include((await digestFile(bigFile)).md5Hex);
    // Another size: refused before any request.
    const longer = digestBuffer(Buffer.concat([bigBytes, Buffer.from('x')]));
    await expectRejection(s3.putObjectFromFile('mismatch/DIT14.xml', bigFile, { contentType: CONTENT_TYPE, digest: longer }), BodyMismatchError);
    expect(server.requests().filter((r) => r.path.includes('DIT14'))).to.deep.equal([]);
    // The right digest: stored.
    const put = await s3.putObjectFromFile('mismatch/DIT13.xml', bigFile, { contentType: CONTENT_TYPE, digest: await digestFile(bigFile) });
    expect(put.md5Hex).to.equal(crypto.createHash('md5').update(bigBytes).digest('hex'));
    expect((await s3.getObjectBuffer('mismatch/DIT13.xml')).equals(bigBytes)).to.equal(true);
  });

  it('deletes an object (and deleting a missing key is not an error, as in S3)', async () => {
    const s3 = storage();
    await s3.putObjectFromFile('del/DIT3.xml', bigFile, { contentType: CONTENT_TYPE });
    await s3.deleteObject('del/DIT3.xml');
    expect(await s3.headObject('del/DIT3.xml')).to.equal(null);
    await s3.deleteObject('del/DIT3.xml');
  });

  it('ensureBucket creates a missing bucket once and leaves an existing one alone', async () => {
    const s3 = storage({ bucket: 'herald-fresh' });
    await s3.ensureBucket();
    await s3.putObjectFromFile('a.xml', bigFile, { contentType: CONTENT_TYPE });
    await s3.ensureBucket();
    expect((await s3.headObject('a.xml'))?.size).to.equal(bigBytes.length);
  });

  it('with the SDK default checksums s3rver stores chunk framing: why S3_CHECKSUM_WHEN_REQUIRED exists', async () => {
    const s3 = storage({ checksumWhenRequired: false });
    await s3.putObjectFromFile('framing/DIT4.xml', bigFile, { contentType: CONTENT_TYPE });
    const good = storage();
    const stored = await good.getObjectBuffer('framing/DIT4.xml');
    expect(stored.equals(bigBytes)).to.equal(false);
    expect(stored.length).to.be.greaterThan(bigBytes.length);
  });

  describe('error classes', () => {
    it('server down (connection refused) -> TransientError; once it is back the same put succeeds', async () => {
      const s3 = storage({ maxAttempts: 1 });
      await proxy.down();
      const err = await expectRejection(s3.putObjectFromFile('down/DIT5.xml', bigFile, { contentType: CONTENT_TYPE }), TransientError);
      expect(err.message).to.match(/PutObject down\/DIT5\.xml/);
      await expectRejection(s3.headObject('down/DIT5.xml'), TransientError);
      await proxy.up();
      await s3.putObjectFromFile('down/DIT5.xml', bigFile, { contentType: CONTENT_TYPE });
      expect((await s3.getObjectBuffer('down/DIT5.xml')).equals(bigBytes)).to.equal(true);
    });

    it('a connection reset in the middle of an upload -> TransientError, and the retry stores the whole file', async () => {
      const s3 = storage();
      proxy.resetAfterBytes(512 * 1024);
      await expectRejection(s3.putObjectFromFile('reset/DIT6.xml', bigFile, { contentType: CONTENT_TYPE }), TransientError);
      proxy.resetAfterBytes(undefined);
      await s3.putObjectFromFile('reset/DIT6.xml', bigFile, { contentType: CONTENT_TYPE });
      expect((await s3.getObjectBuffer('reset/DIT6.xml')).equals(bigBytes)).to.equal(true);
    });

    it('a black-holed connection -> TransientError once the deadline passes', async () => {
      const s3 = storage({ timeoutMs: 700, maxAttempts: 1 });
      proxy.setMode('blackhole');
      const started = Date.now();
      const err = await expectRejection(s3.headObject('hole.xml'), TransientError);
      expect(Date.now() - started).to.be.below(5_000);
      expect(err.message).to.match(/HeadObject hole\.xml/);
    });

    it('the caller aborting -> TransientError without waiting for the deadline', async () => {
      const s3 = storage({ timeoutMs: 60_000, maxAttempts: 1 });
      proxy.setMode('blackhole');
      const ac = new AbortController();
      setTimeout(() => ac.abort(), 100);
      await expectRejection(s3.putObjectFromFile('abort/DIT7.xml', bigFile, { contentType: CONTENT_TYPE, signal: ac.signal }), TransientError);
    });

    it('503 SlowDown -> RateLimitedError', async () => {
      const s3 = storage();
      server.inject({ type: 'status', status: 503, code: 'SlowDown', match: 'PUT' });
      const err = await expectRejection(s3.putObjectFromFile('slow/DIT8.xml', bigFile, { contentType: CONTENT_TYPE }), RateLimitedError);
      expect(err.message).to.match(/SlowDown/);
      expect(server.requests().filter((r) => r.fault === 'status')).to.have.length(1);
    });

    it('500 InternalError on every attempt -> TransientError; the next GET succeeds', async () => {
      const s3 = storage({ maxAttempts: 2 });
      await s3.putObjectFromFile('five/DIT9.xml', bigFile, { contentType: CONTENT_TYPE });
      server.inject({ type: 'status', status: 500, code: 'InternalError', match: 'GET', times: 2 });
      await expectRejection(s3.getObjectBuffer('five/DIT9.xml'), TransientError);
      expect(server.requests().filter((r) => r.fault === 'status')).to.have.length(2); // the SDK retried once
      expect((await s3.getObjectBuffer('five/DIT9.xml')).equals(bigBytes)).to.equal(true);
    });

    it('a wrong access key -> AuthError (InvalidAccessKeyId), also for HEAD without an error body', async () => {
      const s3 = storage({ credentials: { accessKeyId: 'NOT-A-KEY', secretAccessKey: 'S3RVER' } });
      const err = await expectRejection(s3.putObjectFromFile('auth/DIT10.xml', bigFile, { contentType: CONTENT_TYPE }), AuthError);
      expect(err.message).to.match(/InvalidAccessKeyId/);
      await expectRejection(s3.headObject('auth/DIT10.xml'), AuthError);
      expect(await storage().headObject('auth/DIT10.xml')).to.equal(null);
    });

    it('a missing bucket -> PermanentError (NoSuchBucket), for small and multi-MB bodies', async () => {
      const s3 = storage({ bucket: 'no-such-bucket' });
      const small = path.join(dir, 'small.xml');
      fs.writeFileSync(small, '<x/>');
      for (const file of [small, bigFile]) {
        const err = await expectRejection(s3.putObjectFromFile('DIT11.xml', file, { contentType: CONTENT_TYPE }), PermanentError);
        expect(err.message).to.match(/NoSuchBucket/);
      }
    });

    it('400 InvalidArgument -> PermanentError', async () => {
      const s3 = storage();
      server.inject({ type: 'status', status: 400, code: 'InvalidArgument', match: 'PUT' });
      const err = await expectRejection(s3.putObjectFromFile('bad/DIT12.xml', bigFile, { contentType: CONTENT_TYPE }), PermanentError);
      expect(err.message).to.match(/InvalidArgument/);
    });

    it('classifyS3Error passes Herald errors through and keeps the SDK error as cause', () => {
      const already = new PermanentError('x');
      expect(classifyS3Error(already)).to.equal(already);
      const sdk = Object.assign(new Error('Please reduce your request rate.'), { name: 'SlowDown', $metadata: { httpStatusCode: 503 } });
      const classified = classifyS3Error(sdk, { operation: 'PutObject', key: 'k' });
      expect(classified).to.be.instanceOf(RateLimitedError);
      expect(classified.cause).to.equal(sdk);
      expect(classifyS3Error(Object.assign(new Error('x'), { name: 'RequestTimeout', $metadata: { httpStatusCode: 400 } }))).to.be.instanceOf(TransientError);
    });
  });

  describe('s3OptionsFromConfig', () => {
    it('maps the S3_* settings, WHEN_REQUIRED checksums only when asked', () => {
      const o = s3OptionsFromConfig(
        loadConfig({
          S3_ENDPOINT: 'http://127.0.0.1:4568',
          S3_BUCKET: 'b-1',
          S3_ACCESS_KEY_ID: 'k',
          S3_SECRET_ACCESS_KEY: 's',
          S3_FORCE_PATH_STYLE: 'true',
          S3_CHECKSUM_WHEN_REQUIRED: 'true',
          S3_TIMEOUT_MS: '5000',
        }),
      );
      expect(o).to.deep.include({
        endpoint: 'http://127.0.0.1:4568',
        region: 'eu-west-2',
        bucket: 'b-1',
        credentials: { accessKeyId: 'k', secretAccessKey: 's' },
        forcePathStyle: true,
        checksumWhenRequired: true,
        timeoutMs: 5000,
      });
      const aws = s3OptionsFromConfig(loadConfig({ S3_BUCKET: 'b-1' }));
      expect(aws).to.deep.include({ credentials: undefined, forcePathStyle: false, checksumWhenRequired: false, timeoutMs: 120_000 });
    });

    it('names what is missing: the bucket, or the other half of a key pair', () => {
      expect(() => s3OptionsFromConfig(loadConfig({}))).to.throw(StorageConfigError, 'S3_BUCKET');
      expect(() => s3OptionsFromConfig(loadConfig({ S3_BUCKET: 'b-1', S3_ACCESS_KEY_ID: 'k' }))).to.throw(StorageConfigError, 'S3_SECRET_ACCESS_KEY');
    });
  });
});
