import { Writable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import type { Knex } from 'knex';
import pino, { type Logger } from 'pino';
import { wire } from '../../src/cli/wiring.js';
import { loadConfig } from '../../src/config.js';
import type { RoutesPlugin } from '../../src/http/route-types.js';
import { buildServer } from '../../src/http/server.js';

// /admin tests against a real server on port 0 over real HTTP (fetch): a
// tiny browser with a cookie jar, an optional X-Forwarded-For (the client
// address when the server trusts the proxy) and a settable clock.

export const PASSWORD = 'correct horse battery';

export interface AdminServer {
  app: FastifyInstance;
  base: string;
  /** Every log line the server wrote, parsed. */
  logs: Record<string, unknown>[];
  clock: { now: Date };
}

/** `plugins`: default, every route of the composition root (the admin pages among them). */
export async function adminServer(db: Knex, env: Record<string, string> = {}, plugins?: readonly RoutesPlugin[]): Promise<AdminServer> {
  const logs: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString('utf8').split('\n')) if (line) logs.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  const log: Logger = pino({ level: 'info' }, sink);
  // Starts at the real time: the `herald admin` commands the tests run judge
  // these sessions by the real clock (a fixed date here made every session
  // look expired once that date was 8 hours past). Tests move it forward.
  const clock = { now: new Date(Math.floor(Date.now() / 1000) * 1000) };
  const config = loadConfig({}, { ADMIN_SESSION_SECRET: 'admin-session-secret-for-tests-0123456789', ...env });
  const app = await buildServer({ db, config, log, processMetrics: false, plugins: plugins ?? wire({ config, log }).routes, now: () => clock.now });
  const base = await app.listen({ host: '127.0.0.1', port: 0 });
  return { app, base, logs, clock };
}

export interface Answer {
  status: number;
  headers: Headers;
  body: string;
  /** Set-Cookie lines of this answer. */
  setCookies: string[];
}

export class Browser {
  readonly jar = new Map<string, string>();
  constructor(
    private readonly base: string,
    /** Sent as X-Forwarded-For / X-Forwarded-Proto when set. */
    readonly forwarded: { for?: string; proto?: string } = {},
  ) {}

  async request(method: 'GET' | 'POST', path: string, form?: Record<string, string>): Promise<Answer> {
    const headers: Record<string, string> = {};
    if (this.jar.size) headers.cookie = [...this.jar].map(([k, v]) => `${k}=${v}`).join('; ');
    if (this.forwarded.for) headers['x-forwarded-for'] = this.forwarded.for;
    if (this.forwarded.proto) headers['x-forwarded-proto'] = this.forwarded.proto;
    if (form) headers['content-type'] = 'application/x-www-form-urlencoded';
    const res = await fetch(`${this.base}${path}`, { method, headers, body: form ? new URLSearchParams(form).toString() : undefined, redirect: 'manual' });
    const setCookies = res.headers.getSetCookie();
    for (const line of setCookies) {
      const [pair = ''] = line.split(';');
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq);
      const value = pair.slice(eq + 1);
      if (value === '' || /expires=Thu, 01 Jan 1970/i.test(line)) this.jar.delete(name);
      else this.jar.set(name, value);
    }
    return { status: res.status, headers: res.headers, body: await res.text(), setCookies };
  }

  async csrf(): Promise<string> {
    const page = await this.request('GET', '/admin/login');
    const token = /name="_csrf" value="([^"]+)"/.exec(page.body)?.[1];
    if (!token) throw new Error(`no CSRF token on the login page (${page.status})`);
    return token;
  }

  async login(fields: { name?: string; password?: string; apiKey?: string }): Promise<Answer> {
    const _csrf = await this.csrf();
    return this.request('POST', '/admin/login', { _csrf, next: '/admin', ...fields } as Record<string, string>);
  }

  /** A form post from a logged-in page (CSRF token of the session's cookie). */
  async post(path: string, fields: Record<string, string> = {}): Promise<Answer> {
    return this.request('POST', path, { _csrf: await this.csrf(), ...fields });
  }
}
