import crypto from 'node:crypto';
import fs from 'node:fs';
import { pipeline, Transform, type Readable } from 'node:stream';
import {
  CreateBucketCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  PutObjectCommand,
  S3Client,
  type S3ClientConfig,
} from '@aws-sdk/client-s3';
import type { Config } from '../config.js';
import { TransientError } from '../jobs/contract/errors.js';
import { classifyS3Error } from './s3-errors.js';
import { digestFile, type FileDigest } from './digest.js';

export { classifyS3Error } from './s3-errors.js';

// A thin wrapper over @aws-sdk/client-s3 for the calls Herald makes. Every
// method has a deadline (timeoutMs, combined with the caller's signal) and
// throws only Herald error classes (classifyS3Error, cause attached), so a
// job handler can let errors through unchanged.

export interface S3StorageOptions {
  /** Unset: AWS's regional endpoint. */
  endpoint?: string | undefined;
  region: string;
  bucket: string;
  /** Unset: the SDK's default credential chain (instance role, env, profile). */
  credentials?: { accessKeyId: string; secretAccessKey: string } | undefined;
  forcePathStyle?: boolean;
  /** For local S3-compatible servers only (see README). */
  checksumWhenRequired?: boolean;
  /** Deadline for one call, body included. */
  timeoutMs: number;
  /** SDK attempts per call for non-streaming requests (default 3, the SDK's). */
  maxAttempts?: number;
  logger?: S3Logger;
}

/** What the SDK logs (its warnings would otherwise go to console). */
export interface S3Logger {
  debug(msg: string): void;
  info(msg: string): void;
  warn(msg: string): void;
  error(msg: string): void;
}

export interface CallOptions {
  signal?: AbortSignal | undefined;
}

export interface PutFileOptions extends CallOptions {
  contentType: string;
  contentDisposition?: string;
  /**
   * What the file should hold (e.g. a checksum stored when it was written):
   * sent as Content-MD5 and checked against the bytes as they stream, so the
   * file is read once; a file that differs fails with BodyMismatchError.
   * Computed from the file when not given (one extra read).
   */
  digest?: FileDigest;
}

/** The file's bytes are not what the caller's digest says (it changed, or is stale): transient, the caller should write it again. */
export class BodyMismatchError extends TransientError {
  constructor(
    readonly key: string,
    readonly file: string,
    expected: { size: number; md5Hex: string },
    found: { size: number; md5Hex?: string },
  ) {
    super(
      `PutObject ${key}: ${file} holds ${found.size} bytes${found.md5Hex ? ` with MD5 ${found.md5Hex}` : ''}, ` +
        `not the ${expected.size} bytes with MD5 ${expected.md5Hex} the caller gave`,
    );
  }
}

export interface PutResult extends FileDigest {
  key: string;
  etag: string | undefined;
}

export interface ObjectHead {
  size: number;
  etag: string | undefined;
  contentType: string | undefined;
  contentDisposition: string | undefined;
  lastModified: Date | undefined;
}

export interface S3Storage {
  readonly bucket: string;
  readonly client: S3Client;
  putObjectFromFile(key: string, file: string, opts: PutFileOptions): Promise<PutResult>;
  /** null when the object does not exist. */
  headObject(key: string, opts?: CallOptions): Promise<ObjectHead | null>;
  getObjectBuffer(key: string, opts?: CallOptions): Promise<Buffer>;
  /** With a caller signal, the deadline covers the response headers and the signal the body; without one, the deadline covers both. */
  getObjectStream(key: string, opts?: CallOptions): Promise<Readable>;
  deleteObject(key: string, opts?: CallOptions): Promise<void>;
  /** Creates the bucket if missing: sandbox and demo only (production buckets are provisioned). */
  ensureBucket(opts?: CallOptions): Promise<void>;
  /** Whether the bucket exists and these credentials may use it (HeadBucket; herald doctor). */
  bucketExists(opts?: CallOptions): Promise<boolean>;
  close(): void;
}

// The socket may sit idle this long before the call is given up, even if
// the deadline is further away: a black-holed connection shows up sooner.
const IDLE_TIMEOUT_CAP_MS = 30_000;
const CONNECT_TIMEOUT_CAP_MS = 5_000;

