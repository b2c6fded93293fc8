import crypto from 'node:crypto';
import { expect } from 'chai';
import { hashPassword } from '../../src/admin/passwords.js';
import { grantApiKeyScope, insertAdminUser } from '../../src/admin/store.js';
import { createApiKey } from '../../src/http/api-keys.js';
import { revokeApiKey } from '../../src/http/store.js';
import { runHerald } from '../helpers/cli.js';
import { useTestDb } from '../helpers/db.js';
import { adminServer, Browser, PASSWORD, type AdminServer } from './support.js';

// Server-side /admin sessions (issue 12: logout left the cookie valid for its
// 8 h). A real server on port 0; password change and disabling through the
// real `herald admin` CLI against the same database.

const NEW_PASSWORD = 'a brand new passphrase';

describe('admin sessions', () => {
  const t = useTestDb(import.meta.url);
  let s: AdminServer;
  const browser = () => new Browser(s.base);
  const herald = (args: string[], input?: string) => runHerald(['admin', ...args], { env: { DATABASE_URL: t.get().url, LOG_LEVEL: 'warn' }, input });
  const sessionRows = async () => (await t.get().db.raw(`SELECT * FROM admin_sessions ORDER BY created_at`)).rows as Record<string, unknown>[];
  const loggedIn = async (b: Browser) => (await b.request('GET', '/admin')).status === 200;

  before(async () => {
    const { db } = t.get();
    await insertAdminUser(db, 'operator', await hashPassword(PASSWORD));
    await insertAdminUser(db, 'leaver', await hashPassword(PASSWORD));
    s = await adminServer(db);
  });
  after(async () => {
    await s?.app.close();
  });

  it('keeps a random token in the cookie and only its SHA-256 in admin_sessions; HttpOnly, SameSite=Lax, path /admin, no Secure over plain HTTP', async () => {
    const b = browser();
    const login = await b.login({ name: 'operator', password: PASSWORD });
    expect(login.status).to.equal(303);
    const cookie = login.setCookies.find((c) => c.startsWith('herald_admin='))!;
    expect(cookie).to.match(/; HttpOnly/).and.match(/; SameSite=Lax/).and.match(/; Path=\/admin/).and.match(/; Max-Age=28800/);
    expect(cookie).not.to.match(/; Secure/);
    const token = b.jar.get('herald_admin')!;
    expect(token).to.match(/^[A-Za-z0-9_-]{43}$/);
    const rows = await sessionRows();
    expect(rows.map((r) => r.token_hash)).to.deep.equal([crypto.createHash('sha256').update(token).digest('hex')]);
    expect(JSON.stringify(rows)).not.to.include(token);
    expect(await loggedIn(b)).to.equal(true);
  });

  it('logout deletes the session: the old cookie, replayed, lands on the login page', async () => {
    const b = browser();
    await b.login({ name: 'operator', password: PASSWORD });
    const stolen = new Map(b.jar);
    const before = (await sessionRows()).length;
    const out = await b.post('/admin/logout');
    expect(out.status).to.equal(303);
    expect(out.headers.get('location')).to.equal('/admin/login');
    expect(b.jar.has('herald_admin'), 'cookie cleared').to.equal(false);
    expect((await sessionRows()).length).to.equal(before - 1);

    const replay = browser();
    for (const [k, v] of stolen) replay.jar.set(k, v);
    const page = await replay.request('GET', '/admin');
    expect(page.status).to.equal(303);
    expect(page.headers.get('location')).to.equal('/admin/login?next=%2Fadmin');
    const action = await replay.request('POST', '/admin/jobs/unstick', { _csrf: 'x' });
    expect(action.status, 'no session for a POST either').to.be.oneOf([401, 403]);
  });

  it('`herald admin set-password` ends every session of that user at once; the old password stops working', async function () {
    this.timeout(120_000);
    const [a, b, other] = [browser(), browser(), browser()];
    await a.login({ name: 'operator', password: PASSWORD });
    await b.login({ name: 'operator', password: PASSWORD });
    await other.login({ name: 'leaver', password: PASSWORD });
    const res = await herald(['set-password', 'operator', '--password-stdin', '--json'], `${NEW_PASSWORD}\n`);
    expect(res.code, res.stderr).to.equal(0);
    expect(JSON.parse(res.stdout)).to.deep.include({ name: 'operator', endedSessions: 3 });
    expect(await loggedIn(a)).to.equal(false);
    expect(await loggedIn(b)).to.equal(false);
    expect(await loggedIn(other), 'another user keeps theirs').to.equal(true);
    expect((await browser().login({ name: 'operator', password: PASSWORD })).status).to.equal(401);
    expect((await browser().login({ name: 'operator', password: NEW_PASSWORD })).status).to.equal(303);
  });

  it('`herald admin disable-user` ends the sessions and refuses logins; enable-user lets the user in again; list-users shows it all', async function () {
    this.timeout(120_000);
    const b = browser();
    await b.login({ name: 'leaver', password: PASSWORD });
    const off = await herald(['disable-user', 'leaver', '--json']);
    expect(off.code, off.stderr).to.equal(0);
    expect(JSON.parse(off.stdout)).to.deep.include({ name: 'leaver', endedSessions: 2 });
    expect(await loggedIn(b)).to.equal(false);
    const refused = await browser().login({ name: 'leaver', password: PASSWORD });
    expect(refused.status).to.equal(401);
    expect(refused.body, 'the same answer as a wrong password').to.include('Unknown user, wrong password or not an admin key.');

    const list = await herald(['list-users', '--json']);
    expect(list.code, list.stderr).to.equal(0);
    const users = JSON.parse(list.stdout) as { name: string; disabledAt: string | null; sessions: number }[];
    expect(users.map((u) => [u.name, u.disabledAt !== null])).to.deep.equal([['leaver', true], ['operator', false]]);
    expect(users.find((u) => u.name === 'operator')!.sessions).to.equal(1);

    const on = await herald(['enable-user', 'leaver', '--json']);
    expect(JSON.parse(on.stdout)).to.deep.include({ name: 'leaver', disabledAt: null });
    expect((await browser().login({ name: 'leaver', password: PASSWORD })).status).to.equal(303);
  });

  it('refuses an unknown user and a short password in one line each, and documents every command with --help', async function () {
    this.timeout(120_000);
    const unknown = await herald(['disable-user', 'nobody']);
    expect(unknown.code).not.to.equal(0);
    expect(unknown.stderr.trim().split('\n')).to.have.length(1);
    expect(unknown.stderr).to.include('NAME: no admin user named "nobody" (herald admin list-users shows them)');
    const short = await herald(['set-password', 'operator', '--password-stdin'], 'short\n');
    expect(short.code).not.to.equal(0);
    expect(short.stderr).to.include('password: must be at least 12 characters');
    const help = await herald(['--help']);
    for (const command of ['set-password', 'disable-user', 'enable-user', 'list-users']) expect(help.stdout).to.include(command);
  });

  it('a session of an admin key ends when the key is revoked', async () => {
    const { db } = t.get();
    const key = await createApiKey(db, 'session-key');
    await grantApiKeyScope(db, key.id, 'admin');
    const b = browser();
    expect((await b.login({ apiKey: key.key })).status).to.equal(303);
    expect((await b.request('GET', '/admin')).body).to.include('key session-key');
    await revokeApiKey(db, 'session-key');
    expect(await loggedIn(b)).to.equal(false);
  });

  it('a session expires after ADMIN_SESSION_TTL_MS; expired rows are deleted on a later login', async () => {
    const b = browser();
    await b.login({ name: 'operator', password: NEW_PASSWORD });
    s.clock.now = new Date(s.clock.now.getTime() + 8 * 3_600_000 - 1);
    expect(await loggedIn(b), '1 ms before the end').to.equal(true);
    s.clock.now = new Date(s.clock.now.getTime() + 1);
    expect(await loggedIn(b), 'at the end').to.equal(false);
    const expired = (await sessionRows()).filter((r) => (r.expires_at as Date) <= s.clock.now);
    expect(expired.length).to.be.greaterThan(0);
    await browser().login({ name: 'operator', password: NEW_PASSWORD });
    expect((await sessionRows()).filter((r) => (r.expires_at as Date) <= s.clock.now)).to.deep.equal([]);
  });
});
