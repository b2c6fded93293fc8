import crypto from 'node:crypto';
import { expect } from 'chai';
import { hashPassword } from '../../src/admin/passwords.js';
import { insertAdminUser } from '../../src/admin/store.js';
import { ConfigError, loadConfig } from '../../src/config.js';
import { createApiKey } from '../../src/http/api-keys.js';
import { useTestDb } from '../helpers/db.js';
import { adminServer, Browser, PASSWORD, type AdminServer } from './support.js';

// Issue 12: no Secure flag, CSP, frame or nosniff headers on /admin. Real
// servers on port 0: one behind a trusted (loopback) proxy, one trusting none.

describe('admin cookies over TLS and security headers', () => {
  const t = useTestDb(import.meta.url);
  let proxied: AdminServer;
  let direct: AdminServer;

  before(async () => {
    const { db } = t.get();
    await insertAdminUser(db, 'operator', await hashPassword(PASSWORD));
    proxied = await adminServer(db, { HTTP_TRUST_PROXY: 'loopback' });
    direct = await adminServer(db, {});
  });
  after(async () => {
    await proxied?.app.close();
    await direct?.app.close();
  });

  /** Content-Security-Policy as directive -> sources. */
  const policy = (res: { headers: Headers }) =>
    Object.fromEntries((res.headers.get('content-security-policy') ?? '').split(';').map((d) => d.trim().split(/\s+/)).map(([k, ...v]) => [k, v.join(' ')]));
  const cookieLines = (lines: string[]) => lines.filter((c) => /^(herald_admin|_csrf)=/.test(c));
  const addresses = async () => ((await t.get().db.raw(`SELECT address FROM admin_sessions ORDER BY created_at, address`)).rows as { address: string }[]).map((r) => r.address);

  it('marks the session and CSRF cookies Secure when a trusted proxy says the request came over https', async () => {
    const b = new Browser(proxied.base, { proto: 'https', for: '198.51.100.9' });
    const form = await b.request('GET', '/admin/login');
    const login = await b.login({ name: 'operator', password: PASSWORD });
    expect(login.status).to.equal(303);
    const cookies = cookieLines([...form.setCookies, ...login.setCookies]);
    expect(cookies.map((c) => c.split('=')[0]).sort()).to.deep.equal(['_csrf', 'herald_admin']);
    for (const c of cookies) expect(c, c.split('=')[0]).to.match(/; Secure/).and.match(/; HttpOnly/);
    expect(await addresses(), 'the client address comes from X-Forwarded-For').to.include('198.51.100.9');
  });

  it('believes neither X-Forwarded-Proto nor X-Forwarded-For without HTTP_TRUST_PROXY', async () => {
    const { db } = t.get();
    await db.raw('DELETE FROM admin_sessions');
    const b = new Browser(direct.base, { proto: 'https', for: '198.51.100.10' });
    const form = await b.request('GET', '/admin/login');
    const login = await b.login({ name: 'operator', password: PASSWORD });
    expect(login.status).to.equal(303);
    const cookies = cookieLines([...form.setCookies, ...login.setCookies]);
    expect(cookies).to.have.length(2);
    for (const c of cookies) expect(c, c.split('=')[0]).not.to.match(/; Secure/);
    expect(await addresses()).to.deep.equal(['127.0.0.1']);
  });

  it('sends CSP (no inline script or style), frame-ancestors none / X-Frame-Options DENY, nosniff and no-referrer on every page and answer', async () => {
    const b = new Browser(direct.base);
    await b.login({ name: 'operator', password: PASSWORD });
    const login = await new Browser(direct.base).request('GET', '/admin/login');
    const answers = {
      login,
      dashboard: await b.request('GET', '/admin'),
      invoices: await b.request('GET', '/admin/invoices'),
      script: await b.request('GET', '/admin/assets/admin.js'),
      notFound: await b.request('GET', '/admin/no-such-page'),
      json: await new Browser(direct.base).request('GET', '/api/v1/parties'),
    };
    expect(answers.dashboard.status).to.equal(200);
    for (const [name, res] of Object.entries(answers)) {
      const csp = policy(res);
      expect(csp, name).to.include({
        'default-src': "'self'", 'frame-ancestors': "'none'", 'object-src': "'none'", 'base-uri': "'none'",
        'script-src': "'self'", 'style-src': "'self'", 'script-src-attr': "'none'", 'form-action': "'self'",
      });
      expect(csp, `${name}: plain HTTP deployments keep working`).not.to.have.property('upgrade-insecure-requests');
      expect(res.headers.get('x-frame-options'), name).to.equal('DENY');
      expect(res.headers.get('x-content-type-options'), name).to.equal('nosniff');
      expect(res.headers.get('referrer-policy'), name).to.equal('no-referrer');
    }
    for (const page of [answers.login, answers.dashboard]) {
      expect(page.body).not.to.match(/<script>|<style|style=|\son[a-z]+=/i);
      expect(page.body).to.match(/<script src="\/admin\/assets\/admin\.js\?v=[0-9a-f]{12}"><\/script>/);
      expect(page.body).to.match(/<link rel="stylesheet" href="\/admin\/assets\/admin\.css\?v=[0-9a-f]{12}">/);
    }
    expect(answers.script.headers.get('content-type')).to.equal('text/javascript; charset=utf-8');
    expect(answers.script.body).to.include('data-confirm');
    expect((await b.request('GET', '/admin/assets/admin.css')).headers.get('content-type')).to.equal('text/css; charset=utf-8');
  });

  it('allows the invoice form exactly its own inline stylesheet, by hash', async () => {
    const { db } = t.get();
    const key = await createApiKey(db, 'form-key');
    const res = await fetch(`${direct.base}/invoices/new`, { headers: { authorization: `Basic ${Buffer.from(`x:${key.key}`).toString('base64')}` } });
    expect(res.status).to.equal(200);
    const css = /<style>([^<]*)<\/style>/.exec(await res.text())![1]!;
    const hash = crypto.createHash('sha256').update(css).digest('base64');
    expect(policy(res)).to.include({ 'style-src': `'self' 'sha256-${hash}'`, 'script-src': "'self'", 'frame-ancestors': "'none'" });
  });

  it('reads HTTP_TRUST_PROXY as false, true, a hop count or a list of addresses and ranges, and names it when it is neither', () => {
    expect(loadConfig({}).HTTP_TRUST_PROXY).to.equal(false);
    expect(loadConfig({ HTTP_TRUST_PROXY: 'true' }).HTTP_TRUST_PROXY).to.equal(true);
    expect(loadConfig({ HTTP_TRUST_PROXY: '2' }).HTTP_TRUST_PROXY).to.equal(2);
    expect(loadConfig({ HTTP_TRUST_PROXY: 'loopback, 10.0.0.0/8,fd00::/8,192.0.2.1' }).HTTP_TRUST_PROXY).to.deep.equal(['loopback', '10.0.0.0/8', 'fd00::/8', '192.0.2.1']);
    for (const bad of ['yes please', '10.0.0.0/33', '10.0.0.1,', 'proxy.example']) {
      let err: unknown;
      try {
        loadConfig({ HTTP_TRUST_PROXY: bad });
      } catch (e) {
        err = e;
      }
      expect(err, bad).to.be.instanceOf(ConfigError);
      expect((err as ConfigError).problems.join('\n'), bad).to.match(/^HTTP_TRUST_PROXY: must be false, true, a hop count/);
    }
  });
});
