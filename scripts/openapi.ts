import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import knex from 'knex';
import { wire } from '../src/cli/wiring.js';
import { loadConfig } from '../src/config.js';
import { buildServer } from '../src/http/server.js';
import { createLogger } from '../src/log.js';

// `npm run openapi [-- PATH]`: writes the OpenAPI document (default
// out/openapi.json) of the server `herald serve` mounts, built without
// listening and without a database: building routes runs no query, and the
// pg pool connects only on its first query. `npm run lint:openapi` lints it.

async function openApiDocument(): Promise<unknown> {
  const config = loadConfig({});
  const log = createLogger('silent');
  const db = knex({ client: 'pg', connection: 'postgres://127.0.0.1:1/unused', pool: { min: 0, max: 1 } });
  const wiring = wire({ config, log });
  try {
    const app = await buildServer({ db, config, log, plugins: wiring.routes, processMetrics: false });
    const doc = app.swagger();
    await app.close();
    return doc;
  } finally {
    wiring.close();
    await db.destroy();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const out = process.argv[2] ?? 'out/openapi.json';
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, `${JSON.stringify(await openApiDocument(), null, 2)}\n`);
  console.log(`wrote ${out}`);
}
