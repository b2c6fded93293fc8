import crypto from 'node:crypto';
import fs from 'node:fs';
import { pipeline } from 'node:stream/promises';

export interface FileDigest {
  size: number;
  /** 32 lowercase hex characters: what HMRC's notification calls the checksum. */
  md5Hex: string;
  /** The same digest in base64: what S3's Content-MD5 header carries. */
  md5Base64: string;
}

/** MD5 and size of a file, read as a stream (40 MB envelopes stay out of memory). */
export async function digestFile(file: string, signal?: AbortSignal): Promise<FileDigest> {
  const hash = crypto.createHash('md5');
  let size = 0;
  await pipeline(
    fs.createReadStream(file),
    async function* (chunks: AsyncIterable<Buffer>) {
      for await (const chunk of chunks) {
        size += chunk.length;
        hash.update(chunk);
      }
    },
    { signal },
  );
  const digest = hash.digest();
  return { size, md5Hex: digest.toString('hex'), md5Base64: digest.toString('base64') };
}

export function digestBuffer(buf: Buffer): FileDigest {
  const digest = crypto.createHash('md5').update(buf).digest();
  return { size: buf.length, md5Hex: digest.toString('hex'), md5Base64: digest.toString('base64') };
}
