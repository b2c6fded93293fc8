import { Redis } from 'ioredis';
import { failed, ok, skip, type Check } from '../check.js';

// Redis (REDIS_URL): connects, logs in if the URL says so, PING. Unset means
// jobs run in the process that queues them: fine for one process only.

export const redisCheck: Check = {
  name: 'redis',
  async run({ config, signal, timeoutMs }) {
    const url = config.REDIS_URL;
    if (!url) return skip('REDIS_URL unset: jobs run in the process that queues them (no shared workers)', 'set REDIS_URL to run `herald worker` processes');
    // No reconnecting and no offline queue: one attempt, and its error is the answer.
    const redis = new Redis(url, { lazyConnect: true, connectTimeout: timeoutMs, maxRetriesPerRequest: 0, retryStrategy: () => null, enableOfflineQueue: false });
    // ioredis rejects connect() with "Connection is closed"; the socket's own error came first.
    let socketError: unknown;
    redis.on('error', (err) => (socketError ??= err));
    const onAbort = () => redis.disconnect();
    signal.addEventListener('abort', onAbort);
    try {
      await redis.connect();
      const pong = await redis.ping();
      const version = /redis_version:(\S+)/.exec(await redis.info('server'))?.[1] ?? 'unknown version';
      return ok(`Redis ${version} at ${redis.options.host}:${redis.options.port}: PING ${pong}`);
    } catch (err) {
      return failed(socketError ?? err, { name: 'Redis', url, setting: 'REDIS_URL' }, 'check REDIS_URL (host, port, password)');
    } finally {
      signal.removeEventListener('abort', onAbort);
      redis.disconnect();
    }
  },
};
