import path from 'node:path';
import type { HmrcSandbox } from './hmrc.js';
import type { S3Server } from './s3-server.js';
import type { PacSandbox } from './pac.js';
import type { InvoicingApiSandbox } from './invoicing-api.js';

// Every local stand-in Herald can run, as one list: `herald sandbox` starts
// them all and prints the env settings that point Herald at them, and the
// demo starts them in-process. A later stand-in (PAC, invoicing API, SMTP)
// is one more entry here; the command grows a --NAME-port option by itself.
// Each server's code loads in its start(): `herald --help` lists the
// sandboxes' options from this module without loading s3rver or fastify.

export interface SandboxOptions {
  /** Loopback address to listen on (default 127.0.0.1). */
  host?: string;
  /** Base directory for sandbox data (the S3 server keeps objects in DIR/s3). */
  dataDir: string;
  /** Port per sandbox name; 0 or missing picks a free port. */
  ports?: Partial<Record<string, number>>;
  /** S3 bucket to create (default herald-envelopes). */
  s3Bucket?: string;
  hmrc?: { clientId?: string; clientSecret?: string; srn?: string };
  /** PAC stand-in: where its webhooks go (Herald's /webhooks/pac) and their secret. */
  pac?: { token?: string; webhookUrl?: string; webhookSecret?: string; pacAfterMs?: number; dgiAfterMs?: number };
}

export interface RunningSandbox<H = unknown> {
  name: string;
  description: string;
  url: string;
  /** Settings that point Herald at this sandbox. */
  env: Record<string, string>;
  handle: H;
  close(): Promise<void>;
}

export interface SandboxDefinition<H = unknown> {
  name: string;
  description: string;
  /** Port `herald sandbox` uses unless told otherwise (stable across runs, so a saved .env keeps working). */
  defaultPort: number;
  start(opts: SandboxOptions & { host: string; port: number }): Promise<RunningSandbox<H>>;
}

export const DEFAULT_S3_BUCKET = 'herald-envelopes';
export const DEFAULT_HMRC_CLIENT_ID = 'herald-sandbox-client';
export const DEFAULT_HMRC_CLIENT_SECRET = 'herald-sandbox-secret';
export const DEFAULT_HMRC_SRN = 'SANDBOX-SRN-0001';

export const s3Sandbox: SandboxDefinition<S3Server> = {
  name: 's3',
  description: 'S3-compatible object store (s3rver)',
  defaultPort: 4568,
  async start(o) {
    const bucket = o.s3Bucket ?? DEFAULT_S3_BUCKET;
    const { startS3Server } = await import('./s3-server.js');
    const server = await startS3Server({ port: o.port, host: o.host, directory: path.join(o.dataDir, 's3'), buckets: [bucket] });
    return {
      name: 's3',
      description: `${this.description}, bucket ${bucket}, data in ${path.join(o.dataDir, 's3')}`,
      url: server.url,
      env: {
        S3_ENDPOINT: server.url,
        S3_BUCKET: bucket,
        S3_ACCESS_KEY_ID: server.accessKeyId,
        S3_SECRET_ACCESS_KEY: server.secretAccessKey,
        S3_FORCE_PATH_STYLE: 'true',
        S3_CHECKSUM_WHEN_REQUIRED: 'true',
      },
      handle: server,
      close: () => server.close(),
    };
  },
};

export const hmrcSandbox: SandboxDefinition<HmrcSandbox> = {
  name: 'hmrc',
  description: 'HMRC SDES notification API and OAuth token stand-in',
  defaultPort: 4569,
  async start(o) {
    const { startHmrcSandbox } = await import('./hmrc.js');
    const server = await startHmrcSandbox({
      port: o.port,
      host: o.host,
      clientId: o.hmrc?.clientId ?? DEFAULT_HMRC_CLIENT_ID,
      clientSecret: o.hmrc?.clientSecret ?? DEFAULT_HMRC_CLIENT_SECRET,
      srn: o.hmrc?.srn ?? DEFAULT_HMRC_SRN,
    });
    return {
      name: 'hmrc',
      description: `${this.description} (requests: ${server.url}/__sandbox/requests)`,
      url: server.url,
      env: {
        HMRC_BASE_URL: server.baseUrl,
        HMRC_TOKEN_URL: server.tokenUrl,
        HMRC_CLIENT_ID: server.clientId,
        HMRC_CLIENT_SECRET: server.clientSecret,
        HMRC_SRN: server.srn,
      },
      handle: server,
      close: () => server.close(),
    };
  },
};

