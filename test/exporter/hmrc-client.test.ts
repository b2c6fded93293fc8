import crypto from 'node:crypto';
import { Writable } from 'node:stream';
import { expect } from 'chai';
import pino from 'pino';
import { loadConfig } from '../../src/config.js';
import {
  HmrcConfigError,
  classifyHmrcError,
  createHmrcClient,
  hmrcOptionsFromConfig,
  parseRetryAfter,
  type HmrcClient,
  type HmrcClientOptions,
  type TransferReady,
} from '../../src/exporter/hmrc-client.js';
import { AuthError, PermanentError, RateLimitedError, TransientError } from '../../src/jobs/contract/errors.js';
import { startHmrcSandbox, type HmrcSandbox } from '../../src/sandbox/hmrc.js';
import { expectRejection } from '../helpers/expect.js';

// The HMRC client against the real HMRC stand-in over HTTP: every error
// class from a real answer (or a real dead connection), token caching and
// refresh driven by a shared fake clock, and no secret in logs or errors.

const CLIENT_ID = 'herald-client-id';
const CLIENT_SECRET = 'super-secret-value-5a1f';
const SRN = 'SRN-1234';

function transfer(over: Partial<TransferReady> = {}): TransferReady {
  return { correlationId: crypto.randomUUID(), fileName: 'DIT260001.xml', fileSize: 4096, checksum: 'd41d8cd98f00b204e9800998ecf8427e', ...over };
}


