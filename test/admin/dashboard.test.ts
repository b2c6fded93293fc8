import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import type { FastifyInstance } from 'fastify';
import type { BrowserContext, Page } from 'playwright-core';
import { launchChromium, type Chromium } from './chromium.js';
import { hashPassword } from '../../src/admin/passwords.js';
import { insertAdminUser } from '../../src/admin/store.js';
import { loadConfig } from '../../src/config.js';
import { wire } from '../../src/cli/wiring.js';
import { buildServer } from '../../src/http/server.js';
import { enqueueJob } from '../../src/jobs/store/enqueue.js';
import { getJob } from '../../src/jobs/store/runs.js';
import { useTestDb } from '../helpers/db.js';
import { quietLog } from '../jobs/support.js';

// The /admin page in a real headless Chromium (Debian's, driven by
// playwright-core) against a real `herald serve` server and Postgres.

const ARTIFACTS = path.resolve('test-artifacts');
const PASSWORD = 'correct horse battery';

describe('admin dashboard (headless Chromium)', () => {
  const t = useTestDb(import.meta.url);
  let app: FastifyInstance;
  let base: string;
  let context: BrowserContext;
  let page: Page;
  let browser: Chromium | undefined;
  // Anything the browser refused under the Content-Security-Policy.
  const refusals: string[] = [];

  before(async function () {
    this.timeout(60_000);
    const { db } = t.get();
    await insertAdminUser(db, 'operator', await hashPassword(PASSWORD));
    const config = loadConfig({ ADMIN_SESSION_SECRET: 'x'.repeat(40) });
    app = await buildServer({ db, config, log: quietLog, processMetrics: false, plugins: wire({ config, log: quietLog }).routes });
    base = await app.listen({ host: '127.0.0.1', port: 0 });
    browser = await launchChromium();
    context = browser.context;
    page = await context.newPage();
    page.on('console', (m) => {
      if (/Content Security Policy/i.test(m.text())) refusals.push(m.text());
    });
  });
  after(async () => {
    await browser?.close();
    await app?.close();
  });

  it('shows the login page, not the dashboard, without a session', async () => {
    const res = await page.goto(`${base}/admin`);
    expect(res?.ok()).to.equal(true);
    expect(new URL(page.url()).pathname).to.equal('/admin/login');
    expect(await page.locator('form#login').count()).to.equal(1);
    expect(await page.locator('table#jobs').count()).to.equal(0);
  });

  it('refuses a wrong password and a POST without a CSRF token', async () => {
    await page.fill('input[name=name]', 'operator');
    await page.fill('input[name=password]', 'not the password');
    await page.click('form#login button[type=submit]');
    expect(await page.locator('.problem').textContent()).to.include('wrong password');
    const forged = await app.inject({ method: 'POST', url: '/admin/jobs/retry-all-failed', payload: { back: '/admin' } });
    expect(forged.statusCode, 'no session, no CSRF token').to.be.oneOf([401, 403]);
  });

  it('logs in, shows counters, filters by error text and retries a permanently failed job until it is pending', async function () {
    this.timeout(60_000);
    const { db } = t.get();
    const ok = await enqueueJob(db, 'notify-hmrc', { uploadId: 1 }, { subjectType: 'upload', subjectId: 1 });
    const doomed = await enqueueJob(db, 'notify-hmrc', { uploadId: 2 }, { subjectType: 'upload', subjectId: 2 });
    const other = await enqueueJob(db, 'invoice-request', { requestId: 'x' } as never, { subjectType: 'invoice_request', subjectId: 'req-9' });
    await db.raw(
      `UPDATE jobs SET status = 'failed_permanent', finished_at = now(), attempts = 12, error_class = 'auth',
              last_error = '401 from SDES: <script>alert(1)</script> token expired' WHERE id = ?`,
      [doomed.id],
    );
    await db.raw(`UPDATE jobs SET status = 'failed', attempts = 1, last_error = '503 upstream busy', error_class = 'transient' WHERE id = ?`, [other.id]);
    await db.raw(`UPDATE jobs SET scheduled_at = now() - interval '2 hours' WHERE id = ?`, [ok.id]);

    await page.fill('input[name=name]', 'operator');
    await page.fill('input[name=password]', PASSWORD);
    await page.click('form#login button[type=submit]');
    await page.waitForSelector('table#counters');
    const counters = await page.locator('table#counters').innerText();
    expect(counters).to.match(/notify-hmrc\s+1\s+0\s+0\s+1\s+0/);
    expect(await page.locator('table#counters .red').count(), 'a job pending for 2 h is shown in red').to.be.greaterThan(0);
    const headerColour = await page.locator('header').evaluate((el) => getComputedStyle(el).backgroundColor);
    expect(headerColour, 'the stylesheet (a file, allowed by the CSP) applies').to.equal('rgb(29, 53, 87)');
    expect(await page.locator('table#jobs tbody tr').count()).to.equal(3);
    // Escaped, not executed or parsed as markup.
    expect(await page.locator(`tr[data-job-id="${doomed.id}"] .err`).innerText()).to.include('<script>alert(1)</script>');

    await page.fill('input[name=error]', 'TOKEN EXPIRED');
    await page.click('form.filters button[type=submit]');
    await page.waitForURL(/error=TOKEN/);
    const rows = page.locator('table#jobs tbody tr');
    expect(await rows.count()).to.equal(1);
    expect(await rows.first().getAttribute('data-job-id')).to.equal(String(doomed.id));
    expect(await rows.first().locator('.status').innerText()).to.equal('failed_permanent');

    let dialogs = 0;
    const onDialog = (d: { accept(): Promise<void> }) => (dialogs++, void d.accept());
    page.on('dialog', onDialog);
    await rows.first().locator('button', { hasText: 'Retry now' }).click();
    await page.waitForSelector('.flash');
    page.off('dialog', onDialog);
    expect(dialogs, 'retry now asks no confirmation').to.equal(0);
    expect(await page.locator('.flash').innerText()).to.include(`job ${doomed.id} is pending again`);
    expect(await page.locator(`tr[data-job-id="${doomed.id}"] .status`).innerText()).to.equal('pending');
    expect(await getJob(db, doomed.id)).to.include({ status: 'pending', attempts: 0 });
    expect(await getJob(db, other.id), 'the other failed job is untouched').to.include({ status: 'failed', attempts: 1 });

    fs.mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: path.join(ARTIFACTS, 'admin-dashboard.png'), fullPage: true });
  });

  it('runs the bulk "retry all permanently failed" after confirmation, and shows the TARIC and invoices views', async function () {
    this.timeout(30_000);
    const { db } = t.get();
    const a = await enqueueJob(db, 'upload-envelope', { uploadId: 5 });
    await db.raw(`UPDATE jobs SET status = 'failed_permanent', finished_at = now(), attempts = 5, last_error = 'S3 said no' WHERE id = ?`, [a.id]);
    await page.goto(`${base}/admin`);
    const asked: string[] = [];
    page.once('dialog', (d) => (asked.push(d.message()), void d.accept()));
    await page.locator('#bulk button', { hasText: 'Retry all permanently failed' }).click();
    await page.waitForSelector('.flash');
    expect(await page.locator('.flash').innerText()).to.include('1 permanently failed job(s) are pending again');
    expect(asked, 'the bulk action asks first').to.deep.equal(['Retry every permanently failed job (attempts reset)?']);
    expect(await getJob(db, a.id)).to.include({ status: 'pending', attempts: 0 });

    await page.goto(`${base}/admin/taric`);
    expect(await page.locator('table#envelopes').innerText()).to.include('no envelopes yet');
    await page.goto(`${base}/admin/invoices`);
    expect(await page.locator('table#invoices').count()).to.equal(1);
    await page.screenshot({ path: path.join(ARTIFACTS, 'admin-invoices.png'), fullPage: true });
    expect(refusals, 'nothing refused by the Content-Security-Policy').to.deep.equal([]);
  });
});