export const DEFAULT_PAC_TOKEN = 'herald-sandbox-pac-token';
export const DEFAULT_PROVIDER_WEBHOOK_SECRET = 'herald-sandbox-webhook-secret';
export const DEFAULT_INVOICING_TOKEN = 'herald-sandbox-invoicing-token';

export const pacSandbox: SandboxDefinition<PacSandbox> = {
  name: 'pac',
  description: 'Alanube-style PAC (Panama) e-invoicing stand-in with scheduled legal statuses and webhooks',
  defaultPort: 4570,
  async start(o) {
    const secret = o.pac?.webhookSecret ?? DEFAULT_PROVIDER_WEBHOOK_SECRET;
    const { startPacSandbox } = await import('./pac.js');
    const server = await startPacSandbox({
      port: o.port,
      host: o.host,
      token: o.pac?.token ?? DEFAULT_PAC_TOKEN,
      webhookUrl: o.pac?.webhookUrl,
      webhookSecret: secret,
      pacAfterMs: o.pac?.pacAfterMs,
      dgiAfterMs: o.pac?.dgiAfterMs,
    });
    return {
      name: 'pac',
      description: `${this.description} (requests: ${server.url}/__sandbox/requests)`,
      url: server.url,
      env: { PROVIDER_PAC_BASE_URL: server.url, PROVIDER_PAC_TOKEN: server.token, PROVIDER_WEBHOOK_SECRET: secret },
      handle: server,
      close: () => server.close(),
    };
  },
};

export const invoicingApiSandbox: SandboxDefinition<InvoicingApiSandbox> = {
  name: 'invoicing-api',
  description: 'Fakturownia-style invoicing API stand-in (oid_unique idempotency)',
  defaultPort: 4571,
  async start(o) {
    const { startInvoicingApiSandbox } = await import('./invoicing-api.js');
    const server = await startInvoicingApiSandbox({ port: o.port, host: o.host, token: DEFAULT_INVOICING_TOKEN });
    return {
      name: 'invoicing-api',
      description: this.description,
      url: server.url,
      env: { PROVIDER_INVOICING_BASE_URL: server.url, PROVIDER_INVOICING_TOKEN: server.token },
      handle: server,
      close: () => server.close(),
    };
  },
};

export const SANDBOXES: readonly SandboxDefinition[] = [s3Sandbox, hmrcSandbox, pacSandbox, invoicingApiSandbox];

export class SandboxStartError extends Error {
  /** The underlying error's code (EADDRINUSE when the port is taken). */
  readonly code: string | undefined;
  constructor(
    readonly sandbox: string,
    readonly port: number,
    cause: unknown,
  ) {
    super(`sandbox ${sandbox} did not start on port ${port}: ${(cause as Error)?.message ?? String(cause)}`, { cause });
    this.name = 'SandboxStartError';
    this.code = (cause as { code?: string })?.code;
  }
}

export interface StartedSandboxes {
  list: RunningSandbox[];
  /** Every sandbox's env settings, merged. */
  env: Record<string, string>;
  /** The typed handle of one sandbox: started.handle(hmrcSandbox).inject(...). */
  handle<H>(def: SandboxDefinition<H>): H;
  close(): Promise<void>;
}

/** Starts every sandbox (or those in `only`); if one fails, the started ones are closed again. */
export async function startSandboxes(opts: SandboxOptions & { only?: string[] }): Promise<StartedSandboxes> {
  const host = opts.host ?? '127.0.0.1';
  const chosen = SANDBOXES.filter((d) => !opts.only || opts.only.includes(d.name));
  const list: RunningSandbox[] = [];
  for (const def of chosen) {
    const port = opts.ports?.[def.name] ?? 0;
    try {
      list.push(await def.start({ ...opts, host, port }));
    } catch (err) {
      await Promise.allSettled(list.map((s) => s.close()));
      throw new SandboxStartError(def.name, port, err);
    }
  }
  return {
    list,
    env: Object.assign({}, ...list.map((s) => s.env)) as Record<string, string>,
    handle<H>(def: SandboxDefinition<H>): H {
      const found = list.find((s) => s.name === def.name);
      if (!found) throw new Error(`sandbox ${def.name} is not running`);
      return found.handle as H;
    },
    async close() {
      const results = await Promise.allSettled(list.map((s) => s.close()));
      const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed) throw new Error('a sandbox failed to close', { cause: failed.reason });
    },
  };
}
