import crypto from 'node:crypto';
import { expect } from 'chai';
import { startHmrcSandbox, type HmrcSandbox } from '../../src/sandbox/hmrc.js';

// The HMRC stand-in over real HTTP (fetch): OAuth grants, the strict
// notification contract, request records, and faults queued by function and
// by admin endpoint.

const MEDIA = 'application/vnd.hmrc.1.0+json';
const SRN = 'SRN-TEST-1';

function notification(over: Record<string, unknown> = {}, fileOver: Record<string, unknown> = {}) {
  return {
    informationType: 'EDM',
    correlationID: crypto.randomUUID(),
    file: { fileName: 'DIT260001.xml', fileSize: 1234, checksum: 'd41d8cd98f00b204e9800998ecf8427e', checksumAlgorithm: 'MD5', ...fileOver },
    ...over,
  };
}

describe('sandbox/hmrc', () => {
  let sb: HmrcSandbox;
  let clock = Date.parse('2026-11-02T10:00:00Z');

  async function token(form: Record<string, string> = {}): Promise<Response> {
    return fetch(sb.tokenUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'client_credentials', client_id: 'cid', client_secret: 's3cret', ...form }).toString(),
    });
  }

  async function accessToken(): Promise<string> {
    const res = await token();
    return ((await res.json()) as { access_token: string }).access_token;
  }

  async function notify(body: unknown, opts: { token?: string | null; contentType?: string; accept?: string; srn?: string } = {}): Promise<Response> {
    const headers: Record<string, string> = { 'content-type': opts.contentType ?? MEDIA, accept: opts.accept ?? MEDIA };
    const t = opts.token === undefined ? await accessToken() : opts.token;
    if (t) headers.authorization = `Bearer ${t}`;
    return fetch(`${sb.url}/organisations/notification/files/transfer/ready/${opts.srn ?? SRN}`, {
      method: 'POST',
      headers,
      body: typeof body === 'string' ? body : JSON.stringify(body),
    });
  }

  beforeEach(async () => {
    clock = Date.parse('2026-11-02T10:00:00Z');
    sb = await startHmrcSandbox({ port: 0, clientId: 'cid', clientSecret: 's3cret', srn: SRN, tokenTtlSeconds: 600, now: () => clock });
  });
  afterEach(async () => {
    await sb.close();
  });

  describe('POST /oauth/token', () => {
    it('grants a bearer token for the configured client credentials and counts grants', async () => {
      const res = await token({ scope: 'write:transfer-ready' });
      expect(res.status).to.equal(200);
      const body = (await res.json()) as Record<string, unknown>;
      expect(body).to.include({ token_type: 'bearer', expires_in: 600, scope: 'write:transfer-ready' });
      expect(body.access_token).to.be.a('string').with.length.above(20);
      await token();
      expect(sb.tokenGrants()).to.equal(2);
    });

    it('refuses a wrong secret (401 invalid_client), a wrong grant type, a missing field and an unknown scope', async () => {
      const wrong = await token({ client_secret: 'nope' });
      expect(wrong.status).to.equal(401);
      expect(await wrong.json()).to.include({ error: 'invalid_client' });
      const grant = await token({ grant_type: 'password' });
      expect(grant.status).to.equal(400);
      expect(await grant.json()).to.include({ error: 'unsupported_grant_type' });
      const missing = await token({ client_id: '' });
      expect(missing.status).to.equal(400);
      expect(await missing.json()).to.deep.include({ error: 'invalid_request', error_description: 'client_id is required' });
      const scope = await token({ scope: 'read:everything' });
      expect(scope.status).to.equal(400);
      expect(await scope.json()).to.include({ error: 'invalid_scope' });
      const json = await fetch(sb.tokenUrl, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
      expect(json.status).to.equal(400);
      expect(sb.tokenGrants()).to.equal(0);
    });

    it('records token requests with the client secret redacted', async () => {
      await token();
      const [rec] = sb.requests();
      expect(rec).to.include({ route: 'token', status: 200, fault: null, bearer: false });
      expect(rec!.body).to.deep.include({ client_id: 'cid', client_secret: '[redacted]' });
      expect(JSON.stringify(sb.requests())).not.to.contain('s3cret');
    });
  });

  describe('POST /organisations/notification/files/transfer/ready/{SRN}', () => {
    it('accepts a valid notification with 204 and keeps it', async () => {
      const n = notification();
      const res = await notify(n);
      expect(res.status).to.equal(204);
      expect(sb.notifications()).to.deep.equal([n]);
      const rec = sb.requests().find((r) => r.route === 'notify')!;
      expect(rec).to.include({ status: 204, bearer: true, contentType: MEDIA, accept: MEDIA });
      expect(rec.body).to.deep.equal(n);
    });

    it('accepts the media type with parameters (charset)', async () => {
      const res = await notify(notification(), { contentType: `${MEDIA}; charset=UTF-8` });
      expect(res.status).to.equal(204);
    });

    it('requires a bearer token that it issued and that has not expired', async () => {
      const none = await notify(notification(), { token: null });
      expect(none.status).to.equal(401);
      expect(await none.json()).to.include({ code: 'MISSING_CREDENTIALS' });
      const forged = await notify(notification(), { token: 'not-issued' });
      expect(forged.status).to.equal(401);
      expect(await forged.json()).to.include({ code: 'INVALID_CREDENTIALS' });
      const t = await accessToken();
      clock += 600_000; // exactly the lifetime: expired
      expect((await notify(notification(), { token: t })).status).to.equal(401);
      expect(sb.notifications()).to.have.length(0);
    });

    it('answers a wrong Accept with 406, a wrong Content-Type with 415 and an unknown SRN with 404', async () => {
      const accept = await notify(notification(), { accept: 'application/json' });
      expect(accept.status).to.equal(406);
      expect(await accept.json()).to.include({ field: 'Accept' });
      const type = await notify(notification(), { contentType: 'application/json' });
      expect(type.status).to.equal(415);
      expect(await type.json()).to.include({ field: 'Content-Type' });
      const srn = await notify(notification(), { srn: 'OTHER' });
      expect(srn.status).to.equal(404);
      expect(await srn.json()).to.include({ field: 'srn' });
      expect(sb.notifications()).to.have.length(0);
    });

    const invalid: [string, unknown, string, RegExp][] = [
      ['body that is not JSON', '{"informationType":', 'body', /not valid JSON/],
      ['informationType other than EDM', notification({ informationType: 'XYZ' }), 'informationType', /must be "EDM"/],
      ['correlationID that is not a UUID', notification({ correlationID: 'upload-1' }), 'correlationID', /UUID/],
      ['missing correlationID', notification({ correlationID: undefined }), 'correlationID', /is required/],
      ['missing file', notification({ file: undefined }), 'file', /is required/],
      ['fileName with a path', notification({}, { fileName: 'a/DIT1.xml' }), 'file.fileName', /bare file name/],
      ['empty fileName', notification({}, { fileName: '' }), 'file.fileName', /empty/],
      ['fileSize as a string', notification({}, { fileSize: '1234' }), 'file.fileSize', /number/],
      ['zero fileSize', notification({}, { fileSize: 0 }), 'file.fileSize', /positive/],
      ['fractional fileSize', notification({}, { fileSize: 1.5 }), 'file.fileSize', /whole/],
      ['checksum that is not MD5 hex', notification({}, { checksum: 'abc' }), 'file.checksum', /32 hexadecimal/],
      ['checksumAlgorithm SHA256', notification({}, { checksumAlgorithm: 'SHA256' }), 'file.checksumAlgorithm', /MD5/],
      ['an unknown top-level field', notification({ extra: 1 }), 'extra', /not a known field/],
      ['an unknown file field', notification({}, { fileType: 'xml' }), 'file.fileType', /not a known field/],
    ];
    for (const [what, body, field, message] of invalid) {
      it(`rejects ${what} with 400 naming ${field}`, async () => {
        const res = await notify(body);
        expect(res.status).to.equal(400);
        const err = (await res.json()) as { field: string; message: string };
        expect(err.field).to.equal(field);
        expect(err.message).to.match(message);
        expect(sb.notifications()).to.have.length(0);
      });
    }
  });

  describe('faults', () => {
    it('answers the next matching requests with queued faults, in order, then normally', async () => {
      sb.inject({ type: 'status', status: 500, body: { code: 'SERVER_ERROR', message: 'boom' } });
      sb.inject({ type: 'status', status: 429, retryAfter: '3', times: 2 });
      const t = await accessToken(); // token requests do not match notify faults
      const first = await notify(notification(), { token: t });
      expect(first.status).to.equal(500);
      expect(await first.json()).to.deep.equal({ code: 'SERVER_ERROR', message: 'boom' });
      for (let i = 0; i < 2; i++) {
        const limited = await notify(notification(), { token: t });
        expect(limited.status).to.equal(429);
        expect(limited.headers.get('retry-after')).to.equal('3');
      }
      expect((await notify(notification(), { token: t })).status).to.equal(204);
      expect(sb.requests().map((r) => r.fault)).to.deep.equal([null, 'status', 'status', 'status', null]);
      expect(sb.notifications()).to.have.length(1);
    });

    it('takes faults given as a start option, before any injected later', async () => {
      await sb.close();
      sb = await startHmrcSandbox({ port: 0, clientId: 'cid', clientSecret: 's3cret', srn: SRN, faults: [{ type: 'status', status: 502, match: 'token' }] });
      sb.inject({ type: 'status', status: 504, match: 'token' });
      expect([(await token()).status, (await token()).status, (await token()).status]).to.deep.equal([502, 504, 200]);
    });

    it('faults the token endpoint when the fault matches token, or any route with any', async () => {
      sb.inject({ type: 'status', status: 503, match: 'token' });
      expect((await token()).status).to.equal(503);
      expect((await token()).status).to.equal(200);
      sb.inject({ type: 'status', status: 400, body: 'plain text', match: 'any' });
      const res = await token();
      expect(res.status).to.equal(400);
      expect(await res.text()).to.equal('plain text');
    });

    it('drops or resets the connection, delays, and hangs until the client gives up', async () => {
      const t = await accessToken();
      sb.inject({ type: 'drop' });
      const dropped = await notify(notification(), { token: t }).catch((e: Error) => e);
      expect(dropped).to.be.instanceOf(Error);
      expect(((dropped as Error).cause as { code?: string }).code).to.equal('UND_ERR_SOCKET');
      sb.inject({ type: 'reset' });
      const reset = await notify(notification(), { token: t }).catch((e: Error) => e);
      expect(((reset as Error).cause as { code?: string }).code).to.equal('ECONNRESET');
      sb.inject({ type: 'latency', ms: 250 });
      const started = Date.now();
      expect((await notify(notification(), { token: t })).status).to.equal(204);
      expect(Date.now() - started).to.be.at.least(240);
      sb.inject({ type: 'hang' });
      const hung = await fetch(`${sb.url}/organisations/notification/files/transfer/ready/${SRN}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${t}`, 'content-type': MEDIA, accept: MEDIA },
        body: JSON.stringify(notification()),
        signal: AbortSignal.timeout(300),
      }).catch((e: Error) => e);
      expect((hung as Error).name).to.equal('TimeoutError');
      expect(sb.requests().filter((r) => r.route === 'notify').map((r) => [r.fault, r.status])).to.deep.equal([
        ['drop', null],
        ['reset', null],
        ['latency', 204],
        ['hang', null],
      ]);
    });

    it('close() ends a hung request at once', async () => {
      const t = await accessToken();
      sb.inject({ type: 'hang' });
      const pending = notify(notification(), { token: t }).catch((e: Error) => e);
      await new Promise((r) => setTimeout(r, 100));
      const started = Date.now();
      await sb.close();
      expect(Date.now() - started).to.be.below(1_000);
      expect(await pending).to.be.instanceOf(Error);
      sb = await startHmrcSandbox({ port: 0, clientId: 'cid', clientSecret: 's3cret', srn: SRN }); // for afterEach
    });
  });

  describe('admin endpoints', () => {
    it('queues faults by POST /__sandbox/faults (one or a list) and shows them with the requests', async () => {
      const queued = await fetch(`${sb.url}/__sandbox/faults`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify([{ type: 'status', status: 500 }, { type: 'status', status: 401, times: 2 }]),
      });
      expect(queued.status).to.equal(204);
      await fetch(`${sb.url}/__sandbox/faults`, { method: 'POST', body: JSON.stringify({ type: 'hang', match: 'token' }) });
      const hung = await fetch(sb.tokenUrl, { method: 'POST', body: 'grant_type=client_credentials', signal: AbortSignal.timeout(300) }).catch((e: Error) => e);
      expect((hung as Error).name).to.equal('TimeoutError');
      const view = (await (await fetch(`${sb.url}/__sandbox/requests`)).json()) as {
        requests: unknown[];
        tokenGrants: number;
        pendingFaults: { status?: number; times: number }[];
      };
      expect(view.pendingFaults.map((f) => [f.status, f.times])).to.deep.equal([
        [500, 1],
        [401, 2],
      ]);
      expect(view.requests).to.have.length(1);
      expect(view.tokenGrants).to.equal(0);
    });

    it('rejects a malformed fault with 400 naming the field', async () => {
      const res = await fetch(`${sb.url}/__sandbox/faults`, { method: 'POST', body: JSON.stringify([{ type: 'hang' }, { type: 'latency', ms: 'slow' }]) });
      expect(res.status).to.equal(400);
      const err = (await res.json()) as { field: string; message: string };
      expect(err.field).to.equal('ms');
      expect(err.message).to.match(/^fault 1: ms/);
      expect(sb.pendingFaults()).to.have.length(0);
    });

    it('forgets requests, notifications, tokens and faults on reset, and clears faults on DELETE', async () => {
      const t = await accessToken();
      await notify(notification(), { token: t });
      sb.inject({ type: 'hang' });
      expect((await fetch(`${sb.url}/__sandbox/faults`, { method: 'DELETE' })).status).to.equal(204);
      expect(sb.pendingFaults()).to.have.length(0);
      sb.inject({ type: 'hang' });
      expect((await fetch(`${sb.url}/__sandbox/reset`, { method: 'POST' })).status).to.equal(204);
      expect([sb.requests().length, sb.notifications().length, sb.tokenGrants(), sb.pendingFaults().length]).to.deep.equal([0, 0, 0, 0]);
      expect((await notify(notification(), { token: t })).status).to.equal(401); // the old token is forgotten
    });

    it('records unknown paths as 404 and never records admin calls', async () => {
      const res = await fetch(`${sb.url}/organisations/notification/files/transfer/complete/${SRN}`, { method: 'POST', body: '{}' });
      expect(res.status).to.equal(404);
      await fetch(`${sb.url}/__sandbox/requests`);
      expect(sb.requests().map((r) => [r.route, r.status])).to.deep.equal([['unknown', 404]]);
    });
  });
});
