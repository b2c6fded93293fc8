import { expect } from 'chai';
import { useTestDb } from '../helpers/db.js';
import { startApi, type Api } from '../invoices/support.js';
import { createApiKey, ApiKeyVerifier } from '../../src/http/api-keys.js';
import { revokeApiKey } from '../../src/http/store.js';
import knexFactory from 'knex';
import { buildServer } from '../../src/http/server.js';
import type { RoutesPlugin } from '../../src/http/route-types.js';
import { loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/log.js';

describe('http.server', () => {
  const t = useTestDb(import.meta.url);
  let api: Api;

  // A route plugin that fails like a bug would, to see what clients get.
  const boom: RoutesPlugin = async (app) => {
    app.get('/boom', async () => {
      throw new Error('relation "secret_table" does not exist at /srv/herald/src/x.ts:12');
    });
    app.post('/echo', async (req) => ({ got: req.body }));
  };

  before(async () => {
    api = await startApi(t.get().db, { plugins: [boom] });
  });
  after(async () => {
    await api.app.close();
  });

  it('refuses a request without an API key with 401 and the catalogue body', async () => {
    const res = await api.app.inject({ method: 'GET', url: '/boom' });
    expect(res.statusCode).to.equal(401);
    expect(res.json()).to.include({ statusCode: 401, code: 'UNAUTHORIZED' });
  });

  it('refuses an unknown key and a key without the hk_ prefix', async () => {
    for (const authorization of ['Bearer hk_notakey', 'Bearer something-else', 'Token hk_x']) {
      const res = await api.app.inject({ method: 'GET', url: '/boom', headers: { authorization } });
      expect(res.statusCode, authorization).to.equal(401);
    }
  });

  it('answers a 500 without a stack, driver message or path, quoting the request id', async () => {
    const res = await api.app.inject({ method: 'GET', url: '/boom', headers: api.auth });
    expect(res.statusCode).to.equal(500);
    const body = res.json();
    expect(body.code).to.equal('INTERNAL');
    expect(res.body).not.to.contain('secret_table').and.not.to.contain('/srv/herald').and.not.to.contain('at ');
    expect(body.message).to.contain(body.requestId);
  });

  it('answers an unknown route with 404 ROUTE_NOT_FOUND', async () => {
    const res = await api.app.inject({ method: 'GET', url: '/nowhere', headers: api.auth });
    expect(res.statusCode).to.equal(404);
    expect(res.json().code).to.equal('ROUTE_NOT_FOUND');
  });

  it('serves the OpenAPI document without a key', async () => {
    const res = await api.app.inject({ method: 'GET', url: '/openapi.json' });
    expect(res.statusCode).to.equal(200);
    expect(res.json().openapi).to.match(/^3\./);
  });

  it('answers 415 for a body it cannot parse and 413 for one over 1 MiB, in the catalogue shape', async () => {
    const text = await api.app.inject({ method: 'POST', url: '/echo', payload: '<x/>', headers: { ...api.auth, 'content-type': 'application/xml' } });
    expect(text.statusCode).to.equal(415);
    expect(text.json().code).to.equal('UNSUPPORTED_MEDIA_TYPE');
    const big = await api.app.inject({ method: 'POST', url: '/echo', payload: JSON.stringify({ x: 'y'.repeat(1_100_000) }), headers: { ...api.auth, 'content-type': 'application/json' } });
    expect(big.statusCode).to.equal(413);
    expect(big.json().code).to.equal('PAYLOAD_TOO_LARGE');
  });

  it('answers 503 UNAVAILABLE, not 500, when the database cannot be reached', async () => {
    const deadDb = knexFactory({ client: 'pg', connection: 'postgres://postgres@127.0.0.1:1/nowhere', pool: { min: 0, max: 1 }, log: { error() {}, warn() {} } });
    const app = await buildServer({ db: deadDb, config: loadConfig({}), log: createLogger('silent'), plugins: [] });
    try {
      const res = await app.inject({ method: 'GET', url: '/health' });
      expect(res.statusCode).to.equal(503);
      expect(res.json().code).to.equal('UNAVAILABLE');
      expect(res.body).to.not.contain('127.0.0.1');
    } finally {
      await app.close();
      await deadDb.destroy();
    }
  });

  it('answers /health without a key when the database is up', async () => {
    const res = await api.app.inject({ method: 'GET', url: '/health' });
    expect(res.json()).to.deep.equal({ status: 'ok' });
  });

  it('accepts Basic credentials with the key as password (browsers)', async () => {
    const key = await createApiKey(t.get().db, 'browser');
    const basic = Buffer.from(`anyone:${key.key}`).toString('base64');
    const res = await api.app.inject({ method: 'GET', url: '/nowhere', headers: { authorization: `Basic ${basic}` } });
    expect(res.statusCode).to.equal(404);
  });

  it('stores only a SHA-256 of each key', async () => {
    const key = await createApiKey(t.get().db, 'hashed');
    const { rows } = await t.get().db.raw(`SELECT * FROM api_keys WHERE id = ?`, [key.id]);
    expect(JSON.stringify(rows[0])).not.to.contain(key.key.slice(3));
    expect(rows[0].key_hash).to.match(/^[0-9a-f]{64}$/);
    expect(key.key.startsWith(rows[0].key_prefix)).to.equal(true);
  });

  it('stops accepting a revoked key once the cache entry expires', async () => {
    let clock = 1_000_000;
    const verifier = new ApiKeyVerifier(t.get().db, { ttlMs: 30_000, now: () => clock });
    const key = await createApiKey(t.get().db, 'revocable');
    expect(await verifier.verify(key.key)).to.deep.equal({ id: key.id, name: 'revocable' });
    await revokeApiKey(t.get().db, 'revocable');
    expect(await verifier.verify(key.key), 'still cached').to.not.equal(null);
    clock += 30_001;
    expect(await verifier.verify(key.key)).to.equal(null);
  });
});
