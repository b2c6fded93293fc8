import path from 'node:path';
import { Redis } from 'ioredis';

export const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

/** Deletes every key under prefix: "Redis lost everything", without touching anyone else's keys. Returns how many. */
export async function wipeRedisPrefix(prefix: string): Promise<number> {
  const redis = new Redis(REDIS_URL);
  try {
    let deleted = 0;
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length) deleted += await redis.del(...keys);
    } while (cursor !== '0');
    return deleted;
  } finally {
    redis.disconnect();
  }
}

/** A key prefix of this file and process: files run side by side (or in parallel workers) never share keys. */
export function redisPrefix(fileUrl: string, label = ''): string {
  // Directory + file name: test/exporter/crash.test.ts and test/jobs/crash.test.ts may run in one process.
  const file = new URL(fileUrl).pathname;
  const stem = `${path.basename(path.dirname(file))}-${path.basename(file).replace(/\.test\.ts$/, '')}`;
  return `herald-test:${stem}${label ? `-${label}` : ''}:${process.pid}`;
}
