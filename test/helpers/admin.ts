import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import type { Knex } from 'knex';
import { createApiKey } from '../../src/http/api-keys.js';
import { grantApiKeyScope } from '../../src/admin/store.js';

// An /admin session for inject(): logs in through the real login form (CSRF
// token and cookies as a browser would carry them) with an admin API key.

export interface AdminSession {
  /** Cookie header carrying the session and the CSRF secret. */
  cookie: string;
  /** The _csrf form field every POST needs. */
  csrf: string;
}

function cookiesOf(res: LightMyRequestResponse, jar: Map<string, string>): void {
  for (const c of res.cookies as { name: string; value: string }[]) jar.set(c.name, c.value);
}

const header = (jar: Map<string, string>) => [...jar].map(([k, v]) => `${k}=${v}`).join('; ');

export async function adminSession(app: FastifyInstance, db: Knex): Promise<AdminSession> {
  const key = await createApiKey(db, `admin-${Math.random().toString(36).slice(2)}`);
  await grantApiKeyScope(db, key.id, 'admin');
  const jar = new Map<string, string>();
  const form = await app.inject({ method: 'GET', url: '/admin/login' });
  cookiesOf(form, jar);
  const csrf = /name="_csrf" value="([^"]+)"/.exec(form.body)?.[1];
  if (!csrf) throw new Error(`no CSRF token on the login page (${form.statusCode})`);
  const login = await app.inject({
    method: 'POST',
    url: '/admin/login',
    headers: { cookie: header(jar), 'content-type': 'application/x-www-form-urlencoded' },
    payload: new URLSearchParams({ _csrf: csrf, apiKey: key.key, next: '/admin' }).toString(),
  });
  if (login.statusCode !== 303) throw new Error(`admin login failed: ${login.statusCode} ${login.body.slice(0, 200)}`);
  cookiesOf(login, jar);
  return { cookie: header(jar), csrf };
}

/** A form post to /admin with the session, the CSRF token and these fields. */
export function adminPost(app: FastifyInstance, s: AdminSession, url: string, fields: Record<string, string> = {}) {
  return app.inject({
    method: 'POST',
    url,
    headers: { cookie: s.cookie, 'content-type': 'application/x-www-form-urlencoded' },
    payload: new URLSearchParams({ _csrf: s.csrf, ...fields }).toString(),
  });
}
