import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import type { FastifyInstance } from 'fastify';
import type { BrowserContext, Page } from 'playwright-core';
import { launchChromium, type Chromium } from './chromium.js';
import { hashPassword } from '../../src/admin/passwords.js';
import { insertAdminUser } from '../../src/admin/store.js';
import { loadConfig } from '../../src/config.js';
import { buildServer } from '../../src/http/server.js';
import { generateInvoice } from '../../src/invoices/generate.js';
import { enqueueJob } from '../../src/jobs/store/enqueue.js';
import { useTestDb } from '../helpers/db.js';
import { testWiring } from '../helpers/wiring.js';
import { invoiceBody, seedClient, seedSupplier } from '../invoices/support.js';
import { quietLog } from '../jobs/support.js';

// Issue 13 item 9: at 420 px wide the admin tables stay usable. Measured in
// Debian's headless Chromium: each table scrolls inside a box of its own, at
// most 80% of the window tall; rows do not wrap into towers (before: the job
// table was 3,900 px tall for a few dozen rows); the page itself never
// scrolls sideways.

const ARTIFACTS = path.resolve('test-artifacts');
const PASSWORD = 'correct horse battery';
const VIEWPORT = { width: 420, height: 846 };

interface Measure {
  page: { height: number; width: number };
  box: { height: number; width: number };
  table: { height: number; width: number; rows: number };
}

async function measure(page: Page, table: string): Promise<Measure> {
  // No helper functions inside: tsx names them with a __name() the page does not have.
  return page.evaluate((sel) => {
    const t = document.querySelector(sel) as HTMLElement;
    const tr = t.getBoundingClientRect();
    const br = (t.parentElement as HTMLElement).getBoundingClientRect();
    return {
      page: { height: document.documentElement.scrollHeight, width: document.documentElement.scrollWidth },
      box: { height: br.height, width: br.width },
      table: { height: tr.height, width: tr.width, rows: t.querySelectorAll('tbody tr').length },
    };
  }, table);
}

describe('admin pages at 420 px (headless Chromium)', function () {
  this.timeout(120_000);
  const t = useTestDb(import.meta.url);
  let app: FastifyInstance;
  let base: string;
  let context: BrowserContext;
  let page: Page;
  let browser: Chromium | undefined;

  before(async () => {
    const { db } = t.get();
    await insertAdminUser(db, 'operator', await hashPassword(PASSWORD));
    // A full page of jobs with long errors, and a full page of invoices.
    for (let i = 0; i < 50; i++) {
      const job = await enqueueJob(db, 'notify-hmrc', { uploadId: 1000 + i }, { subjectType: 'upload', subjectId: 1000 + i });
      await db.raw(`UPDATE jobs SET status = 'failed', attempts = 3, error_class = 'transient', last_error = ? WHERE id = ?`, [
        `HMRC answered 503 Service Unavailable for upload ${1000 + i}: ${'the notification endpoint is down for maintenance; '.repeat(4)}`,
        job.id,
      ]);
    }
    const supplier = await seedSupplier(db, { name: 'Narrow Screens Import Export Company Limited' });
    const client = await seedClient(db, { name: 'A Client With A Rather Long Registered Name GmbH' });
    for (let i = 0; i < 50; i++) await generateInvoice(db, invoiceBody(supplier.id, client.id) as never);

    app = await buildServer({ db, config: loadConfig({ ADMIN_SESSION_SECRET: 'x'.repeat(40) }), log: quietLog, processMetrics: false, plugins: testWiring().routes });
    base = await app.listen({ host: '127.0.0.1', port: 0 });
    browser = await launchChromium(VIEWPORT);
    context = browser.context;
    page = await context.newPage();
    await page.goto(`${base}/admin/login`);
    await page.fill('input[name=name]', 'operator');
    await page.fill('input[name=password]', PASSWORD);
    await page.click('form#login button[type=submit]');
    await page.waitForSelector('table#jobs');
  });
  after(async () => {
    await browser?.close();
    await app?.close();
  });

  const report = (name: string, m: Measure) =>
    process.stdout.write(`      ${name} at ${VIEWPORT.width} px: table ${Math.round(m.table.width)} x ${Math.round(m.table.height)} px (${m.table.rows} rows) ` +
      `in a ${Math.round(m.box.width)} x ${Math.round(m.box.height)} px box; page ${m.page.width} x ${m.page.height} px\n`);

  function expectUsable(m: Measure, name: string): void {
    expect(m.table.rows, `${name} rows`).to.equal(50);
    expect(m.box.height, `${name}: the scroll box is at most 80% of the window`).to.be.at.most(VIEWPORT.height * 0.8 + 2); // + its 1 px borders
    expect(m.box.width, `${name}: the box fits the window`).to.be.at.most(VIEWPORT.width);
    expect(m.table.height / m.table.rows, `${name}: rows do not wrap into towers (px per row)`).to.be.below(90);
    expect(m.page.width, `${name}: the page does not scroll sideways`).to.be.at.most(VIEWPORT.width);
    expect(m.page.height, `${name}: the page height`).to.be.below(VIEWPORT.height * 3);
  }

  it('keeps the job table in its own scroll box, rows one or two lines tall', async () => {
    await page.goto(`${base}/admin`);
    const m = await measure(page, 'table#jobs');
    report('/admin job table', m);
    fs.mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: path.join(ARTIFACTS, 'admin-jobs-420px.png'), fullPage: true });
    expectUsable(m, 'jobs');
  });

  it('keeps the invoices table usable and its rows reachable by scrolling the box', async () => {
    await page.goto(`${base}/admin/invoices`);
    const m = await measure(page, 'table#invoices');
    report('/admin/invoices table', m);
    await page.screenshot({ path: path.join(ARTIFACTS, 'admin-invoices-420px.png'), fullPage: true });
    expectUsable(m, 'invoices');
    // The last column (actions) is reachable by scrolling the box sideways, not the page.
    const scrolled = await page.evaluate(() => {
      const box = document.querySelector('table#invoices')!.parentElement!;
      box.scrollLeft = box.scrollWidth;
      return { left: box.scrollLeft, page: window.scrollX };
    });
    expect(scrolled.left).to.be.greaterThan(0);
    expect(scrolled.page).to.equal(0);
  });
});
