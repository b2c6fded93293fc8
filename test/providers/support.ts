import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Knex } from 'knex';
import { loadConfig, type Config } from '../../src/config.js';
import { generateInvoice } from '../../src/invoices/generate.js';
import { createProviderServices, type ProviderServices } from '../../src/providers/services.js';
import { upsertSupplierProvider, type ProviderKind } from '../../src/providers/store.js';
import { startInvoicingApiSandbox, type InvoicingApiSandbox } from '../../src/sandbox/invoicing-api.js';
import { startPacSandbox, type PacSandbox, type PacSandboxOptions } from '../../src/sandbox/pac.js';
import { s3Sandbox, startSandboxes, type StartedSandboxes } from '../../src/sandbox/sandboxes.js';
import type { S3Server } from '../../src/sandbox/s3-server.js';
import { invoiceBody, seedClient, seedSupplier } from '../invoices/support.js';

// Real surroundings for provider tests: S3 (s3rver), the PAC and invoicing
// API stand-ins on loopback, settings pointing at them, and helpers that
// issue invoices for suppliers configured with a provider.

export const PAC_TOKEN = 'test-pac-token';
export const INVOICING_TOKEN = 'test-invoicing-token';
export const WEBHOOK_SECRET = 'test-webhook-secret-0123456789';
export const COMPANY = 'company-1';

export function fakeClock() {
  let t = Date.now();
  return { now: () => new Date(t), ms: () => t, sleep: async (ms: number) => void (t += ms), advance: (ms: number) => void (t += ms) };
}
export type FakeClock = ReturnType<typeof fakeClock>;

export interface ProviderEnv {
  dir: string;
  sandboxes: StartedSandboxes;
  s3: S3Server;
  pac: PacSandbox;
  invoicing: InvoicingApiSandbox;
  env: Record<string, string>;
  config(extra?: Record<string, string>): Config;
  services(extra?: Record<string, string>): ProviderServices;
  close(): Promise<void>;
}

export async function startProviderEnv(databaseUrl: string, pacOpts: Partial<PacSandboxOptions> = {}): Promise<ProviderEnv> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'herald-providers-'));
  const sandboxes = await startSandboxes({ dataDir: dir, only: ['s3'] });
  const pac = await startPacSandbox({ token: PAC_TOKEN, webhookSecret: WEBHOOK_SECRET, ...pacOpts });
  const invoicing = await startInvoicingApiSandbox({ token: INVOICING_TOKEN });
  const env: Record<string, string> = {
    ...sandboxes.env,
    DATABASE_URL: databaseUrl,
    HERALD_DATA_DIR: path.join(dir, 'data'),
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    PROVIDER_PAC_BASE_URL: pac.url,
    PROVIDER_PAC_TOKEN: PAC_TOKEN,
    PROVIDER_INVOICING_BASE_URL: invoicing.url,
    PROVIDER_INVOICING_TOKEN: INVOICING_TOKEN,
    PROVIDER_WEBHOOK_SECRET: WEBHOOK_SECRET,
  };
  const opened: ProviderServices[] = [];
  return {
    dir,
    sandboxes,
    s3: sandboxes.handle(s3Sandbox),
    pac,
    invoicing,
    env,
    config: (extra = {}) => loadConfig({ ...env, ...extra }),
    services(extra = {}) {
      const s = createProviderServices(loadConfig({ ...env, ...extra }));
      opened.push(s);
      return s;
    },
    async close() {
      for (const s of opened) s.close();
      await pac.close();
      await invoicing.close();
      await sandboxes.close();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

export const PROVIDER_TABLES = 'provider_attachments, provider_documents, supplier_providers, invoice_items, invoices, invoice_requests, parties, job_attempts, jobs';

/** A supplier using `kind`, a client, and `n` issued invoices (each enqueues its submission by trigger). */
export async function issueInvoices(db: Knex, n: number, kind: ProviderKind = 'pac', opts: { now?: () => Date } = {}): Promise<number[]> {
  const supplier = await seedSupplier(db, { name: `Supplier ${Math.random().toString(36).slice(2, 8)}` });
  const client = await seedClient(db);
  await upsertSupplierProvider(db, { supplier_party_id: supplier.id, provider_kind: kind, company_id: COMPANY, credentials_ref: 'default' });
  const ids: number[] = [];
  for (let i = 0; i < n; i++) {
    const inv = await generateInvoice(db, invoiceBody(supplier.id, client.id) as never, { now: opts.now });
    ids.push(inv.id);
  }
  return ids;
}

export async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`timed out waiting for ${what}`);
}
