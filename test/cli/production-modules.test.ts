import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { expect } from 'chai';
import { ROOT } from '../../bin/compiled.js';
import { spawnHerald } from '../helpers/cli.js';
import { useTestDb } from '../helpers/db.js';
import { REDIS_URL, redisPrefix, wipeRedisPrefix } from '../helpers/redis.js';

// s3rver (and busboy, dicer and fast-xml-parser 3 under it, SECURITY.md) is
// the sandbox's S3 stand-in: a production `herald serve` or `herald worker`
// must never load it. Both run here as real processes with the module-log
// hooks, take requests / start their runner, stop on SIGTERM, and the test
// reads every module they loaded. `herald sandbox` is the control: it does.

const MODULE_LOG_HOOKS = path.join(ROOT, 'test/helpers/module-log.mjs');
const SANDBOX_ONLY = ['s3rver', 'busboy', 'dicer', 'fast-xml-parser'];

function waitForOutput(child: ChildProcess, pattern: RegExp, what: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let seen = '';
    const on = (d: Buffer) => {
      seen += d.toString('utf8');
      const m = pattern.exec(seen);
      if (m) {
        child.stdout!.off('data', on);
        child.stderr!.off('data', on);
        resolve(m[1] ?? m[0]);
      }
    };
    child.stdout!.on('data', on);
    child.stderr!.on('data', on);
    child.once('exit', (code) => reject(new Error(`${what} exited (${code}) before it was ready: ${seen}`)));
  });
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await exited;
}

/** npm packages the process loaded while `use` ran, read from the module log. */
async function packagesLoadedBy(args: string[], env: Record<string, string | undefined>, ready: RegExp, use: (match: string) => Promise<void>): Promise<string[]> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'herald-modules-'));
  const log = path.join(dir, 'loaded.txt');
  const child = spawnHerald(args, { env: { ...env, HERALD_MODULE_LOG: log }, nodeArgs: ['--import', MODULE_LOG_HOOKS] });
  try {
    await use(await waitForOutput(child, ready, `herald ${args[0]}`));
  } finally {
    await stop(child);
  }
  const urls = fs.readFileSync(log, 'utf8').split('\n').filter(Boolean);
  fs.rmSync(dir, { recursive: true, force: true });
  return [...new Set(urls.map((u) => /\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(u)?.[1]).filter((n): n is string => !!n))];
}

describe('cli: production processes never load the sandbox S3 server', function () {
  this.timeout(300_000);
  const t = useTestDb(import.meta.url);
  const prefix = redisPrefix(import.meta.url);
  const env = () => ({ DATABASE_URL: t.get().url, REDIS_URL, REDIS_PREFIX: prefix, LOG_LEVEL: 'info' });
  after(async () => {
    await wipeRedisPrefix(prefix);
  });

  it('herald serve --worker (requests to /readyz, /metrics, /openapi.json, /admin) loads no s3rver, busboy, dicer or fast-xml-parser', async () => {
    const loaded = await packagesLoadedBy(['serve', '--port', '0', '--worker', '--json'], env(), /"url":\s*"([^"]+)"/, async (url) => {
      for (const p of ['/readyz', '/metrics', '/openapi.json', '/admin']) await (await fetch(`${url}${p}`)).arrayBuffer();
    });
    expect(loaded, 'the server did load its own packages').to.include.members(['fastify', 'knex', 'prom-client']);
    expect(loaded.filter((p) => SANDBOX_ONLY.includes(p))).to.deep.equal([]);
  });

  it('herald worker loads none of them either', async () => {
    const loaded = await packagesLoadedBy(['worker'], env(), /worker started/, async () => undefined);
    expect(loaded).to.include('knex');
    expect(loaded.filter((p) => SANDBOX_ONLY.includes(p))).to.deep.equal([]);
  });

  it('herald sandbox (the control) does load s3rver', async () => {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'herald-sandbox-'));
    try {
      const loaded = await packagesLoadedBy(['sandbox', '--data-dir', dataDir, '--s3-port', '0', '--hmrc-port', '0', '--pac-port', '0', '--invoicing-api-port', '0', '--json'], env(), /"S3_ENDPOINT"/, async () => undefined);
      expect(loaded).to.include('s3rver');
    } finally {
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