describe('exporter/hmrc-client', () => {
  let sb: HmrcSandbox;
  let clock: number;
  let logLines: string[];

  function client(over: Partial<HmrcClientOptions> = {}): HmrcClient {
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        logLines.push(chunk.toString());
        done();
      },
    });
    return createHmrcClient(
      { baseUrl: sb.baseUrl, tokenUrl: sb.tokenUrl, clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, srn: SRN, timeoutMs: 1_000, ...over },
      { now: () => clock, log: pino({ level: 'trace' }, sink) },
    );
  }

  beforeEach(async () => {
    clock = Date.parse('2026-11-02T10:00:00Z');
    logLines = [];
    sb = await startHmrcSandbox({ port: 0, clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, srn: SRN, tokenTtlSeconds: 3_600, now: () => clock });
  });
  afterEach(async () => {
    await sb.close();
  });

  it('notifies HMRC with the exact SDES body and headers', async () => {
    const t = transfer();
    await client().notifyTransferReady(t);
    expect(sb.notifications()).to.deep.equal([
      {
        informationType: 'EDM',
        correlationID: t.correlationId,
        file: { fileName: t.fileName, fileSize: t.fileSize, checksum: t.checksum, checksumAlgorithm: 'MD5' },
      },
    ]);
    const rec = sb.requests().find((r) => r.route === 'notify')!;
    expect(rec).to.include({ status: 204, bearer: true, contentType: 'application/vnd.hmrc.1.0+json', accept: 'application/vnd.hmrc.1.0+json' });
  });

  it('uses one token for many calls, sequential and concurrent', async () => {
    const c = client();
    await c.notifyTransferReady(transfer());
    await Promise.all(Array.from({ length: 20 }, () => c.notifyTransferReady(transfer())));
    await c.notifyTransferReady(transfer());
    expect(sb.notifications()).to.have.length(22);
    expect(sb.tokenGrants()).to.equal(1);
  });

  it('fetches a new token shortly before the old one expires, without a 401 first', async () => {
    const c = client();
    await c.notifyTransferReady(transfer());
    clock += 3_600_000 - 61_000; // 61 s left: still used
    await c.notifyTransferReady(transfer());
    expect(sb.tokenGrants()).to.equal(1);
    clock += 2_000; // 59 s left: inside the refresh margin
    await c.notifyTransferReady(transfer());
    expect(sb.tokenGrants()).to.equal(2);
    expect(sb.requests().filter((r) => r.status === 401)).to.have.length(0);
  });

  it('refreshes a short-lived token at half its life', async () => {
    await sb.close();
    sb = await startHmrcSandbox({ port: 0, clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, srn: SRN, tokenTtlSeconds: 10, now: () => clock });
    const c = client();
    await c.notifyTransferReady(transfer());
    clock += 4_000;
    await c.notifyTransferReady(transfer());
    clock += 1_500;
    await c.notifyTransferReady(transfer());
    expect(sb.tokenGrants()).to.equal(2);
  });

  it('on a 401 fetches one new token and retries once, which succeeds', async () => {
    const c = client();
    await c.notifyTransferReady(transfer());
    sb.inject({ type: 'status', status: 401 });
    await c.notifyTransferReady(transfer());
    expect(sb.tokenGrants()).to.equal(2);
    expect(sb.notifications()).to.have.length(2);
  });

  describe('error classes', () => {
    it('500 -> TransientError', async () => {
      sb.inject({ type: 'status', status: 500, body: { code: 'SERVER_ERROR', message: 'down for maintenance' } });
      const err = await expectRejection(client().notifyTransferReady(transfer()), TransientError);
      expect(err.message).to.contain('HTTP 500');
    });

    it('429 with Retry-After seconds -> RateLimitedError with retryAfterMs', async () => {
      sb.inject({ type: 'status', status: 429, retryAfter: '17' });
      const err = await expectRejection(client().notifyTransferReady(transfer()), RateLimitedError);
      expect(err.retryAfterMs).to.equal(17_000);
    });

    it('429 with an HTTP-date Retry-After -> the ms until that date on our clock', async () => {
      sb.inject({ type: 'status', status: 429, retryAfter: new Date(clock + 90_000).toUTCString() });
      const err = await expectRejection(client().notifyTransferReady(transfer()), RateLimitedError);
      expect(err.retryAfterMs).to.equal(90_000);
    });

    it('429 without Retry-After -> RateLimitedError leaving the delay to backoff', async () => {
      sb.inject({ type: 'status', status: 429 });
      const err = await expectRejection(client().notifyTransferReady(transfer()), RateLimitedError);
      expect(err.retryAfterMs).to.equal(undefined);
    });

    it('400 -> PermanentError carrying the response body', async () => {
      sb.inject({ type: 'status', status: 400, body: { code: 'INVALID_REQUEST', message: 'file already notified' } });
      const err = await expectRejection(client().notifyTransferReady(transfer()), PermanentError);
      expect(err.message).to.contain('file already notified');
      expect(err.message).to.contain('HTTP 400');
    });

    it('a request HMRC finds invalid -> PermanentError naming the field', async () => {
      const err = await expectRejection(client().notifyTransferReady(transfer({ checksum: 'not-md5' })), PermanentError);
      expect(err.message).to.contain('file.checksum');
    });

    it('401 again after the one refresh -> AuthError', async () => {
      sb.inject({ type: 'status', status: 401, times: 2 });
      const err = await expectRejection(client().notifyTransferReady(transfer()), AuthError);
      expect(err.nextStep).to.be.a('string');
      expect(sb.tokenGrants()).to.equal(2);
      expect(sb.requests().filter((r) => r.route === 'notify')).to.have.length(2);
    });

    it('403 -> AuthError without a token refresh', async () => {
      sb.inject({ type: 'status', status: 403 });
      await expectRejection(client().notifyTransferReady(transfer()), AuthError);
      expect(sb.tokenGrants()).to.equal(1);
    });

    it('wrong client credentials (token endpoint 401) -> AuthError', async () => {
      const err = await expectRejection(client({ clientSecret: 'wrong' }).notifyTransferReady(transfer()), AuthError);
      expect(err.message).to.contain('token endpoint');
      expect(sb.notifications()).to.have.length(0);
    });

    it('token endpoint 503 -> TransientError, and 429 -> RateLimitedError', async () => {
      sb.inject({ type: 'status', status: 503, match: 'token' });
      await expectRejection(client().notifyTransferReady(transfer()), TransientError);
      sb.inject({ type: 'status', status: 429, retryAfter: '2', match: 'token' });
      const err = await expectRejection(client().notifyTransferReady(transfer()), RateLimitedError);
      expect(err.retryAfterMs).to.equal(2_000);
    });

    it('a dropped connection -> TransientError', async () => {
      sb.inject({ type: 'drop' });
      const err = await expectRejection(client().notifyTransferReady(transfer()), TransientError);
      expect(err.message).to.match(/connection failed/);
    });

    it('a reset connection -> TransientError', async () => {
      sb.inject({ type: 'reset' });
      await expectRejection(client().notifyTransferReady(transfer()), TransientError);
    });

    it('a hung notification -> TransientError after HMRC_TIMEOUT_MS', async () => {
      sb.inject({ type: 'hang' });
      const started = Date.now();
      const err = await expectRejection(client({ timeoutMs: 400 }).notifyTransferReady(transfer()), TransientError);
      expect(Date.now() - started).to.be.within(350, 3_000);
      expect(err.message).to.contain('400 ms');
    });

    it('a hung token endpoint -> TransientError after the timeout', async () => {
      sb.inject({ type: 'hang', match: 'token' });
      const err = await expectRejection(client({ timeoutMs: 400 }).notifyTransferReady(transfer()), TransientError);
      expect(err.message).to.contain('did not answer');
    });

    it('the caller aborting -> TransientError at once', async () => {
      sb.inject({ type: 'hang' });
      const ac = new AbortController();
      setTimeout(() => ac.abort(), 100);
      const started = Date.now();
      await expectRejection(client({ timeoutMs: 30_000 }).notifyTransferReady(transfer(), { signal: ac.signal }), TransientError);
      expect(Date.now() - started).to.be.below(2_000);
    });

    it('HMRC unreachable (connection refused) -> TransientError', async () => {
      const c = client();
      await sb.close();
      const err = await expectRejection(c.notifyTransferReady(transfer()), TransientError);
      expect(err.message).to.contain('ECONNREFUSED');
      sb = await startHmrcSandbox({ port: 0, clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, srn: SRN });
    });
  });

  it('never puts the client secret or a token in logs or error messages', async () => {
    const c = client();
    await c.notifyTransferReady(transfer());
    sb.inject({ type: 'status', status: 401, times: 2 });
    const auth = await c.notifyTransferReady(transfer()).catch((e: Error) => e);
    const denied = await client({ clientSecret: `${CLIENT_SECRET}-old` }).notifyTransferReady(transfer()).catch((e: Error) => e);
    expect(logLines.join('')).to.contain('fetched an HMRC access token'); // the log is being captured
    const tokenBodies = sb.requests().filter((r) => r.route === 'token');
    expect(tokenBodies).to.have.length(3); // first, refresh after the 401, the refused one
    const everything = [logLines.join(''), (auth as Error).message, (denied as Error).message, String((auth as Error).cause)].join('\n');
    expect(everything).not.to.contain(CLIENT_SECRET);
    // Issued tokens are 48 hex characters; none may leak either.
    expect(everything).not.to.match(/[0-9a-f]{48}/);
  });

  describe('configuration and helpers', () => {
    it('reads HMRC_* settings and names every missing one', () => {
      const o = hmrcOptionsFromConfig(
        loadConfig({
          HMRC_BASE_URL: 'https://test-api.example',
          HMRC_TOKEN_URL: 'https://test-api.example/oauth/token',
          HMRC_CLIENT_ID: 'a',
          HMRC_CLIENT_SECRET: 'b',
          HMRC_SRN: 'c',
          HMRC_TIMEOUT_MS: '2500',
        }),
      );
      expect(o).to.deep.equal({ baseUrl: 'https://test-api.example', tokenUrl: 'https://test-api.example/oauth/token', clientId: 'a', clientSecret: 'b', srn: 'c', timeoutMs: 2500 });
      expect(() => hmrcOptionsFromConfig(loadConfig({ HMRC_BASE_URL: 'https://x.example' }))).to.throw(
        HmrcConfigError,
        'HMRC_TOKEN_URL, HMRC_CLIENT_ID, HMRC_CLIENT_SECRET, HMRC_SRN',
      );
    });

    it('parses Retry-After as seconds or an HTTP-date, never negative', () => {
      const now = Date.parse('2026-11-02T10:00:00Z');
      expect(parseRetryAfter('0', now)).to.equal(0);
      expect(parseRetryAfter(' 120 ', now)).to.equal(120_000);
      expect(parseRetryAfter('Mon, 02 Nov 2026 10:00:30 GMT', now)).to.equal(30_000);
      expect(parseRetryAfter('Mon, 02 Nov 2026 09:00:00 GMT', now)).to.equal(0);
      expect(parseRetryAfter('soon', now)).to.equal(undefined);
      expect(parseRetryAfter(null, now)).to.equal(undefined);
    });

    it('classifyHmrcError passes Herald errors through', () => {
      const e = new AuthError('x');
      expect(classifyHmrcError(e)).to.equal(e);
    });
  });
});