// Reads of 1 MiB rather than the default 64 KiB: a 40 MB envelope in 40
// thread-pool round trips instead of 640 (scripts/bench/export.ts).
const READ_CHUNK_BYTES = 1024 * 1024;

const SILENT: S3Logger = { debug() {}, info() {}, warn() {}, error() {} };

export class StorageConfigError extends Error {
  constructor(readonly missing: string[]) {
    super(`S3 storage is not configured: set ${missing.join(', ')}`);
    this.name = 'StorageConfigError';
  }
}

export function s3OptionsFromConfig(config: Config): S3StorageOptions {
  const missing: string[] = [];
  if (!config.S3_BUCKET) missing.push('S3_BUCKET');
  // Keys come in pairs; one without the other is a typo, not "use the chain".
  if (config.S3_ACCESS_KEY_ID && !config.S3_SECRET_ACCESS_KEY) missing.push('S3_SECRET_ACCESS_KEY');
  if (!config.S3_ACCESS_KEY_ID && config.S3_SECRET_ACCESS_KEY) missing.push('S3_ACCESS_KEY_ID');
  if (missing.length) throw new StorageConfigError(missing);
  return {
    endpoint: config.S3_ENDPOINT,
    region: config.S3_REGION,
    bucket: config.S3_BUCKET!,
    credentials:
      config.S3_ACCESS_KEY_ID && config.S3_SECRET_ACCESS_KEY
        ? { accessKeyId: config.S3_ACCESS_KEY_ID, secretAccessKey: config.S3_SECRET_ACCESS_KEY }
        : undefined,
    forcePathStyle: config.S3_FORCE_PATH_STYLE,
    checksumWhenRequired: config.S3_CHECKSUM_WHEN_REQUIRED,
    timeoutMs: config.S3_TIMEOUT_MS,
  };
}

