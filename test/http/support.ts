import crypto from 'node:crypto';
import { expect } from 'chai';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import type { Knex } from 'knex';
import { loadConfig } from '../../src/config.js';
import { createApiKey } from '../../src/http/api-keys.js';
import { buildServer } from '../../src/http/server.js';
import { createLogger } from '../../src/log.js';
import { testWiring } from '../helpers/wiring.js';

// Shared by the hostile-input regressions and the generative test.

export const WEBHOOK_SECRET = 'webhook-secret-for-tests-0123456789';

/** The full server as `herald serve` mounts it, with webhook and admin secrets set. */
export async function hostileServer(db: Knex): Promise<{ app: FastifyInstance; auth: { authorization: string } }> {
  const config = loadConfig({}, { PROVIDER_WEBHOOK_SECRET: WEBHOOK_SECRET, ADMIN_SESSION_SECRET: 'admin-session-secret-for-tests-0123456789' });
  const app = await buildServer({ db, config, log: createLogger('silent'), processMetrics: false, plugins: testWiring().routes });
  const key = await createApiKey(db, `hostile-${crypto.randomUUID()}`);
  return { app, auth: { authorization: `Bearer ${key.key}` } };
}

/** A 4xx in Herald's shape (JSON or the HTML error page) that names `field`. */
export function expectRefused(res: LightMyRequestResponse, field: string, status = 400): void {
  expect(res.statusCode, `${field}: ${res.body.slice(0, 300)}`).to.equal(status);
  if (String(res.headers['content-type']).startsWith('text/html')) {
    expect(res.body, 'the HTML error page names the field').to.contain(`${field}:`);
    return;
  }
  const body = res.json();
  expect(body.statusCode).to.equal(status);
  expect(body.field ?? body.message, 'names the field').to.satisfy((f: string) => f === field || body.message.startsWith(`${field}:`));
}
