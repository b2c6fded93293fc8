import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import S3rver from 's3rver';
import { FaultQueue, SocketSet, breakConnection, delay, type Fault } from './faults.js';

// A local S3-compatible server for tests and the demo: s3rver (files in a
// directory) behind Herald's own HTTP front, which can answer the next N
// requests with an S3 error (503 SlowDown, 500 InternalError...), drop or
// reset them, or hang. Connection-level faults for a whole period ("S3 is
// down for a minute") belong to the TCP proxy in front of this server.
//
// s3rver accepts only the access key S3RVER / secret S3RVER, and the client
// must use WHEN_REQUIRED checksums (see src/storage/README.md).

export const S3RVER_ACCESS_KEY_ID = 'S3RVER';
export const S3RVER_SECRET_ACCESS_KEY = 'S3RVER';

export type S3Method = 'GET' | 'PUT' | 'HEAD' | 'DELETE' | 'POST';
export type S3Fault = Fault<S3Method>;

export interface S3ServerOptions {
  /** 0 picks a free port. */
  port?: number;
  host?: string;
  /** Where objects are kept; created if missing. */
  directory: string;
  /** Created at start if missing (existing objects are kept). */
  buckets?: string[];
  faults?: S3Fault[];
}

export interface S3RequestRecord {
  method: string;
  path: string;
  fault: S3Fault['type'] | null;
}

export interface S3Server {
  url: string;
  port: number;
  accessKeyId: string;
  secretAccessKey: string;
  inject(fault: S3Fault): void;
  requests(): S3RequestRecord[];
  reset(): void;
  close(): Promise<void>;
}

// s3rver's logger is created in its constructor and released by its own
// listen(); we serve its Koa callback from our server, so we release it.
interface S3rverInternals {
  logger?: { exceptions?: { unhandle(): void }; close(): void };
  store: { getBucket(name: string): Promise<unknown> };
}

export async function startS3Server(opts: S3ServerOptions): Promise<S3Server> {
  fs.mkdirSync(opts.directory, { recursive: true });
  const s3rver = new S3rver({
    directory: opts.directory,
    silent: true,
    configureBuckets: (opts.buckets ?? []).map((name) => ({ name, configs: [] })),
  });
  await s3rver.configureBuckets();
  const handle = s3rver.callback();
  const internals = s3rver as unknown as S3rverInternals;

  const faults = new FaultQueue<S3Method>((want, got) => want === undefined || want === got);
  for (const f of opts.faults ?? []) faults.push(f);
  let log: S3RequestRecord[] = [];
  const sockets = new SocketSet();
  const closing = new AbortController();

  const server = http.createServer((req, res) => {
    const method = (req.method ?? 'GET') as S3Method;
    const fault = faults.take(method);
    log.push({ method, path: req.url ?? '/', fault: fault?.type ?? null });
    if (!fault) return handle(req, res);
    void applyFault(fault, req, res, handle, closing.signal);
  });
  server.on('connection', (s) => sockets.add(s));
  // The SDK sends large bodies with "Expect: 100-continue". Node would say
  // "continue" at once and s3rver would answer NoSuchBucket or
  // InvalidAccessKeyId mid-upload, which the client sees as EPIPE; S3 refuses
  // before the body, and so do we.
  server.on('checkContinue', (req: http.IncomingMessage, res: http.ServerResponse) => {
    const key = /Credential=([^/,\s]+)/.exec(req.headers.authorization ?? '')?.[1];
    if (key !== undefined && key !== S3RVER_ACCESS_KEY_ID) {
      log.push({ method: req.method ?? 'PUT', path: req.url ?? '/', fault: null });
      writeS3Error(req, res, 403, 'InvalidAccessKeyId', 'The AWS Access Key Id you provided does not exist in our records.');
      return;
    }
    const bucket = bucketOf(req.url ?? '/');
    void internals.store.getBucket(bucket).then(
      (found) => {
        if (found || !bucket) {
          res.writeContinue();
          server.emit('request', req, res);
        } else {
          log.push({ method: req.method ?? 'PUT', path: req.url ?? '/', fault: null });
          writeS3Error(req, res, 404, 'NoSuchBucket', 'The specified bucket does not exist');
        }
      },
      () => writeS3Error(req, res, 500, 'InternalError', 'bucket lookup failed'),
    );
  });
  const releaseLogger = () => {
    internals.logger?.exceptions?.unhandle();
    internals.logger?.close();
  };
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', () => resolve());
    });
  } catch (err) {
    releaseLogger();
    throw err;
  }
  const { address, port } = server.address() as AddressInfo;
  const host = address.includes(':') ? `[${address}]` : address;

  return {
    url: `http://${host}:${port}`,
    port,
    accessKeyId: S3RVER_ACCESS_KEY_ID,
    secretAccessKey: S3RVER_SECRET_ACCESS_KEY,
    inject: (fault) => faults.push(fault),
    requests: () => [...log],
    reset() {
      faults.clear();
      log = [];
    },
    async close() {
      closing.abort();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      sockets.destroyAll();
      await closed;
      releaseLogger();
    },
  };
}

async function applyFault(
  fault: S3Fault,
  req: http.IncomingMessage,
  res: http.ServerResponse,
  handle: http.RequestListener,
  closing: AbortSignal,
): Promise<void> {
  switch (fault.type) {
    case 'latency':
      await delay(fault.ms, closing);
      if (!closing.aborted) handle(req, res);
      return;
    case 'drop':
    case 'reset':
      breakConnection(req.socket, fault.type);
      return;
    case 'hang':
      return; // the socket is destroyed when the server closes
    case 'status': {
      // Drain the upload first so the client reads the answer instead of
      // failing to write the rest of the body (that is what S3 does too).
      req.resume();
      await new Promise((resolve) => req.once('end', resolve).once('close', resolve));
      const code = fault.code ?? defaultS3Code(fault.status);
      const body = typeof fault.body === 'string' ? fault.body : undefined;
      writeS3Error(req, res, fault.status, code, `sandbox fault ${fault.status}`, body, fault.retryAfter);
    }
  }
}

function writeS3Error(
  req: http.IncomingMessage,
  res: http.ServerResponse,
  status: number,
  code: string,
  message: string,
  rawBody?: string,
  retryAfter?: string,
): void {
  const body =
    rawBody ??
    `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${escapeXml(message)}</Message>` +
      `<Resource>${escapeXml(req.url ?? '/')}</Resource><RequestId>sandbox</RequestId></Error>`;
  const headers: http.OutgoingHttpHeaders = { 'content-type': 'application/xml', 'content-length': Buffer.byteLength(body) };
  if (retryAfter) headers['retry-after'] = retryAfter;
  res.writeHead(status, headers);
  // HEAD answers carry no body, as with real S3.
  res.end(req.method === 'HEAD' ? undefined : body);
}

/** The bucket of a path-style URL ('' when there is none or it is malformed). */
function bucketOf(url: string): string {
  try {
    return decodeURIComponent(url.split(/[/?]/)[1] ?? '');
  } catch {
    return '';
  }
}

function defaultS3Code(status: number): string {
  if (status === 503) return 'SlowDown';
  if (status === 403) return 'AccessDenied';
  if (status >= 500) return 'InternalError';
  return 'InvalidRequest';
}

function escapeXml(s: string): string {
  return s.replace(/[<>&'"]/g, (c) => `&#${c.charCodeAt(0)};`);
}