export function createS3Storage(opts: S3StorageOptions): S3Storage {
  const clientConfig: S3ClientConfig = {
    region: opts.region,
    forcePathStyle: opts.forcePathStyle ?? false,
    maxAttempts: opts.maxAttempts ?? 3,
    logger: opts.logger ?? SILENT,
    requestHandler: {
      connectionTimeout: Math.min(CONNECT_TIMEOUT_CAP_MS, opts.timeoutMs),
      requestTimeout: Math.min(IDLE_TIMEOUT_CAP_MS, opts.timeoutMs),
    },
  };
  if (opts.endpoint) clientConfig.endpoint = opts.endpoint;
  if (opts.credentials) clientConfig.credentials = opts.credentials;
  if (opts.checksumWhenRequired) {
    // With the SDK defaults a streamed PutObject is sent aws-chunked with a
    // trailing CRC32, and s3rver stores the chunk framing as the object.
    clientConfig.requestChecksumCalculation = 'WHEN_REQUIRED';
    clientConfig.responseChecksumValidation = 'WHEN_REQUIRED';
  }
  const client = new S3Client(clientConfig);
  const bucket = opts.bucket;

  /** Runs one SDK call under the deadline; every failure leaves classified. */
  async function call<T>(operation: string, key: string | undefined, signal: AbortSignal | undefined, fn: (s: AbortSignal) => Promise<T>): Promise<T> {
    const deadline = AbortSignal.timeout(opts.timeoutMs);
    const combined = signal ? AbortSignal.any([signal, deadline]) : deadline;
    try {
      return await fn(combined);
    } catch (err) {
      if (deadline.aborted && !signal?.aborted) {
        throw new TransientError(`${operation} ${key ?? bucket} did not finish within ${opts.timeoutMs} ms`, { cause: err });
      }
      throw classifyS3Error(err, { operation, key });
    }
  }

  return {
    bucket,
    client,

    async putObjectFromFile(key, file, put) {
      const given = put.digest;
      if (given) {
        const { size } = await call('PutObject', key, put.signal, () => fs.promises.stat(file));
        if (size !== given.size) throw new BodyMismatchError(key, file, given, { size });
      }
      const digest = given ?? (await call('PutObject', key, put.signal, (s) => digestFile(file, s)));
      return call('PutObject', key, put.signal, async (abortSignal) => {
        // A stream body is never retried by the SDK (it cannot rewind); the
        // job retries the whole upload, which is safe because keys are fixed.
        const source = fs.createReadStream(file, { highWaterMark: READ_CHUNK_BYTES });
        const check = given ? hashAsItGoes() : null;
        const body = check ? pipeline(source, check.stream, () => undefined) : source;
        // The bytes sent were not the caller's: say so, whatever S3 answered
        // (real S3 refuses them with BadDigest, which alone reads as permanent).
        const mismatch = () => {
          const sent = check?.result();
          return sent && (sent.size !== digest.size || sent.md5Hex !== digest.md5Hex) ? new BodyMismatchError(key, file, digest, sent) : null;
        };
        try {
          const out = await client.send(
            new PutObjectCommand({
              Bucket: bucket,
              Key: key,
              Body: body,
              ContentLength: digest.size,
              ContentType: put.contentType,
              ContentDisposition: put.contentDisposition,
              ContentMD5: digest.md5Base64,
            }),
            { abortSignal },
          );
          const bad = mismatch();
          if (bad) throw bad;
          return { key, etag: out.ETag, ...digest };
        } catch (err) {
          throw mismatch() ?? err;
        } finally {
          source.destroy();
          body.destroy();
        }
      });
    },

    async headObject(key, o = {}) {
      return call('HeadObject', key, o.signal, async (abortSignal) => {
        try {
          const out = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }), { abortSignal });
          return {
            size: out.ContentLength ?? 0,
            etag: out.ETag,
            contentType: out.ContentType,
            contentDisposition: out.ContentDisposition,
            lastModified: out.LastModified,
          };
        } catch (err) {
          if (isNotFound(err)) return null;
          throw err;
        }
      });
    },

    async getObjectBuffer(key, o = {}) {
      return call('GetObject', key, o.signal, async (abortSignal) => {
        const out = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }), { abortSignal });
        if (!out.Body) throw new TransientError(`GetObject ${key} returned no body`);
        return Buffer.from(await out.Body.transformToByteArray());
      });
    },

    async getObjectStream(key, o = {}) {
      return call('GetObject', key, o.signal, async (abortSignal) => {
        const out = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }), { abortSignal: o.signal ?? abortSignal });
        if (!out.Body) throw new TransientError(`GetObject ${key} returned no body`);
        return out.Body as Readable;
      });
    },

    async deleteObject(key, o = {}) {
      await call('DeleteObject', key, o.signal, (abortSignal) =>
        client.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }), { abortSignal }),
      );
    },

    async ensureBucket(o = {}) {
      await call('CreateBucket', undefined, o.signal, async (abortSignal) => {
        try {
          await client.send(new HeadBucketCommand({ Bucket: bucket }), { abortSignal });
          return;
        } catch (err) {
          if (!isNotFound(err)) throw err;
        }
        try {
          await client.send(new CreateBucketCommand({ Bucket: bucket }), { abortSignal });
        } catch (err) {
          // Another process created it between our HEAD and CREATE.
          if ((err as { name?: string }).name !== 'BucketAlreadyOwnedByYou') throw err;
        }
      });
    },

    async bucketExists(o = {}) {
      return call('HeadBucket', undefined, o.signal, async (abortSignal) => {
        try {
          await client.send(new HeadBucketCommand({ Bucket: bucket }), { abortSignal });
          return true;
        } catch (err) {
          if (isNotFound(err)) return false;
          throw err;
        }
      });
    },

    close: () => client.destroy(),
  };
}

/** A pass-through that hashes what flows through it; result() once the whole stream has passed, else null. */
function hashAsItGoes(): { stream: Transform; result(): { size: number; md5Hex: string } | null } {
  const hash = crypto.createHash('md5');
  let size = 0;
  let md5Hex: string | null = null;
  const stream = new Transform({
    transform(chunk: Buffer, _enc, done) {
      hash.update(chunk);
      size += chunk.length;
      done(null, chunk);
    },
    flush(done) {
      md5Hex = hash.digest('hex');
      done();
    },
  });
  return { stream, result: () => (md5Hex === null ? null : { size, md5Hex }) };
}

function isNotFound(err: unknown): boolean {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
  return e?.name === 'NotFound' || e?.name === 'NoSuchKey' || e?.name === 'NoSuchBucket' || e?.$metadata?.httpStatusCode === 404;
}
