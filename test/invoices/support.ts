import crypto from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import type { Knex } from 'knex';
import { loadConfig } from '../../src/config.js';
import { createApiKey } from '../../src/http/api-keys.js';
import { testWiring } from '../helpers/wiring.js';
import { buildServer, type ServerOptions } from '../../src/http/server.js';
import { createLogger } from '../../src/log.js';
import { insertParty, type NewParty, type PartyRow } from '../../src/invoices/store.js';

// Shared set-up for the invoice and HTTP tests: a real server on the test
// database (driven with inject()), a real API key, real parties.

export interface Api {
  app: FastifyInstance;
  auth: { authorization: string };
  keyId: number;
}

export async function startApi(db: Knex, opts: Partial<ServerOptions> = {}): Promise<Api> {
  const app = await buildServer({ db, config: loadConfig({}), log: createLogger('silent'), plugins: testWiring().routes, ...opts });
  const key = await createApiKey(db, `test-${crypto.randomUUID()}`);
  return { app, auth: { authorization: `Bearer ${key.key}` }, keyId: key.id };
}

export async function seedSupplier(db: Knex, over: Partial<NewParty> = {}): Promise<PartyRow> {
  return insertParty(db, {
    role: 'supplier',
    name: 'Acme Exports Ltd',
    tax_id: 'GB123456789',
    address: '1 Dock Road, Felixstowe',
    currency: 'GBP',
    default_tax_rate: '20',
    invoice_prefix: 'INV-',
    ...over,
  });
}

export async function seedClient(db: Knex, over: Partial<NewParty> = {}): Promise<PartyRow> {
  return insertParty(db, { role: 'client', name: 'Bolt Imports GmbH', vat_id: 'DE811907980', address: 'Hafenstr. 2, Hamburg', ...over });
}

export function invoiceBody(supplierId: number, clientId: number, over: Record<string, unknown> = {}) {
  return {
    supplierId,
    clientId,
    issueDate: '2026-11-02',
    items: [
      { description: 'Customs brokerage', quantity: '3', unitPrice: '19.99' },
      { description: 'Storage (pallet-days)', quantity: '2.5', unitPrice: '10.005', discount: '1.00', taxRate: '5' },
    ],
    ...over,
  };
}
