import knexFactory from 'knex';
import pino from 'pino';
import { hashPassword } from '../../src/admin/passwords.js';
import { wire } from '../../src/cli/wiring.js';
import { insertAdminUser } from '../../src/admin/store.js';
import { loadConfig } from '../../src/config.js';
import { migrateLatest } from '../../src/db/migrate.js';
import { buildServer } from '../../src/http/server.js';
import { admin, arg, dbUrl, finish, loadGuard, quantile, type Target } from './support.js';

// A login flood against /admin (issue 12: 80 concurrent logins made single
// requests take 28 s). For each case, --logins (default 80) POST
// /admin/login at once while GET /health is asked one at a time; prints
// the flood's answers and the /health latencies. Cases: the throttle and
// hashing gate as configured by default; the same flood from a different
// address and user name each (only the gate holds it); and both switched
// off (how Herald answered before). Needs Postgres (BENCH_DATABASE_URL).
//
//   npm run bench:admin-login [-- --logins 80]

const LOGINS = arg('logins', 80);
const name = `herald_bench_admin_login_${process.pid}`;

const cases: { label: string; env: Record<string, string>; spread: boolean }[] = [
  { label: 'defaults, one user from one address', env: {}, spread: false },
  { label: 'defaults, a new user and address per login', env: {}, spread: true },
  {
    label: 'no throttle, no gate (as before), new user and address per login',
    env: { ADMIN_LOGIN_FREE_FAILURES: '1000', ADMIN_LOGIN_LOCKOUT_FAILURES: '1000', ADMIN_LOGIN_HASH_CONCURRENCY: '64' },
    spread: true,
  },
];

await admin(`CREATE DATABASE ${name}`);
const db = knexFactory({ client: 'pg', connection: dbUrl(name), pool: { min: 0, max: 20 } });
try {
  await migrateLatest(db);
  await insertAdminUser(db, 'operator', await hashPassword('correct horse battery'));
  const watch = loadGuard();
  const results: { label: string; seconds: number; answers: Record<string, number>; healthMedianMs: number; ownLogin: { status: number; ms: number } }[] = [];
  for (const c of cases) {
    await db.raw('DELETE FROM admin_login_throttle; DELETE FROM admin_sessions');
    const config = loadConfig({}, { HTTP_TRUST_PROXY: 'loopback', ADMIN_SESSION_SECRET: 'x'.repeat(40), ...c.env });
    const log = pino({ level: 'silent' });
    const app = await buildServer({ db, config, log, plugins: wire({ config, log }).routes, processMetrics: false });
    const base = await app.listen({ host: '127.0.0.1', port: 0 });
    const form = await fetch(`${base}/admin/login`);
    const cookie = form.headers.getSetCookie().map((l) => l.split(';')[0]).join('; ');
    const csrf = /name="_csrf" value="([^"]+)"/.exec(await form.text())![1]!;
    const started = performance.now();
    let flooding = true;
    const flood = Promise.all(
      Array.from({ length: LOGINS }, async (_, i) => {
        const res = await fetch(`${base}/admin/login`, {
          method: 'POST',
          headers: { cookie, 'content-type': 'application/x-www-form-urlencoded', 'x-forwarded-for': c.spread ? `10.${i >> 8}.${i & 255}.9` : '10.0.0.9' },
          body: new URLSearchParams({ _csrf: csrf, name: c.spread ? `guess-${i}` : 'operator', password: `wrong-password-${i}` }).toString(),
        });
        await res.arrayBuffer();
        return res.status;
      }),
    ).finally(() => (flooding = false));
    // The operator, from elsewhere, logging in while the flood runs.
    const t1 = performance.now();
    const own = fetch(`${base}/admin/login`, {
      method: 'POST',
      headers: { cookie, 'content-type': 'application/x-www-form-urlencoded', 'x-forwarded-for': '192.0.2.1' },
      body: new URLSearchParams({ _csrf: csrf, name: 'operator', password: 'correct horse battery' }).toString(),
      redirect: 'manual',
    }).then(async (res) => (await res.arrayBuffer(), { status: res.status, ms: performance.now() - t1 }));
    const health: number[] = [];
    while (flooding) {
      const t0 = performance.now();
      await (await fetch(`${base}/health`)).arrayBuffer();
      health.push(performance.now() - t0);
    }
    const statuses = await flood;
    const mine = await own;
    const seconds = (performance.now() - started) / 1000;
    const counts = Object.entries(statuses.reduce<Record<number, number>>((m, s) => ((m[s] = (m[s] ?? 0) + 1), m), {}));
    health.sort((a, b) => a - b);
    console.log(
      `${c.label}: ${LOGINS} logins in ${seconds.toFixed(2)} s (${counts.map(([s, n]) => `${n}x ${s}`).join(', ')}); ` +
        `GET /health during it: ${health.length} asked, median ${quantile(health, 0.5).toFixed(0)} ms, max ${health.at(-1)!.toFixed(0)} ms; ` +
        `the operator's own login: ${mine.status} in ${mine.ms.toFixed(0)} ms`,
    );
    results.push({ label: c.label, seconds: +seconds.toFixed(2), answers: Object.fromEntries(counts), healthMedianMs: +quantile(health, 0.5).toFixed(1), ownLogin: { status: mine.status, ms: Math.round(mine.ms) } });
    await app.close();
  }
  // The README's targets: the throttle lets at most 6 passwords be checked; /health is not starved.
  const [throttled] = results;
  const targets: Record<string, Target> = {
    'one user and address: at most 6 password checks': { met: (throttled!.answers['401'] ?? 0) <= 6, value: `${throttled!.answers['401'] ?? 0} checked` },
    '/health median < 50 ms during the floods': { met: results.every((r) => r.healthMedianMs < 50), value: results.map((r) => `${r.healthMedianMs} ms`).join(', ') },
  };
  finish(watch.stop(), { logins: LOGINS, cases: results }, targets);
} finally {
  await db.destroy();
  await admin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
}
