import fs from 'node:fs';

// Module hooks (node:module register) for test/cli/lazy-loading.test.ts:
// appends the URL of every module loaded through the ESM loader to the file
// named by HERALD_MODULE_LOG, so a test can see what a command loaded.
export async function load(url, context, nextLoad) {
  if (process.env.HERALD_MODULE_LOG) fs.appendFileSync(process.env.HERALD_MODULE_LOG, `${url}\n`);
  return nextLoad(url, context);
}
