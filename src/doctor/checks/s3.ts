import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createS3Storage, s3OptionsFromConfig, StorageConfigError } from '../../storage/s3.js';
import { fail, failed, ok, skip, type Check } from '../check.js';

// S3: the bucket exists, and these credentials may put, head and delete an
// object in it: a probe under doctor/ that is deleted again.

export const PROBE_PREFIX = 'doctor/';

export const s3Check: Check = {
  name: 's3',
  async run({ config, signal, timeoutMs }) {
    if (!config.S3_BUCKET) return skip('S3_BUCKET unset: envelopes, report files and PDFs cannot be stored', 'set S3_BUCKET (and S3_ENDPOINT for an S3-compatible server)');
    let options;
    try {
      options = s3OptionsFromConfig(config);
    } catch (err) {
      if (err instanceof StorageConfigError) return fail(err.message, `set ${err.missing.join(', ')}`);
      throw err;
    }
    const storage = createS3Storage({ ...options, timeoutMs: Math.min(options.timeoutMs, timeoutMs), maxAttempts: 1 });
    const endpoint = config.S3_ENDPOINT ? { name: 'S3', url: config.S3_ENDPOINT, setting: 'S3_ENDPOINT' } : undefined;
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'herald-doctor-'));
    try {
      if (!(await storage.bucketExists({ signal }))) return fail(`bucket ${options.bucket} does not exist`, 'create it, or fix S3_BUCKET');
      const key = `${PROBE_PREFIX}probe-${os.hostname()}-${process.pid}-${crypto.randomUUID()}.txt`;
      const file = path.join(dir, 'probe.txt');
      fs.writeFileSync(file, `herald doctor probe, ${new Date().toISOString()}\n`);
      const put = await storage.putObjectFromFile(key, file, { contentType: 'text/plain', signal });
      const head = await storage.headObject(key, { signal });
      if (!head || head.size !== put.size) return fail(`${key} was put but HEAD says ${head ? `${head.size} bytes, not ${put.size}` : 'it is missing'}`, 'check the S3 server (S3_ENDPOINT): it does not keep what it accepts');
      await storage.deleteObject(key, { signal });
      return ok(`bucket ${options.bucket}${config.S3_ENDPOINT ? ` at ${config.S3_ENDPOINT}` : ''}: put, head and delete of ${PROBE_PREFIX}... worked`);
    } catch (err) {
      return failed(err, endpoint, 'check S3_ENDPOINT, S3_BUCKET and the credentials');
    } finally {
      storage.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  },
};
