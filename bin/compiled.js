import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

// Whether the compiled CLI (dist/, made by `npm run build`, which `npm ci`
// runs through the prepare script) is there and at least as new as every
// source it is built from. Shared by bin/herald.js and the tests' CLI helper
// (test/helpers/cli.ts), so both run the same code a user would.

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const COMPILED_MAIN = path.join(ROOT, 'dist', 'src', 'cli', 'main.js');
export const SOURCE_MAIN = path.join(ROOT, 'src', 'cli', 'main.ts');
// What the build compiles or copies: TypeScript in src/ and migrations/, the schemas in xsd/.
const SOURCES = ['src', 'migrations', 'xsd'];
const SOURCE_FILE = /\.(ts|xsd)$/;

function newestSource(dir) {
  let newest = 0;
  let entries;
  try {
    entries = fs.readdirSync(dir, { withFileTypes: true });
  } catch {
    return 0; // an installed package may ship dist/ without src/
  }
  for (const e of entries) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) newest = Math.max(newest, newestSource(p));
    else if (SOURCE_FILE.test(e.name)) newest = Math.max(newest, fs.statSync(p).mtimeMs);
  }
  return newest;
}

/** 'fresh', 'missing' (never built) or 'stale' (a source changed after the build). */
export function compiledState() {
  let built;
  try {
    built = fs.statSync(COMPILED_MAIN).mtimeMs;
  } catch {
    return 'missing';
  }
  const newest = Math.max(...SOURCES.map((d) => newestSource(path.join(ROOT, d))));
  return newest > built ? 'stale' : 'fresh';
}
