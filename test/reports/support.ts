import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Knex } from 'knex';
import pino from 'pino';
import { loadConfig, type Config } from '../../src/config.js';
import type { Logger } from '../../src/log.js';
import { startS3Server, type S3Server } from '../../src/sandbox/s3-server.js';
import { REDIS_URL, wipeRedisPrefix } from '../helpers/redis.js';
import { waitFor } from '../helpers/wait.js';
export { waitFor };
export { REDIS_URL, wipeRedisPrefix };

// Shared by the test/reports files: a real local S3 server, a config that
// points at it, and seeded TARIC uploads and invoices (plain SQL against the
// committed migrations, so these tests do not lean on other capabilities'
// code that is still changing).

export const BUCKET = 'herald-reports-test';
export const quietLog: Logger = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });

export interface S3Sandbox {
  server: S3Server;
  dir: string;
  close(): Promise<void>;
}

export async function startS3(): Promise<S3Sandbox> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'herald-reports-s3-'));
  const server = await startS3Server({ directory: dir, buckets: [BUCKET] });
  return {
    server,
    dir,
    async close() {
      await server.close();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Config as a deployment would give it, pointing at the local S3 server. */
export function reportConfig(s3: S3Server, env: Record<string, string> = {}): Config {
  return loadConfig({
    S3_ENDPOINT: s3.url,
    S3_BUCKET: BUCKET,
    S3_ACCESS_KEY_ID: s3.accessKeyId,
    S3_SECRET_ACCESS_KEY: s3.secretAccessKey,
    S3_FORCE_PATH_STYLE: 'true',
    S3_CHECKSUM_WHEN_REQUIRED: 'true',
    S3_TIMEOUT_MS: '5000',
    ...env,
  });
}


export interface SeedUpload {
  counter: number;
  uploadedAt: string | null;
  notificationSent?: string | null;
  /** One workbasket per title; each gets `transactions` transactions in the envelope. */
  workbaskets: string[];
  transactions?: number;
  firstTaricId: number;
}

/** Workbaskets (SENT) with transactions, one envelope holding them, and its upload row. Returns the upload id. */
export async function seedUpload(db: Knex, s: SeedUpload): Promise<number> {
  return db.transaction(async (trx) => {
    const envelopeId = `26${String(s.counter).padStart(4, '0')}`;
    const { rows: env } = await trx.raw(
      `INSERT INTO envelopes (envelope_id, year, counter, size_bytes, md5, created_at)
       VALUES (?, 26, ?, 2048, md5(?), '2026-03-01T09:00:00Z') RETURNING id`,
      [envelopeId, s.counter, envelopeId],
    );
    let taricId = s.firstTaricId;
    let position = 1;
    for (const title of s.workbaskets) {
      const { rows: wb } = await trx.raw(`INSERT INTO workbaskets (title, status) VALUES (?, 'EDITING') RETURNING id`, [title]);
      for (let i = 1; i <= (s.transactions ?? 2); i++) {
        const { rows: tx } = await trx.raw(`INSERT INTO transactions (workbasket_id, position) VALUES (?, ?) RETURNING id`, [wb[0].id, i]);
        await trx.raw(
          `INSERT INTO envelope_transactions (envelope_id, transaction_id, workbasket_id, taric_transaction_id, position) VALUES (?, ?, ?, ?, ?)`,
          [env[0].id, tx[0].id, wb[0].id, taricId++, position++],
        );
      }
      await trx.raw(`UPDATE workbaskets SET status = 'SENT' WHERE id = ?`, [wb[0].id]);
    }
    const { rows: up } = await trx.raw(
      `INSERT INTO uploads (envelope_id, bucket, key, file_name, file_size, checksum, correlation_id, uploaded_at, notification_sent)
       VALUES (?, 'hmrc-bucket', ?, ?, 2048, md5(?), gen_random_uuid(), ?, ?) RETURNING id`,
      [env[0].id, `tohmrc/staging/DIT${envelopeId}.xml`, `DIT${envelopeId}.xml`, envelopeId, s.uploadedAt, s.notificationSent ?? null],
    );
    return up[0].id as number;
  });
}

export async function seedParty(db: Knex, role: 'supplier' | 'client', name: string): Promise<number> {
  const { rows } = await db.raw(`INSERT INTO parties (role, name, address, currency) VALUES (?, ?, 'Somewhere 1', 'EUR') RETURNING id`, [role, name]);
  return rows[0].id;
}

export interface SeedInvoice {
  supplierId: number;
  clientId: number;
  number: number;
  issueDate: string;
  total?: string;
}

export async function seedInvoice(db: Knex, s: SeedInvoice): Promise<number> {
  const total = s.total ?? '120.00';
  const subtotal = (Number(total) / 1.2).toFixed(2);
  const tax = (Number(total) - Number(subtotal)).toFixed(2);
  const { rows } = await db.raw(
    `INSERT INTO invoices (supplier_party_id, client_party_id, invoice_number, invoice_number_int, issue_date, due_date, currency,
                           supplier_name, supplier_tax_id, supplier_address, client_name, client_address, subtotal, tax_total, total)
     SELECT s.id, c.id, ?, ?, ?::date, ?::date + 30, 'EUR', s.name, s.tax_id, s.address, c.name, c.address, ?, ?, ?
       FROM parties s, parties c WHERE s.id = ? AND c.id = ?
     RETURNING id`,
    [`INV-${String(s.number).padStart(6, '0')}`, s.number, s.issueDate, s.issueDate, subtotal, tax, total, s.supplierId, s.clientId],
  );
  return rows[0].id;
}

/** A Redis key prefix of this test file's own (several test files share one Redis). */


/**
 * invoices.legal_status arrives with the providers migration (0007); the
 * invoices report must work with and without it. Tests set it either way in
 * their own database.
 */
export async function setLegalStatusColumn(db: Knex, present: boolean): Promise<void> {
  if (present) await db.raw('ALTER TABLE invoices ADD COLUMN IF NOT EXISTS legal_status text');
  else await db.raw('ALTER TABLE invoices DROP COLUMN IF EXISTS legal_status');
}
