import { expect } from 'chai';
import { hashingGate, HashingBusy } from '../../src/admin/hashing-gate.js';
import { hashPassword } from '../../src/admin/passwords.js';
import { insertAdminUser, grantApiKeyScope } from '../../src/admin/store.js';
import { addressKey } from '../../src/admin/throttle.js';
import { createApiKey } from '../../src/http/api-keys.js';
import { useTestDb } from '../helpers/db.js';
import { adminServer, Browser, PASSWORD, type AdminServer } from './support.js';

// The /admin login throttle (issue 12: 200 wrong passwords in a row were all
// tried; 80 concurrent logins made requests take 28 s). A real server on
// port 0 that trusts the loopback proxy, so X-Forwarded-For picks the client
// address; the server's clock is moved instead of waiting. Defaults: 5 free
// failures, then 1 s doubling, lockout for 15 min at 10.

const WRONG = 'not-the-password-123';

describe('admin login throttle', () => {
  const t = useTestDb(import.meta.url);
  let s: AdminServer;
  let n = 0;
  /** A browser from an address used nowhere else. */
  const fresh = () => (n++, new Browser(s.base, { for: `198.51.${Math.floor(n / 250)}.${(n % 250) + 1}` }));
  const advance = (ms: number) => (s.clock.now = new Date(s.clock.now.getTime() + ms));
  const from = (address: string) => new Browser(s.base, { for: address });

  before(async () => {
    const { db } = t.get();
    await insertAdminUser(t.get().db, 'operator', await hashPassword(PASSWORD));
    await insertAdminUser(db, 'second', await hashPassword(PASSWORD));
    s = await adminServer(db, { HTTP_TRUST_PROXY: 'loopback', ADMIN_LOGIN_HASH_CONCURRENCY: '1' });
  });
  after(async () => {
    await s?.app.close();
  });

  it('per user: 5 failures free, then a doubling delay (429 + Retry-After), then a 15 min lockout that refuses even the right password', async function () {
    this.timeout(60_000);
    for (let i = 1; i <= 5; i++) expect((await fresh().login({ name: 'operator', password: WRONG })).status, `failure ${i}`).to.equal(401);
    const delayed = await fresh().login({ name: 'operator', password: WRONG });
    expect(delayed.status).to.equal(429);
    expect(delayed.headers.get('retry-after')).to.equal('1');
    expect(delayed.body).to.include('Too many failed logins for this user: try again in 1 second.');

    for (const wait of [1, 2, 4, 8, 16]) {
      advance(wait * 1000 - 1);
      expect((await fresh().login({ name: 'operator', password: WRONG })).status, `1 ms before the ${wait} s wait ends`).to.equal(429);
      advance(1);
      expect((await fresh().login({ name: 'operator', password: WRONG })).status, `after the ${wait} s wait`).to.equal(401);
    }
    const locked = await fresh().login({ name: 'operator', password: PASSWORD });
    expect(locked.status, 'the right password while locked').to.equal(429);
    expect(locked.headers.get('retry-after')).to.equal('900');
    expect(locked.body).to.include('Logins for this user are locked after too many failed attempts: try again in 15 minutes.');
    expect(locked.setCookies.filter((c) => c.startsWith('herald_admin=')), 'no session').to.deep.equal([]);
    expect((await fresh().login({ name: 'second', password: PASSWORD })).status, 'another user is not locked').to.equal(303);

    advance(899_000);
    expect((await fresh().login({ name: 'operator', password: PASSWORD })).status).to.equal(429);
    advance(1000);
    const back = fresh();
    expect((await back.login({ name: 'operator', password: PASSWORD })).status, 'the lockout is over').to.equal(303);
    expect((await back.request('GET', '/admin')).status).to.equal(200);
    expect((await fresh().login({ name: 'operator', password: WRONG })).status, 'a success starts the count again').to.equal(401);
  });

  it('logs every refusal, throttle and lockout with user and address, never the password', async () => {
    const lines = s.logs.map((l) => JSON.stringify(l));
    expect(lines.some((l) => l.includes(WRONG) || l.includes(PASSWORD)), 'a password in the log').to.equal(false);
    const throttled = s.logs.find((l) => l.msg === 'admin login throttled (not checked)' && l.user === 'operator');
    expect(throttled, 'throttled').to.include({ throttledBy: 'user', lockedOut: false, retryAfterS: 1 });
    expect(throttled!.address).to.match(/^198\.51\.\d+\.\d+$/);
    const lockout = s.logs.find((l) => String(l.msg).startsWith('admin login locked out: user operator'));
    expect(lockout, 'lockout').to.include({ user: 'operator', lockedScope: 'user', failures: 10 });
    expect(s.logs.filter((l) => l.msg === 'admin login refused' && l.user === 'operator')).to.have.length(11);
  });

  it('per address: 10 failures on any names lock the address, for passwords and admin keys alike, not other addresses', async function () {
    this.timeout(60_000);
    const { db } = t.get();
    const key = await createApiKey(db, 'throttle-admin-key');
    await grantApiKeyScope(db, key.id, 'admin');
    const attacker = '203.0.113.7';
    for (let i = 1; i <= 10; i++) {
      const res = await from(attacker).login(i % 2 ? { name: `nobody-${i}`, password: WRONG } : { apiKey: `hk_wrong-${i}` });
      expect(res.status, `failure ${i}`).to.equal(401);
      advance(20_000);
    }
    const refused = await from(attacker).login({ name: 'second', password: PASSWORD });
    expect(refused.status).to.equal(429);
    expect(refused.body).to.include('Logins for your address are locked');
    expect((await from(attacker).login({ apiKey: key.key })).status, 'the right admin key').to.equal(429);
    expect((await from('203.0.113.8').login({ name: 'second', password: PASSWORD })).status, 'the next address').to.equal(303);
    expect((await from('203.0.113.8').login({ apiKey: key.key })).status).to.equal(303);
  });

  it('a burst of 20 concurrent guesses gets 5 password checks, like a slow sequence of them; the lock then holds off 40 more without hashing', async function () {
    this.timeout(60_000);
    const { db } = t.get();
    await insertAdminUser(db, 'burst', await hashPassword(PASSWORD));
    const burst = await Promise.all(Array.from({ length: 20 }, () => fresh().login({ name: 'burst', password: WRONG })));
    const codes = burst.map((r) => r.status).sort();
    expect(codes.filter((c) => c === 401), 'checked').to.have.length(5);
    expect(codes.filter((c) => c === 429), 'throttled before hashing').to.have.length(15);

    // Locked, then 40 at once: with the gate below (1 check, 10 waiting) hashing them would answer 503s.
    advance(1000);
    for (let i = 0; i < 4; i++) {
      await fresh().login({ name: 'burst', password: WRONG });
      advance(16_000);
    }
    await fresh().login({ name: 'burst', password: WRONG });
    const checked = () => s.logs.filter((l) => String(l.msg).startsWith('admin login') && !String(l.msg).startsWith('admin login throttled')).length;
    const before = checked();
    const flood = await Promise.all(Array.from({ length: 40 }, () => fresh().login({ name: 'burst', password: PASSWORD })));
    expect(new Set(flood.map((r) => r.status))).to.deep.equal(new Set([429]));
    expect(checked(), 'no password was checked').to.equal(before);
  });

  it('counts IPv6 clients by /64 and IPv4-mapped addresses as IPv4', () => {
    expect(addressKey('2001:db8:1:2::5')).to.equal('2001:db8:1:2::/64');
    expect(addressKey('2001:0db8:0001:0002:ffff:1:2:3')).to.equal('2001:db8:1:2::/64');
    expect(addressKey('2001:db8::1')).to.equal('2001:db8:0:0::/64');
    expect(addressKey('::1')).to.equal('0:0:0:0::/64');
    expect(addressKey('::ffff:192.0.2.1')).to.equal('192.0.2.1');
    expect(addressKey('192.0.2.1')).to.equal('192.0.2.1');
    expect(addressKey('2001:db8:1:3::5')).not.to.equal(addressKey('2001:db8:1:2::5'));
  });

  it('bounds password checks: one at a time, 10 waiting, the next refused at once', async () => {
    const gate = hashingGate(1, 10);
    let running = 0;
    let most = 0;
    const releases: (() => void)[] = [];
    const check = () =>
      new Promise<boolean>((resolve) => {
        running++;
        most = Math.max(most, running);
        releases.push(() => {
          running--;
          resolve(true);
        });
      });
    const admitted = Array.from({ length: 11 }, () => gate(check));
    let refused: unknown;
    await gate(check).catch((err: unknown) => (refused = err));
    expect(refused).to.be.instanceOf(HashingBusy);
    for (;;) {
      await new Promise((r) => setImmediate(r));
      const release = releases.shift();
      if (!release) break;
      expect(releases, 'one check at a time').to.have.length(0);
      release();
    }
    expect(await Promise.all(admitted)).to.have.length(11);
    expect(most, 'checks at once').to.equal(1);
  });
});
