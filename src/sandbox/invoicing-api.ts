import Fastify, { type FastifyReply, type FastifyRequest } from 'fastify';
import { z } from 'zod';
import { FaultQueue, faultActionSchema, playHttpFault, type Fault } from './faults.js';

// A stand-in for a Fakturownia-style invoicing API: POST /invoices.json with
// api_token in the body (or Authorization: Bearer), 401 on a wrong token, 422
// {"code":"error","message":{field:[...]}} on a missing field, and oid_unique:
// a second POST with the same oid returns the invoice the first one made
// (200 instead of 201), so tests can count real creations. Faults as in the
// other sandboxes (latency, 5xx, 429 + Retry-After, hang, drop, reset, 401).

export type InvoicingFaultMatch = 'create' | 'any';
export const invoicingFaultSchema = z.intersection(
  faultActionSchema,
  z.object({ match: z.enum(['create', 'any']).optional(), times: z.number().int().min(1).optional() }),
);
export type InvoicingFault = Fault<InvoicingFaultMatch>;

export interface InvoicingApiSandboxOptions {
  port?: number;
  host?: string;
  token: string;
}

export interface InvoicingInvoice {
  id: number;
  oid: string | null;
  number: string;
  buyer_name: string;
}

export interface InvoicingApiSandbox {
  url: string;
  token: string;
  /** Invoices created (one per oid when oid_unique was sent). */
  invoices(): InvoicingInvoice[];
  /** Every POST that reached the handler, with its answer status (null: a fault killed it). */
  requests(): { oid: string | null; status: number | null; fault: string | null; tokenInUrl: boolean }[];
  inject(fault: InvoicingFault): void;
  reset(): void;
  close(): Promise<void>;
}

export async function startInvoicingApiSandbox(opts: InvoicingApiSandboxOptions): Promise<InvoicingApiSandbox> {
  const faults = new FaultQueue<InvoicingFaultMatch>((want = 'any', got) => want === 'any' || want === got);
  let invoices: InvoicingInvoice[] = [];
  let records: { oid: string | null; status: number | null; fault: string | null; tokenInUrl: boolean }[] = [];
  let nextId = 1000;
  const closing = new AbortController();
  const app = Fastify({ logger: false, forceCloseConnections: true, bodyLimit: 1_048_576 });

  async function applyFault(rec: (typeof records)[number], req: FastifyRequest, reply: FastifyReply): Promise<boolean> {
    const fault = faults.take('create');
    if (!fault) return false;
    return playHttpFault(fault, rec, req, reply, { closing: closing.signal, body: (status) => ({ code: 'error', message: `sandbox fault ${status}` }) });
  }

  app.post('/invoices.json', async (req, reply) => {
    const body = (req.body ?? {}) as { api_token?: string; invoice?: Record<string, unknown> };
    const inv = body.invoice ?? {};
    const oid = typeof inv.oid === 'string' ? inv.oid : null;
    const rec = { oid, status: null as number | null, fault: null as string | null, tokenInUrl: /api_token=/.test(req.url) };
    records.push(rec);
    if (await applyFault(rec, req, reply)) return reply;
    const header = /^bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '')?.[1];
    if ((body.api_token ?? header) !== opts.token) {
      rec.status = 401;
      return reply.code(401).send({ code: 'error', message: 'You must be logged in to gain access to the site' });
    }
    const missing = ['number', 'buyer_name', 'issue_date'].filter((f) => !inv[f]);
    if (missing.length) {
      rec.status = 422;
      return reply.code(422).send({ code: 'error', message: Object.fromEntries(missing.map((f) => [f, ["can't be blank"]])) });
    }
    if (oid && inv.oid_unique === 'yes') {
      const existing = invoices.find((i) => i.oid === oid);
      if (existing) {
        rec.status = 200;
        return reply.code(200).send(existing);
      }
    }
    const created: InvoicingInvoice = { id: nextId++, oid, number: String(inv.number), buyer_name: String(inv.buyer_name) };
    invoices.push(created);
    rec.status = 201;
    return reply.code(201).send(created);
  });

  const address = await app.listen({ port: opts.port ?? 0, host: opts.host ?? '127.0.0.1' });
  return {
    url: address,
    token: opts.token,
    invoices: () => invoices.slice(),
    requests: () => records.slice(),
    inject: (f) => faults.push(invoicingFaultSchema.parse(f) as InvoicingFault),
    reset() {
      faults.clear();
      invoices = [];
      records = [];
    },
    async close() {
      closing.abort();
      await app.close();
    },
  };
}
