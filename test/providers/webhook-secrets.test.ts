import { expect } from 'chai';
import type { FastifyInstance } from 'fastify';
import { loadConfig } from '../../src/config.js';
import { buildServer } from '../../src/http/server.js';
import { createLogger } from '../../src/log.js';
import { createProviderServices } from '../../src/providers/services.js';
import { setWebhookSecret } from '../../src/providers/webhook-secrets.js';
import { pacWebhookRoutes } from '../../src/providers/webhooks.js';
import { runHerald } from '../helpers/cli.js';
import { useTestDb } from '../helpers/db.js';

// Per-company webhook secrets (migration 0015, docs/decisions/0013): a
// company with its own secret accepts only that one (or the previous one
// within its rotation grace); the others keep the global secret. Through the
// real fastify route and the `herald webhooks` commands as child processes.

const GLOBAL = 'global-webhook-secret-0123456789';
const A_SECRET = 'company-a-secret-0123456789';
const B_SECRET = 'company-b-secret-0123456789';

describe('providers: per-company webhook secrets', function () {
  this.timeout(120_000);
  const t = useTestDb(import.meta.url);
  let app: FastifyInstance;

  beforeEach(async () => {
    await t.get().db.raw('TRUNCATE provider_webhook_secrets');
    const config = loadConfig({ DATABASE_URL: t.get().url, PROVIDER_WEBHOOK_SECRET: GLOBAL, LOG_LEVEL: 'silent' });
    app = await buildServer({ db: t.get().db, config, log: createLogger('silent'), plugins: [pacWebhookRoutes(() => createProviderServices(config))] });
  });
  afterEach(async () => {
    await app.close();
  });

  /** The status of a delivery for an unknown document: 200 when the secret is accepted, 401 when not. */
  async function deliver(company: string, secret: string): Promise<number> {
    const res = await app.inject({ method: 'POST', url: `/webhooks/pac/${encodeURIComponent(company)}`, headers: { 'x-webhook-secret': secret }, payload: { document: { id: 'nope', legalStatus: 'REGISTERED' } } });
    return res.statusCode;
  }

  it("accepts a company's own secret, refuses the global one and other companies' for it; companies without one keep the global", async () => {
    const { db } = t.get();
    await setWebhookSecret(db, 'A', A_SECRET);
    await setWebhookSecret(db, 'B', B_SECRET);
    expect(await deliver('A', A_SECRET), 'own secret').to.equal(200);
    expect(await deliver('A', GLOBAL), 'global secret for a company with its own').to.equal(401);
    expect(await deliver('A', B_SECRET), "another company's secret").to.equal(401);
    expect(await deliver('B', A_SECRET), "another company's secret").to.equal(401);
    expect(await deliver('C', GLOBAL), 'no own secret: the global one').to.equal(200);
    expect(await deliver('C', A_SECRET), "no own secret: not another company's").to.equal(401);
    const stored = await db('provider_webhook_secrets').select();
    expect(JSON.stringify(stored), 'only digests are stored').to.not.include(A_SECRET);
  });

  it('rotation keeps the previous secret for its grace only; a plain set replaces it at once', async () => {
    const { db } = t.get();
    await setWebhookSecret(db, 'A', A_SECRET);
    await setWebhookSecret(db, 'A', `${A_SECRET}-new`, 3_600_000);
    expect([await deliver('A', A_SECRET), await deliver('A', `${A_SECRET}-new`)], 'both within the grace').to.deep.equal([200, 200]);
    await db.raw(`UPDATE provider_webhook_secrets SET previous_valid_until = now() - interval '1 second'`);
    expect(await deliver('A', A_SECRET), 'grace over').to.equal(401);
    await setWebhookSecret(db, 'A', `${A_SECRET}-3`);
    expect([await deliver('A', `${A_SECRET}-new`), await deliver('A', `${A_SECRET}-3`)]).to.deep.equal([401, 200]);
  });

  it('a company id the route refuses is never looked up: 401 without the global secret, 400 naming the field with it', async () => {
    const bad = 'a\u0000b';
    await setWebhookSecret(t.get().db, 'ab', A_SECRET);
    expect(await deliver(bad, A_SECRET)).to.equal(401);
    const res = await app.inject({ method: 'POST', url: `/webhooks/pac/${encodeURIComponent(bad)}`, headers: { 'x-webhook-secret': GLOBAL }, payload: { document: { id: 'nope', legalStatus: 'REGISTERED' } } });
    expect([res.statusCode, res.json().error?.field ?? res.json().field]).to.deep.equal([400, 'companyId']);
  });

  describe('herald webhooks', () => {
    const env = () => ({ DATABASE_URL: t.get().url, LOG_LEVEL: 'warn' });

    it('set-secret generates a secret, prints it once and it works; remove-secret puts the global one back; list shows no secret', async () => {
      const set = await runHerald(['webhooks', 'set-secret', 'A', '--json'], { env: env() });
      expect(set.code, set.stderr).to.equal(0);
      const out = JSON.parse(set.stdout) as { companyId: string; secret: string; previousValidUntil: string | null };
      expect(out.companyId).to.equal('A');
      expect(out.secret).to.match(/^[A-Za-z0-9_-]{43}$/);
      expect(await deliver('A', out.secret)).to.equal(200);
      expect(await deliver('A', GLOBAL)).to.equal(401);

      const rotated = await runHerald(['webhooks', 'set-secret', 'A', '--secret-stdin', '--keep-old-minutes', '30', '--json'], { env: env(), input: `${A_SECRET}\n` });
      expect(rotated.code, rotated.stderr).to.equal(0);
      expect(JSON.parse(rotated.stdout).secret, 'a secret read from stdin is not echoed').to.equal(undefined);
      expect(JSON.parse(rotated.stdout).previousValidUntil).to.be.a('string');
      expect([await deliver('A', A_SECRET), await deliver('A', out.secret)]).to.deep.equal([200, 200]);

      const list = await runHerald(['webhooks', 'list', '--json'], { env: env() });
      expect(list.code, list.stderr).to.equal(0);
      expect(JSON.parse(list.stdout).map((r: { companyId: string }) => r.companyId)).to.deep.equal(['A']);
      expect(list.stdout).to.not.match(/sha256|[0-9a-f]{64}/);

      const removed = await runHerald(['webhooks', 'remove-secret', 'A'], { env: env() });
      expect([removed.code, removed.stdout]).to.deep.equal([0, 'company A: own webhook secret removed; PROVIDER_WEBHOOK_SECRET applies\n']);
      expect(await deliver('A', GLOBAL)).to.equal(200);
    });

    it('refuses a short secret from stdin and an unknown company in one line each, changing nothing', async () => {
      const short = await runHerald(['webhooks', 'set-secret', 'A', '--secret-stdin'], { env: env(), input: 'short\n' });
      expect(short.code).to.equal(1);
      expect(short.stderr).to.match(/^herald: --secret-stdin: the secret must be 16 to 1000 characters \(got 5\); or leave the option out to have one generated\n$/);
      const none = await runHerald(['webhooks', 'remove-secret', 'Z'], { env: env() });
      expect(none.code).to.equal(1);
      expect(none.stderr).to.equal('herald: COMPANY: Z has no webhook secret of its own (see herald webhooks list)\n');
      expect(Number((await t.get().db('provider_webhook_secrets').count('* as n').first())!.n)).to.equal(0);
      const help = await runHerald(['webhooks', 'set-secret', '--help']);
      expect(help.stdout).to.include('--secret-stdin').and.to.include('--keep-old-minutes').and.to.include('--json');
    });
  });
});
